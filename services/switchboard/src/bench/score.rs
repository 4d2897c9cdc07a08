//! Scoring routed tickets at a gate (threshold and typicality floor), offline: each ticket's top
//! department, confidence and typicality are on its decision whether or not it was routed, so one run
//! through the pipeline scores every gate. The routing test is the router's own [`routes`], so offline
//! and runtime outcomes agree.

use std::collections::BTreeSet;

use serde::Serialize;
use switchboard_router::{Gate, RouterConfig, routes};

/// One ticket's gold department (empty: none fits, review is right) and its decision.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    pub gold: String,
    pub department: String,
    pub confidence: f32,
    pub typicality: Option<f32>,
}

impl Routed {
    fn routes(&self, gate: Gate) -> bool {
        routes(&self.department, self.confidence, self.typicality, gate)
    }

    fn right(&self, gate: Gate) -> bool {
        if self.routes(gate) {
            self.department == self.gold
        } else {
            self.gold.is_empty()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Right department when routed; review when the ticket has no department.
    pub accuracy: f64,
    /// Tickets with a department: routed to it.
    pub in_scope_accuracy: f64,
    /// Tickets with no department: sent to review. `None` when the set has none.
    pub out_of_scope_recall: Option<f64>,
    /// F1 per department among those the tickets name, averaged; review counts as no department.
    pub macro_f1: f64,
    /// Top-ranked department right, whatever the threshold (tickets with a department).
    pub top1_accuracy: f64,
    pub auto_route_rate: f64,
    /// Share of automatically routed tickets that went to the right department.
    pub auto_route_precision: f64,
    pub reliability: Vec<Bin>,
}

/// Calibration of automatically routed tickets: what the confidence promised against what came true.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bin {
    /// Confidence from `low` (inclusive) up to the next bin's `low`; the first bin holds every routed
    /// ticket, the others split them by confidence.
    pub low: f32,
    pub routed: usize,
    pub mean_confidence: f64,
    pub precision: f64,
}

pub fn score(results: &[Routed], gate: Gate) -> Scores {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (in_scope, out_of_scope): (Vec<&Routed>, Vec<&Routed>) =
        results.iter().partition(|r| !r.gold.is_empty());
    let routed: Vec<&Routed> = results.iter().filter(|r| r.routes(gate)).collect();
    let routed_right = routed.iter().filter(|r| r.department == r.gold).count();
    Scores {
        accuracy: ratio(
            results.iter().filter(|r| r.right(gate)).count(),
            results.len(),
        ),
        in_scope_accuracy: ratio(
            in_scope.iter().filter(|r| r.right(gate)).count(),
            in_scope.len(),
        ),
        out_of_scope_recall: (!out_of_scope.is_empty()).then(|| {
            ratio(
                out_of_scope.iter().filter(|r| r.right(gate)).count(),
                out_of_scope.len(),
            )
        }),
        macro_f1: macro_f1(results, gate),
        top1_accuracy: ratio(
            in_scope.iter().filter(|r| r.department == r.gold).count(),
            in_scope.len(),
        ),
        auto_route_rate: ratio(routed.len(), results.len()),
        auto_route_precision: ratio(routed_right, routed.len()),
        reliability: reliability(&routed),
    }
}

fn macro_f1(results: &[Routed], gate: Gate) -> f64 {
    let departments: BTreeSet<&str> = results
        .iter()
        .filter(|r| !r.gold.is_empty())
        .map(|r| r.gold.as_str())
        .collect();
    if departments.is_empty() {
        return 0.0;
    }
    let total: f64 = departments
        .iter()
        .map(|&d| {
            let (mut tp, mut fp, mut missed) = (0usize, 0usize, 0usize);
            for r in results {
                let predicted = r.routes(gate) && r.department == d;
                match (predicted, r.gold == d) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => missed += 1,
                    (false, false) => {}
                }
            }
            let denominator = 2 * tp + fp + missed;
            if denominator == 0 {
                0.0
            } else {
                2.0 * tp as f64 / denominator as f64
            }
        })
        .sum();
    total / departments.len() as f64
}

