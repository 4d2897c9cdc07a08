//! The running figures, in memory. Each metrics replica sees only its share of events, so run one
//! replica (the chart's default) for the cockpit's figures to be whole.

use std::collections::{HashMap, VecDeque};

use switchboard_proto::{IssueCount, StatsReply};

/// Handling times kept for the median; older ones fall out.
const HANDLING_WINDOW: usize = 10_000;
/// Open tickets remembered for their receipt time; beyond this the oldest are forgotten.
const OPEN_TICKETS: usize = 200_000;
/// Corrected tickets remembered, so that their resolution is not counted as a right dispatch; beyond
/// this the least recently corrected are forgotten. A correction matters only until its ticket is
/// resolved, and the tally already assumes a ticket is resolved within the next [`OPEN_TICKETS`] tickets
/// (it forgets receipt times after that); a ticket is corrected at most a few times, so as many
/// corrections cover every ticket still open by that assumption, in memory of the same order (some
/// tens of MB for 200 000 ids).
const CORRECTED_TICKETS: usize = OPEN_TICKETS;

#[derive(Debug)]
pub struct Tally {
    received: u64,
    routed: u64,
    review: u64,
    corrected: u64,
    resolved: u64,
    resolved_uncorrected: u64,
    dead_lettered: u64,
    corrected_ids: Recent<()>,
    received_at: Recent<i64>,
    handling_minutes: VecDeque<f64>,
    problem_types: HashMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            received: 0,
            routed: 0,
            review: 0,
            corrected: 0,
            resolved: 0,
            resolved_uncorrected: 0,
            dead_lettered: 0,
            corrected_ids: Recent::new(CORRECTED_TICKETS),
            received_at: Recent::new(OPEN_TICKETS),
            handling_minutes: VecDeque::new(),
            problem_types: HashMap::new(),
        }
    }
}

impl Tally {
    pub fn received(&mut self, ticket_id: &str, at_ms: i64) {
        self.received += 1;
        self.received_at.insert(ticket_id, at_ms);
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
        self.corrected_ids.insert(ticket_id, ());
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

/// Ticket facts by id, at most `capacity` of them: storing one beyond that forgets the least recently
/// stored, so tickets never resolved cannot grow the tally without bound.
#[derive(Debug)]
struct Recent<V> {
    capacity: usize,
    /// Each id's value with the number of the store that put it there.
    entries: HashMap<String, (u64, V)>,
    /// Stores, oldest first. An id stored again or removed leaves its earlier store behind here, stale;
    /// it falls out in turn without touching the id's newer entry.
    order: VecDeque<(u64, String)>,
    stores: u64,
}

impl<V> Recent<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            stores: 0,
        }
    }

    /// Stores or replaces the value, which makes the id the most recently stored.
    fn insert(&mut self, id: &str, value: V) {
        self.stores += 1;
        self.entries.insert(id.to_owned(), (self.stores, value));
        self.order.push_back((self.stores, id.to_owned()));
        while self.order.len() > self.capacity {
            let Some((store, id)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&id)
                .is_some_and(|(kept, _)| *kept == store)
            {
                self.entries.remove(&id);
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    fn remove(&mut self, id: &str) -> Option<V> {
        self.entries.remove(id).map(|(_, value)| value)
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

    #[test]
    fn corrections_are_bounded_and_those_within_the_bound_still_count() {
        let mut t = Tally::default();
        let beyond = 1_000;
        let id = |i: usize| format!("ticket-{i}");
        for i in 0..CORRECTED_TICKETS + beyond {
            t.corrected(&id(i));
        }
        assert!(
            t.corrected_ids.entries.len() <= CORRECTED_TICKETS,
            "{} corrections remembered, beyond the bound of {CORRECTED_TICKETS}",
            t.corrected_ids.entries.len()
        );
        // Every correction within the bound still marks its resolution as a corrected one.
        for i in beyond..CORRECTED_TICKETS + beyond {
            t.resolved(&id(i), 0);
        }
        let r = t.report(0);
        assert_eq!(r.resolved, CORRECTED_TICKETS as u64);
        assert_eq!(
            t.resolved_uncorrected, 0,
            "a remembered correction was missed"
        );
        // The oldest ones were forgotten: their resolutions count as uncorrected.
        t.resolved(&id(0), 0);
        assert_eq!(t.resolved_uncorrected, 1);

        // Corrected again, the oldest remembered correction becomes the newest, so the next new one
        // pushes out the one after it instead.
        t.corrected(&id(beyond));
        t.corrected(&id(CORRECTED_TICKETS + beyond));
        assert_eq!(t.corrected_ids.entries.len(), CORRECTED_TICKETS);
        t.resolved(&id(beyond), 0);
        assert_eq!(t.resolved_uncorrected, 1, "the renewed correction was kept");
        t.resolved(&id(beyond + 1), 0);
        assert_eq!(t.resolved_uncorrected, 2);
    }
}
