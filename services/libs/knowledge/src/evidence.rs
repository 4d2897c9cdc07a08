//! The knowledge base's evidence for a ticket, blended into one probability per department: what the
//! router weighs against the rules, and what the knowledge base itself replays on its held-out records
//! to choose the blend weight ([`best_model_weight`]). One implementation for both, so the weight is
//! chosen under the blend the router applies.
//!
//! Two kinds of evidence:
//! - the similar tickets: each votes for its department with its similarity times its weight
//!   (corrections carry more) times its recency (halved every `half_life_days` of age, when it has a
//!   creation time). A department's share is its votes over all votes;
//! - the classifier: its probability for each department.
//!
//! The blend is a weighted geometric mean, `p ∝ p_model^w · (p_share + ε)^(1−w)` with
//! `w = model_weight`, normalised over the departments with any evidence: the classifier alone when
//! the votes come to nothing, the shares alone without a classifier or without similar tickets (a
//! classifier's view of a ticket with nothing similar stands on nothing). A weighted arithmetic mean
//! of a sharp classifier and a vote spread over a few departments is systematically underconfident
//! (routed tickets turned out right far more often than their confidence said); the geometric mean
//! keeps the agreement of the two sharp, and makes a department that none of the similar tickets went
//! to an unlikely answer, which is what the votes say.

use std::collections::BTreeMap;

use switchboard_proto::{Matches, SimilarTicket};

/// The classifier's part in the blend when neither the configuration nor the knowledge base gives one:
/// on a benchmark's English validation tickets (never its test tickets) it ranked best of
/// [`MODEL_WEIGHTS`].
pub const DEFAULT_MODEL_WEIGHT: f32 = 0.7;

/// The classifier's parts a knowledge base chooses among, the default first so that it wins ties.
pub const MODEL_WEIGHTS: [f32; 4] = [DEFAULT_MODEL_WEIGHT, 0.5, 0.85, 1.0];

const DAY_MS: f64 = 86_400_000.0;

/// The floor under a probability or share in the geometric blend: a department the classifier ranks
/// but no similar ticket went to (or the reverse) keeps a small chance instead of none.
const FLOOR: f32 = 1e-3;

/// How the evidence is weighed: the router's settings of it, which the knowledge base must use too
/// when it chooses the blend weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighing {
    /// The classifier's exponent in the blend; `None`: the knowledge base's choice, which the ticket
    /// carries (`Matches.model_weight`), else [`DEFAULT_MODEL_WEIGHT`].
    pub model_weight: Option<f32>,
    /// A similar ticket's vote halves with every this many days of age; 0 turns recency off.
    pub half_life_days: f32,
}

impl Default for Weighing {
    fn default() -> Self {
        Self {
            model_weight: None,
            half_life_days: 180.0,
        }
    }
}

impl Weighing {
    /// The classifier's part in the blend for a ticket that carries `chosen`, the knowledge base's
    /// choice: `model_weight` when configured, else `chosen`, else [`DEFAULT_MODEL_WEIGHT`].
    pub fn blend_weight(&self, chosen: Option<f32>) -> f32 {
        self.model_weight.or(chosen).unwrap_or(DEFAULT_MODEL_WEIGHT)
    }
}

/// Each department with any evidence and its blended probability (they sum to 1, or all are 0 when
/// there is no evidence), in department order.
pub fn blend<'m>(matches: &'m Matches, weighing: &Weighing, now_ms: i64) -> BTreeMap<&'m str, f32> {
    let similar = &matches.similar;
    let mut parts: BTreeMap<&str, (f32, f32)> = BTreeMap::new();
    for s in similar {
        let weight = if s.weight > 0.0 { s.weight } else { 1.0 };
        parts.entry(s.department.as_str()).or_default().0 +=
            s.score.max(0.0) * weight * recency(s, weighing.half_life_days, now_ms);
    }
    let total_votes: f32 = parts.values().map(|(votes, _)| votes).sum();
    let use_model = !similar.is_empty() && !matches.model_scores.is_empty();
    if use_model {
        for m in &matches.model_scores {
            parts.entry(m.department.as_str()).or_default().1 = m.probability.clamp(0.0, 1.0);
        }
    }
    let model_weight = match (use_model, total_votes > 0.0) {
        (true, true) => weighing.blend_weight(matches.model_weight),
        (true, false) => 1.0,
        (false, _) => 0.0,
    };
    let mut blended: BTreeMap<&str, f32> = parts
        .into_iter()
        .map(|(department, (votes, model))| {
            let share = if total_votes > 0.0 {
                votes / total_votes
            } else {
                0.0
            };
            (department, geometric(model, share, model_weight))
        })
        .collect();
    let total: f32 = blended.values().sum();
    for p in blended.values_mut() {
        *p = if total > 0.0 { *p / total } else { 0.0 };
    }
    blended
}