/// All routed tickets, then tenths of confidence from 0.5 up (lower bins hold few tickets at any
/// sensible threshold, so they are one bin).
fn reliability(routed: &[&Routed]) -> Vec<Bin> {
    const LOWS: [f32; 6] = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9];
    let bin = |low: f32, members: Vec<&&Routed>| {
        let n = members.len();
        let mean = if n == 0 {
            0.0
        } else {
            members.iter().map(|r| f64::from(r.confidence)).sum::<f64>() / n as f64
        };
        let right = members.iter().filter(|r| r.department == r.gold).count();
        Bin {
            low,
            routed: n,
            mean_confidence: mean,
            precision: if n == 0 { 0.0 } else { right as f64 / n as f64 },
        }
    };
    let mut bins = vec![bin(0.0, routed.iter().collect())];
    for (i, &low) in LOWS.iter().enumerate() {
        let high = LOWS.get(i + 1).copied().unwrap_or(f32::INFINITY);
        bins.push(bin(
            low,
            routed
                .iter()
                .filter(|r| r.confidence >= low && r.confidence < high)
                .collect(),
        ));
    }
    bins
}

/// The typicality floors a validation set chooses among: off, then up to one in five tickets like the
/// history held back.
const FLOORS: [f32; 6] = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2];

/// The typicality weights a validation set chooses among: off, then from a slight discount of strange
/// tickets' confidence to one as strong as the typicality itself.
const WEIGHTS: [f32; 7] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];

/// The parts of a gate given on the command line; [`best_gate`] chooses the others.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fixed {
    pub threshold: Option<f32>,
    pub min_typicality: Option<f32>,
    pub typicality_weight: Option<f32>,
}

impl Fixed {
    /// Sets the given parts in the router's configuration, so the runtime routes by them too.
    pub fn apply(&self, router: &mut RouterConfig) {
        if let Some(threshold) = self.threshold {
            router.threshold = threshold;
        }
        if let Some(min_typicality) = self.min_typicality {
            router.min_typicality = min_typicality;
        }
        if let Some(typicality_weight) = self.typicality_weight {
            router.typicality_weight = typicality_weight;
        }
    }
}

