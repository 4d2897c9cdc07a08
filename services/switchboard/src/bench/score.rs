//! Scoring routed tickets at a threshold, offline: each ticket's top department and confidence are on its
//! decision whether or not it was routed, so one run through the pipeline scores every threshold. The
//! routing test is the router's own [`routes`], so offline and runtime outcomes agree.

use std::collections::BTreeSet;

use serde::Serialize;
use switchboard_router::routes;

/// One ticket's gold department (empty: none fits, review is right) and its decision.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    pub gold: String,
    pub department: String,
    pub confidence: f32,
}

impl Routed {
    fn routes(&self, threshold: f32) -> bool {
        routes(&self.department, self.confidence, threshold)
    }

    fn right(&self, threshold: f32) -> bool {
        if self.routes(threshold) {
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

pub fn score(results: &[Routed], threshold: f32) -> Scores {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (in_scope, out_of_scope): (Vec<&Routed>, Vec<&Routed>) =
        results.iter().partition(|r| !r.gold.is_empty());
    let routed: Vec<&Routed> = results.iter().filter(|r| r.routes(threshold)).collect();
    let routed_right = routed.iter().filter(|r| r.department == r.gold).count();
    Scores {
        accuracy: ratio(
            results.iter().filter(|r| r.right(threshold)).count(),
            results.len(),
        ),
        in_scope_accuracy: ratio(
            in_scope.iter().filter(|r| r.right(threshold)).count(),
            in_scope.len(),
        ),
        out_of_scope_recall: (!out_of_scope.is_empty()).then(|| {
            ratio(
                out_of_scope.iter().filter(|r| r.right(threshold)).count(),
                out_of_scope.len(),
            )
        }),
        macro_f1: macro_f1(results, threshold),
        top1_accuracy: ratio(
            in_scope.iter().filter(|r| r.department == r.gold).count(),
            in_scope.len(),
        ),
        auto_route_rate: ratio(routed.len(), results.len()),
        auto_route_precision: ratio(routed_right, routed.len()),
        reliability: reliability(&routed),
    }
}

fn macro_f1(results: &[Routed], threshold: f32) -> f64 {
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
                let predicted = r.routes(threshold) && r.department == d;
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

/// The threshold from 0.00 to 0.95 in steps of 0.01 with the best overall accuracy on `results`; the
/// lowest of equals, so as few tickets as possible wait for review.
pub fn best_threshold(results: &[Routed]) -> f32 {
    let mut best = (f64::NEG_INFINITY, 0.0);
    for step in 0..=95u8 {
        let threshold = f32::from(step) / 100.0;
        let accuracy = score_accuracy(results, threshold);
        if accuracy > best.0 {
            best = (accuracy, threshold);
        }
    }
    best.1
}

fn score_accuracy(results: &[Routed], threshold: f32) -> f64 {
    let right = results.iter().filter(|r| r.right(threshold)).count();
    right as f64 / results.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(gold: &str, department: &str, confidence: f32) -> Routed {
        Routed {
            gold: gold.into(),
            department: department.into(),
            confidence,
        }
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
        let s = score(&results, 0.5);
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
    fn the_best_threshold_sends_low_confidence_mistakes_to_review() {
        let results = [
            r("a", "a", 0.9),
            r("b", "b", 0.7),
            r("", "a", 0.4),
            r("", "b", 0.3),
        ];
        assert_eq!(best_threshold(&results), 0.41);
        let no_out_of_scope = [r("a", "a", 0.9), r("b", "b", 0.2)];
        assert_eq!(best_threshold(&no_out_of_scope), 0.0);
    }
}
