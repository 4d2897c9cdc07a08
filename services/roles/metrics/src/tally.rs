//! The running figures, in memory. Each metrics replica sees only its share of events, so run one
//! replica (the chart's default) for the cockpit's figures to be whole.

use std::collections::{HashMap, HashSet, VecDeque};

use switchboard_proto::{IssueCount, StatsReply};

/// Handling times kept for the median; older ones fall out.
const HANDLING_WINDOW: usize = 10_000;
/// Open tickets remembered for their receipt time; beyond this the oldest are forgotten.
const OPEN_TICKETS: usize = 200_000;

#[derive(Debug, Default)]
pub struct Tally {
    received: u64,
    routed: u64,
    review: u64,
    corrected: u64,
    resolved: u64,
    resolved_uncorrected: u64,
    dead_lettered: u64,
    corrected_ids: HashSet<String>,
    received_at: HashMap<String, i64>,
    received_order: VecDeque<String>,
    handling_minutes: VecDeque<f64>,
    problem_types: HashMap<String, u64>,
}

impl Tally {
    pub fn received(&mut self, ticket_id: &str, at_ms: i64) {
        self.received += 1;
        if self
            .received_at
            .insert(ticket_id.to_owned(), at_ms)
            .is_none()
        {
            self.received_order.push_back(ticket_id.to_owned());
        }
        while self.received_order.len() > OPEN_TICKETS {
            if let Some(old) = self.received_order.pop_front() {
                self.received_at.remove(&old);
            }
        }
    }

    pub fn decided(&mut self, routed: bool, problem_type: &str) {
        if routed {
            self.routed += 1;
        } else {
            self.review += 1;
        }
        if !problem_type.is_empty() {
            *self
                .problem_types
                .entry(problem_type.to_owned())
                .or_default() += 1;
        }
    }

    pub fn corrected(&mut self, ticket_id: &str) {
        self.corrected += 1;
        self.corrected_ids.insert(ticket_id.to_owned());
    }

    pub fn resolved(&mut self, ticket_id: &str, at_ms: i64) {
        self.resolved += 1;
        if !self.corrected_ids.contains(ticket_id) {
            self.resolved_uncorrected += 1;
        }
        if let Some(received) = self.received_at.remove(ticket_id) {
            self.handling_minutes
                .push_back((at_ms - received).max(0) as f64 / 60_000.0);
            if self.handling_minutes.len() > HANDLING_WINDOW {
                self.handling_minutes.pop_front();
            }
        }
    }

    pub fn dead_lettered(&mut self) {
        self.dead_lettered += 1;
    }

    pub fn report(&self, hot_issues: usize) -> StatsReply {
        let judged = self.resolved_uncorrected + self.corrected;
        let mut hot: Vec<IssueCount> = self
            .problem_types
            .iter()
            .map(|(t, c)| IssueCount {
                problem_type: t.clone(),
                count: *c,
            })
            .collect();
        hot.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.problem_type.cmp(&b.problem_type))
        });
        hot.truncate(hot_issues);
        let mut times: Vec<f64> = self.handling_minutes.iter().copied().collect();
        times.sort_by(f64::total_cmp);
        StatsReply {
            received: self.received,
            routed: self.routed,
            review: self.review,
            corrected: self.corrected,
            resolved: self.resolved,
            dead_lettered: self.dead_lettered,
            dispatch_accuracy: if judged == 0 {
                0.0
            } else {
                self.resolved_uncorrected as f64 / judged as f64
            },
            median_handling_minutes: times.get(times.len() / 2).copied().unwrap_or(0.0),
            hot_issues: hot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_corrections_against_resolutions() {
        let mut t = Tally::default();
        for (id, at) in [("a", 0), ("b", 0), ("c", 0)] {
            t.received(id, at);
            t.decided(true, "login");
        }
        t.corrected("b");
        t.resolved("a", 120_000);
        t.resolved("b", 60_000);
        t.resolved("c", 600_000);
        let r = t.report(5);
        assert_eq!(
            (r.received, r.routed, r.corrected, r.resolved),
            (3, 3, 1, 3)
        );
        assert!((r.dispatch_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.median_handling_minutes, 2.0);
        assert_eq!(r.hot_issues[0].problem_type, "login");
        assert_eq!(r.hot_issues[0].count, 3);
    }
}