/// The gate with the best overall accuracy on `results`: the threshold from 0.00 to 0.95 in steps of
/// 0.01, the typicality floor among [`FLOORS`] and its weight among [`WEIGHTS`], each unless fixed. Of
/// equals, the lowest, so as few tickets as possible wait for review.
pub fn best_gate(results: &[Routed], fixed: Fixed) -> Gate {
    let thresholds: Vec<f32> = match fixed.threshold {
        Some(t) => vec![t],
        None => (0..=95u8).map(|step| f32::from(step) / 100.0).collect(),
    };
    let floors: Vec<f32> = fixed
        .min_typicality
        .map_or_else(|| FLOORS.to_vec(), |f| vec![f]);
    let weights: Vec<f32> = fixed
        .typicality_weight
        .map_or_else(|| WEIGHTS.to_vec(), |w| vec![w]);
    let mut best = (f64::NEG_INFINITY, None);
    for &typicality_weight in &weights {
        for &min_typicality in &floors {
            for &threshold in &thresholds {
                let gate = Gate {
                    threshold,
                    min_typicality,
                    typicality_weight,
                };
                let right = results.iter().filter(|r| r.right(gate)).count();
                let accuracy = right as f64 / results.len().max(1) as f64;
                if accuracy > best.0 {
                    best = (accuracy, Some(gate));
                }
            }
        }
    }
    best.1.expect("at least one gate is tried")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(gold: &str, department: &str, confidence: f32) -> Routed {
        Routed {
            gold: gold.into(),
            department: department.into(),
            confidence,
            typicality: None,
        }
    }

    fn typical(gold: &str, department: &str, confidence: f32, typicality: f32) -> Routed {
        Routed {
            typicality: Some(typicality),
            ..r(gold, department, confidence)
        }
    }

    fn gate(threshold: f32, min_typicality: f32) -> Gate {
        Gate {
            threshold,
            min_typicality,
            typicality_weight: 0.0,
        }
    }

    fn choose(results: &[Routed]) -> Gate {
        best_gate(results, Fixed::default())
    }

    #[test]
    fn scores_in_scope_out_of_scope_and_routing() {
        let results = [
            r("a", "a", 0.9), // routed, right
            r("a", "b", 0.8), // routed, wrong
            r("b", "b", 0.3), // review of an in-scope ticket: wrong
            r("", "a", 0.2),  // review of an out-of-scope ticket: right
            r("", "b", 0.95), // routed out-of-scope ticket: wrong
        ];
        let s = score(&results, gate(0.5, 0.0));
        assert!((s.accuracy - 2.0 / 5.0).abs() < 1e-9);
        assert!((s.in_scope_accuracy - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.out_of_scope_recall, Some(0.5));
        assert!((s.top1_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.auto_route_rate - 3.0 / 5.0).abs() < 1e-9);
        assert!((s.auto_route_precision - 1.0 / 3.0).abs() < 1e-9);
        // a: tp 1, fp 0, missed 1 → 2/3; b: tp 0, fp 2, missed 1 → 0.
        assert!((s.macro_f1 - 1.0 / 3.0).abs() < 1e-9);
        let all = &s.reliability[0];
        assert_eq!(all.routed, 3);
        assert!((all.mean_confidence - (0.9 + 0.8 + 0.95) / 3.0).abs() < 1e-6);
        assert!((all.precision - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            s.reliability.last().map(|b| b.routed),
            Some(2),
            "0.9 and 0.95"
        );
    }

    #[test]
    fn the_best_gate_sends_low_confidence_mistakes_to_review() {
        let results = [
            r("a", "a", 0.9),
            r("b", "b", 0.7),
            r("", "a", 0.4),
            r("", "b", 0.3),
        ];
        assert_eq!(choose(&results), gate(0.41, 0.0));
        let no_out_of_scope = [r("a", "a", 0.9), r("b", "b", 0.2)];
        assert_eq!(choose(&no_out_of_scope), gate(0.0, 0.0));
    }

    #[test]
    fn the_best_gate_holds_back_confident_tickets_unlike_their_department() {
        let results = [
            typical("a", "a", 0.9, 0.5),
            typical("b", "b", 0.6, 0.3),
            typical("c", "c", 0.8, 0.08),
            typical("", "a", 0.95, 0.04),
            typical("", "b", 0.3, 0.6),
        ];
        // The out-of-scope ticket at 0.95 is caught only by a floor above 0.04, and the floor must stay
        // at or below 0.08 to keep c: 0.05. The threshold then only has to catch the one at 0.3.
        assert_eq!(choose(&results), gate(0.31, 0.05));
        assert!((score(&results, gate(0.31, 0.05)).accuracy - 1.0).abs() < 1e-9);
        // A fixed part stays fixed.
        let fixed = |threshold, min_typicality| Fixed {
            threshold,
            min_typicality,
            typicality_weight: Some(0.0),
        };
        assert_eq!(best_gate(&results, fixed(Some(0.5), None)), gate(0.5, 0.05));
        assert_eq!(
            best_gate(&results, fixed(None, Some(0.0))).min_typicality,
            0.0
        );
    }

    #[test]
    fn the_best_gate_weighs_typicality_where_neither_test_alone_separates() {
        let results = [
            typical("a", "a", 0.95, 0.02),
            typical("b", "b", 0.6, 0.5),
            typical("", "c", 0.7, 0.05),
        ];
        // The out-of-scope ticket is more typical than a and more confident than b, so no floor and no
        // threshold holds it back alone. Discounted at weight 0.1: a 0.64, b 0.56, it 0.52.
        let chosen = choose(&results);
        assert_eq!(
            chosen,
            Gate {
                threshold: 0.52,
                min_typicality: 0.0,
                typicality_weight: 0.1,
            }
        );
        assert!((score(&results, chosen).accuracy - 1.0).abs() < 1e-9);
        assert!(score(&results, gate(0.52, 0.0)).accuracy < 1.0);
    }
}