/// One department's unnormalised blend of the classifier's probability and its share of the votes;
/// zero when it has neither.
fn geometric(model: f32, share: f32, model_weight: f32) -> f32 {
    if model <= 0.0 && share <= 0.0 {
        0.0
    } else if model_weight >= 1.0 {
        model
    } else if model_weight <= 0.0 {
        share
    } else {
        model.max(FLOOR).powf(model_weight) * (share + FLOOR).powf(1.0 - model_weight)
    }
}

/// A similar ticket's vote factor for its age: 1 when it has no creation time or recency is off.
fn recency(s: &SimilarTicket, half_life_days: f32, now_ms: i64) -> f32 {
    if s.created_at_ms <= 0 || half_life_days <= 0.0 {
        return 1.0;
    }
    let age_days = (now_ms - s.created_at_ms).max(0) as f64 / DAY_MS;
    0.5f64.powf(age_days / f64::from(half_life_days)) as f32
}

/// The classifier's part in the blend (among [`MODEL_WEIGHTS`]) under which [`blend`] gives the gold
/// department the highest mean log-probability over `cases`, each a ticket's matches with that
/// department, weighed with `weighing`'s half-life; of equals, [`DEFAULT_MODEL_WEIGHT`]. A knowledge
/// base calls it with its held-out records, so the blend suits how well its similar tickets are found.
/// `None` without cases.
///
/// Log-probability rather than accuracy: every case counts by how sure the blend was, not only the few
/// whose top department changes, so a few hundred cases tell the weights apart, and the run-to-run
/// noise of the embeddings cannot flip the choice by moving one case across a tie. It also rewards a
/// blend whose confidence means what it says.
pub fn best_model_weight(
    cases: &[(Matches, String)],
    weighing: &Weighing,
    now_ms: i64,
) -> Option<f32> {
    /// What a case whose gold department the blend gives nothing costs: a sure mistake.
    const MISS: f64 = 1e-4;
    if cases.is_empty() {
        return None;
    }
    let mean_log_probability = |weight: f32| -> f64 {
        let weighed = Weighing {
            model_weight: Some(weight),
            ..*weighing
        };
        let total: f64 = cases
            .iter()
            .map(|(matches, gold)| {
                let p = blend(matches, &weighed, now_ms)
                    .get(gold.as_str())
                    .map_or(0.0, |&p| f64::from(p));
                p.max(MISS).ln()
            })
            .sum();
        total / cases.len() as f64
    };
    // The default comes first in MODEL_WEIGHTS, so only a strictly better weight replaces it.
    let mut best = (f64::NEG_INFINITY, DEFAULT_MODEL_WEIGHT);
    for weight in MODEL_WEIGHTS {
        let score = mean_log_probability(weight);
        if score > best.0 {
            best = (score, weight);
        }
    }
    Some(best.1)
}

#[cfg(test)]
mod tests {
    use switchboard_proto::DepartmentScore;

    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_000 * DAY;

    fn similar(department: &str, score: f32, age_days: Option<i64>) -> SimilarTicket {
        SimilarTicket {
            department: department.into(),
            score,
            weight: 1.0,
            created_at_ms: age_days.map_or(0, |d| NOW - d * DAY),
            ..SimilarTicket::default()
        }
    }

    fn matches(similar: Vec<SimilarTicket>, model: &[(&str, f32)]) -> Matches {
        Matches {
            similar,
            model_scores: model
                .iter()
                .map(|&(department, probability)| DepartmentScore {
                    department: department.into(),
                    probability,
                    typicality: None,
                })
                .collect(),
            ..Matches::default()
        }
    }

    #[test]
    fn the_blend_sums_to_one_and_needs_similar_tickets_for_the_classifier() {
        let m = matches(
            vec![similar("a", 0.9, None), similar("b", 0.3, None)],
            &[("a", 0.6), ("b", 0.3), ("c", 0.1)],
        );
        let p = blend(&m, &Weighing::default(), NOW);
        assert!((p.values().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
        assert!(p["a"] > p["b"] && p["b"] > p["c"], "{p:?}");
        let alone = matches(vec![], &[("a", 0.9), ("b", 0.1)]);
        assert!(
            blend(&alone, &Weighing::default(), NOW)
                .values()
                .all(|&p| p == 0.0)
        );
    }

    #[test]
    fn older_tickets_vote_less() {
        let m = matches(
            vec![similar("old", 1.0, Some(360)), similar("new", 0.6, Some(0))],
            &[],
        );
        let p = blend(&m, &Weighing::default(), NOW);
        assert!(p["new"] > p["old"], "{p:?}");
        let timeless = Weighing {
            half_life_days: 0.0,
            ..Weighing::default()
        };
        let p = blend(&m, &timeless, NOW);
        assert!(p["old"] > p["new"], "{p:?}");
    }

    /// Gold is always a; the similar tickets vote for `vote`.
    fn case(vote: SimilarTicket, scores: &[(&str, f32)]) -> (Matches, String) {
        (matches(vec![vote], scores), "a".to_owned())
    }

    #[test]
    fn the_best_blend_weight_follows_whichever_evidence_was_right() {
        // The similar tickets right where the classifier is wrong. Gold a's confidence: 0.94 at weight
        // 0.5, 0.75 at 0.7, 0.46 at 0.85, 0.2 at 1.
        let votes_right = || case(similar("a", 2.0, None), &[("b", 0.8), ("a", 0.2)]);
        // The similar tickets misleading a sure classifier: 0.09, 0.37, 0.70 and 0.9.
        let votes_wrong = || case(similar("b", 2.0, None), &[("a", 0.9), ("b", 0.1)]);
        let cases = |right: usize, wrong: usize| -> Vec<(Matches, String)> {
            (0..right)
                .map(|_| votes_right())
                .chain((0..wrong).map(|_| votes_wrong()))
                .collect()
        };
        let w = Weighing::default();
        assert_eq!(best_model_weight(&cases(3, 0), &w, NOW), Some(0.5));
        assert_eq!(best_model_weight(&cases(0, 3), &w, NOW), Some(1.0));
        // Two misled to one helped: the classifier counts more, but not alone.
        assert_eq!(best_model_weight(&cases(1, 2), &w, NOW), Some(0.85));
        assert_eq!(best_model_weight(&[], &w, NOW), None);
    }

    #[test]
    fn the_best_blend_weight_is_chosen_under_the_configured_half_life() {
        // A year-old ticket for a (right) and a fresh, weaker one for b (wrong); the classifier is torn.
        let cases: Vec<(Matches, String)> = (0..3)
            .map(|_| {
                (
                    matches(
                        vec![similar("a", 1.0, Some(365)), similar("b", 0.5, Some(0))],
                        &[("a", 0.5), ("b", 0.5)],
                    ),
                    "a".to_owned(),
                )
            })
            .collect();
        let timeless = Weighing {
            half_life_days: 0.0,
            ..Weighing::default()
        };
        let fast = Weighing {
            half_life_days: 30.0,
            ..Weighing::default()
        };
        // Without recency the votes say a, so they count most; when old tickets fade, they say b, so
        // the classifier counts alone.
        assert_eq!(best_model_weight(&cases, &timeless, NOW), Some(0.5));
        assert_eq!(best_model_weight(&cases, &fast, NOW), Some(1.0));
    }
}
