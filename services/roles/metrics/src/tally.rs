//! The running figures, in memory, derived from the stream: each metrics replica reads every event the
//! stream retains into its own tally, so every replica's figures are whole (see [`crate::role`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use switchboard_proto::{
    DepartmentHandling, HourDecisions, Incident, IssueCount, ReasonCount, RisingIssue, StatsReply,
};

/// Handling times kept for the median and the 90th percentile; older ones fall out.
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
const HOUR_MS: i64 = 3_600_000;
/// Hours in a week: a problem type's count this hour is set against the same hour this long before.
const WEEK_HOURS: i64 = 7 * 24;
/// Hours in the cockpit's chart of decisions by hour.
const CHART_HOURS: i64 = 24;
/// Incident-raised tickets are reported for this long after their receipt…
const INCIDENT_REPORT_MS: i64 = 24 * HOUR_MS;
/// …and at most this many of them are kept: an outage that raises more has made its point.
const INCIDENT_TICKETS: usize = 10_000;

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
    open: Recent<Open>,
    /// Each recent resolution's department and minutes from receipt.
    handling_minutes: VecDeque<(String, f64)>,
    problem_types: HashMap<String, u64>,
    /// Decisions by the hour their ticket was received (hours since the Unix epoch) and problem type,
    /// for a week and a day back from the latest hour seen.
    issue_hours: BTreeMap<i64, HashMap<String, u64>>,
    reasons: HashMap<String, u64>,
    /// Routed and review decisions by the hour their ticket was received, for [`CHART_HOURS`] back
    /// from the latest hour seen.
    decision_hours: BTreeMap<i64, (u64, u64)>,
    /// Tickets whose priority an incident raised, in the order decided, within
    /// [`INCIDENT_REPORT_MS`] of the latest one's receipt.
    incidents: VecDeque<IncidentTicket>,
}

#[derive(Debug)]
struct IncidentTicket {
    problem_type: String,
    received_at_ms: i64,
    customers: u32,
}

/// What the tally keeps of a ticket until it is resolved.
#[derive(Debug)]
struct Open {
    received_at_ms: i64,
    /// The department it was decided or corrected to, for the handling time by department.
    department: String,
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
            open: Recent::new(OPEN_TICKETS),
            handling_minutes: VecDeque::new(),
            problem_types: HashMap::new(),
            issue_hours: BTreeMap::new(),
            reasons: HashMap::new(),
            decision_hours: BTreeMap::new(),
            incidents: VecDeque::new(),
        }
    }
}

impl Tally {
    pub fn received(&mut self, ticket_id: &str, at_ms: i64) {
        self.received += 1;
        let open = Open {
            received_at_ms: at_ms,
            department: String::new(),
        };
        self.open.insert(ticket_id, open);
    }

    /// `received_at_ms` is when the ticket came in; 0 when unknown, and then it counts in no hour.
    pub fn decided(
        &mut self,
        ticket_id: &str,
        routed: bool,
        department: &str,
        problem_type: &str,
        received_at_ms: i64,
    ) {
        self.open
            .update(ticket_id, |o| o.department = department.to_owned());
        if routed {
            self.routed += 1;
        } else {
            self.review += 1;
        }
        if received_at_ms > 0 {
            let hour = self
                .decision_hours
                .entry(received_at_ms.div_euclid(HOUR_MS))
                .or_default();
            if routed {
                hour.0 += 1;
            } else {
                hour.1 += 1;
            }
            let latest = self.decision_hours.keys().next_back().copied().unwrap_or(0);
            self.decision_hours.retain(|&h, _| h > latest - CHART_HOURS);
        }
        if !problem_type.is_empty() {
            *self
                .problem_types
                .entry(problem_type.to_owned())
                .or_default() += 1;
            if received_at_ms > 0 {
                self.count_hour(problem_type, received_at_ms.div_euclid(HOUR_MS));
            }
        }
    }

    fn count_hour(&mut self, problem_type: &str, hour: i64) {
        *self
            .issue_hours
            .entry(hour)
            .or_default()
            .entry(problem_type.to_owned())
            .or_default() += 1;
        let latest = *self.issue_hours.keys().next_back().expect("just counted");
        // The hours a comparison can still reach: this one and the same hour a week before.
        while self
            .issue_hours
            .first_key_value()
            .is_some_and(|(&h, _)| h < latest - WEEK_HOURS - 24)
        {
            self.issue_hours.pop_first();
        }
    }

    /// Problem types decided more often in the hour of `now_ms` than in the same hour a week before,
    /// the largest rise first (then by name), at most `limit`.
    fn rising(&self, now_ms: i64, limit: usize) -> Vec<RisingIssue> {
        let hour = now_ms.div_euclid(HOUR_MS);
        let Some(this) = self.issue_hours.get(&hour) else {
            return Vec::new();
        };
        let before = self.issue_hours.get(&(hour - WEEK_HOURS));
        let mut rising: Vec<RisingIssue> = this
            .iter()
            .map(|(problem_type, &count)| RisingIssue {
                problem_type: problem_type.clone(),
                this_hour: count,
                same_hour_last_week: before
                    .and_then(|b| b.get(problem_type))
                    .copied()
                    .unwrap_or(0),
            })
            .filter(|r| r.this_hour > r.same_hour_last_week)
            .collect();
        rising.sort_by(|a, b| {
            (b.this_hour - b.same_hour_last_week)
                .cmp(&(a.this_hour - a.same_hour_last_week))
                .then_with(|| a.problem_type.cmp(&b.problem_type))
        });
        rising.truncate(limit);
        rising
    }

    /// The [`CHART_HOURS`] hours up to the one of `now_ms`, oldest first.
    fn by_hour(&self, now_ms: i64) -> Vec<HourDecisions> {
        let now = now_ms.div_euclid(HOUR_MS);
        (now - CHART_HOURS + 1..=now)
            .map(|hour| {
                let (routed, review) = self.decision_hours.get(&hour).copied().unwrap_or_default();
                HourDecisions {
                    hour_start_ms: hour * HOUR_MS,
                    routed,
                    review,
                }
            })
            .collect()
    }

    /// A decided ticket whose priority an incident raised: `customers` sent close tickets within the
    /// incident window.
    pub fn incident(&mut self, problem_type: &str, received_at_ms: i64, customers: u32) {
        self.incidents.push_back(IncidentTicket {
            problem_type: problem_type.to_owned(),
            received_at_ms,
            customers,
        });
        let latest = self
            .incidents
            .iter()
            .map(|i| i.received_at_ms)
            .max()
            .unwrap_or(received_at_ms);
        while self.incidents.len() > INCIDENT_TICKETS
            || self
                .incidents
                .front()
                .is_some_and(|i| i.received_at_ms < latest - INCIDENT_REPORT_MS)
        {
            self.incidents.pop_front();
        }
    }

    /// The incidents of the day before `now_ms` by problem type, the latest first, at most `limit`.
    fn incidents(&self, now_ms: i64, limit: usize) -> Vec<Incident> {
        let mut by_type: HashMap<&str, Incident> = HashMap::new();
        for ticket in self
            .incidents
            .iter()
            .filter(|i| i.received_at_ms > now_ms - INCIDENT_REPORT_MS)
        {
            let incident = by_type
                .entry(&ticket.problem_type)
                .or_insert_with(|| Incident {
                    problem_type: ticket.problem_type.clone(),
                    first_received_at_ms: ticket.received_at_ms,
                    last_received_at_ms: ticket.received_at_ms,
                    ..Incident::default()
                });
            incident.tickets += 1;
            incident.customers = incident.customers.max(ticket.customers);
            incident.first_received_at_ms =
                incident.first_received_at_ms.min(ticket.received_at_ms);
            incident.last_received_at_ms = incident.last_received_at_ms.max(ticket.received_at_ms);
        }
        let mut incidents: Vec<Incident> = by_type.into_values().collect();
        incidents.sort_by(|a, b| {
            b.last_received_at_ms
                .cmp(&a.last_received_at_ms)
                .then_with(|| a.problem_type.cmp(&b.problem_type))
        });
        incidents.truncate(limit);
        incidents
    }

    /// `reason` is the reason's name; the ticket is `to_department`'s from now on.
    pub fn corrected(&mut self, ticket_id: &str, reason: &str, to_department: &str) {
        self.corrected += 1;
        self.corrected_ids.insert(ticket_id, ());
        *self.reasons.entry(reason.to_owned()).or_default() += 1;
        self.open
            .update(ticket_id, |o| o.department = to_department.to_owned());
    }

    /// `department` is the one that resolved it; empty, the one it was in. Returns the seconds from
    /// its receipt, when the tally still knows when that was.
    pub fn resolved(&mut self, ticket_id: &str, at_ms: i64, department: &str) -> Option<f64> {
        self.resolved += 1;
        if !self.corrected_ids.contains(ticket_id) {
            self.resolved_uncorrected += 1;
        }
        let open = self.open.remove(ticket_id)?;
        let department = if department.is_empty() {
            open.department
        } else {
            department.to_owned()
        };
        let seconds = (at_ms - open.received_at_ms).max(0) as f64 / 1000.0;
        self.handling_minutes
            .push_back((department, seconds / 60.0));
        if self.handling_minutes.len() > HANDLING_WINDOW {
            self.handling_minutes.pop_front();
        }
        Some(seconds)
    }

    /// Dispatch accuracy (the share of judged tickets, resolved or corrected, resolved without a
    /// correction) and review rate (the share of decisions sent to review); 0 before any.
    pub fn quality(&self) -> (f64, f64) {
        let judged = self.resolved_uncorrected + self.corrected;
        let share = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64
            }
        };
        (
            share(self.resolved_uncorrected, judged),
            share(self.review, self.routed + self.review),
        )
    }

    pub fn dead_lettered(&mut self) {
        self.dead_lettered += 1;
    }

    /// The `n` most frequent problem types, the most tickets first (ties by name).
    pub fn hot(&self, n: usize) -> Vec<IssueCount> {
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
        hot.truncate(n);
        hot
    }

    /// The figures as of `now_ms` (the hour the rising problem types are counted in).
    pub fn report(&self, hot_issues: usize, now_ms: i64) -> StatsReply {
        let hot = self.hot(hot_issues);
        let mut reasons: Vec<ReasonCount> = self
            .reasons
            .iter()
            .map(|(reason, count)| ReasonCount {
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        let mut times: Vec<f64> = self.handling_minutes.iter().map(|(_, m)| *m).collect();
        times.sort_by(f64::total_cmp);
        let mut by_department: HashMap<&str, Vec<f64>> = HashMap::new();
        for (department, minutes) in &self.handling_minutes {
            by_department.entry(department).or_default().push(*minutes);
        }
        let mut handling: Vec<DepartmentHandling> = by_department
            .into_iter()
            .map(|(department, mut times)| {
                times.sort_by(f64::total_cmp);
                DepartmentHandling {
                    department: department.to_owned(),
                    resolved: times.len() as u64,
                    median_minutes: quantile(&times, 0.5),
                    p90_minutes: quantile(&times, 0.9),
                }
            })
            .collect();
        handling.sort_by(|a, b| a.department.cmp(&b.department));
        StatsReply {
            received: self.received,
            routed: self.routed,
            review: self.review,
            corrected: self.corrected,
            resolved: self.resolved,
            dead_lettered: self.dead_lettered,
            dispatch_accuracy: self.quality().0,
            median_handling_minutes: quantile(&times, 0.5),
            p90_handling_minutes: quantile(&times, 0.9),
            hot_issues: hot,
            corrections_by_reason: reasons,
            handling,
            rising_issues: self.rising(now_ms, hot_issues),
            incidents: self.incidents(now_ms, hot_issues),
            decisions_by_hour: self.by_hour(now_ms),
        }
    }
}

/// The value at rank round((n − 1)·q) of `sorted`; 0 when it is empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
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

    /// Changes the value kept for `id`, if any, without making it more recent.
    fn update(&mut self, id: &str, change: impl FnOnce(&mut V)) {
        if let Some((_, value)) = self.entries.get_mut(id) {
            change(value);
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
            t.decided(id, true, "auth", "login", 0);
        }
        t.corrected("b", "CORRECTION_REASON_POLICY_UPDATED", "billing");
        t.resolved("a", 120_000, "");
        t.resolved("b", 60_000, "");
        t.resolved("c", 600_000, "");
        let r = t.report(5, 0);
        assert_eq!(
            (r.received, r.routed, r.corrected, r.resolved),
            (3, 3, 1, 3)
        );
        assert!((r.dispatch_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(t.quality(), (r.dispatch_accuracy, 0.0));
        assert_eq!(r.median_handling_minutes, 2.0);
        assert_eq!(r.hot_issues[0].problem_type, "login");
        assert_eq!(r.hot_issues[0].count, 3);
        assert_eq!(r.p90_handling_minutes, 10.0);
    }

    #[test]
    fn reasons_and_handling_by_department_follow_the_corrections() {
        let mut t = Tally::default();
        for (i, minutes) in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].into_iter().enumerate() {
            let id = format!("t{i}");
            t.received(&id, 0);
            t.decided(&id, true, "auth", "login", 0);
            t.resolved(&id, minutes * 60_000, "");
        }
        t.received("moved", 0);
        t.decided("moved", false, "auth", "login", 0);
        t.corrected("moved", "CORRECTION_REASON_WRONG_DEPARTMENT", "billing");
        t.resolved("moved", 30 * 60_000, "");
        t.received("named", 0);
        t.decided("named", true, "auth", "login", 0);
        t.corrected("named", "CORRECTION_REASON_WRONG_DEPARTMENT", "billing");
        t.corrected("named", "CORRECTION_REASON_OTHER", "auth");
        t.resolved("named", 50 * 60_000, "billing");
        let r = t.report(5, 0);
        let reasons: Vec<(&str, u64)> = r
            .corrections_by_reason
            .iter()
            .map(|c| (c.reason.as_str(), c.count))
            .collect();
        assert_eq!(
            reasons,
            [
                ("CORRECTION_REASON_WRONG_DEPARTMENT", 2),
                ("CORRECTION_REASON_OTHER", 1)
            ]
        );
        let handling: Vec<(&str, u64, f64, f64)> = r
            .handling
            .iter()
            .map(|h| {
                (
                    h.department.as_str(),
                    h.resolved,
                    h.median_minutes,
                    h.p90_minutes,
                )
            })
            .collect();
        // auth: 1..=10 minutes; billing: the corrected one (30) and the one resolved there (50).
        assert_eq!(
            handling,
            [("auth", 10, 6.0, 9.0), ("billing", 2, 50.0, 50.0)]
        );
    }

    #[test]
    fn corrections_are_bounded_and_those_within_the_bound_still_count() {
        let mut t = Tally::default();
        let beyond = 1_000;
        let id = |i: usize| format!("ticket-{i}");
        for i in 0..CORRECTED_TICKETS + beyond {
            t.corrected(&id(i), "CORRECTION_REASON_OTHER", "");
        }
        assert!(
            t.corrected_ids.entries.len() <= CORRECTED_TICKETS,
            "{} corrections remembered, beyond the bound of {CORRECTED_TICKETS}",
            t.corrected_ids.entries.len()
        );
        // Every correction within the bound still marks its resolution as a corrected one.
        for i in beyond..CORRECTED_TICKETS + beyond {
            t.resolved(&id(i), 0, "");
        }
        let r = t.report(0, 0);
        assert_eq!(r.resolved, CORRECTED_TICKETS as u64);
        assert_eq!(
            t.resolved_uncorrected, 0,
            "a remembered correction was missed"
        );
        // The oldest ones were forgotten: their resolutions count as uncorrected.
        t.resolved(&id(0), 0, "");
        assert_eq!(t.resolved_uncorrected, 1);

        // Corrected again, the oldest remembered correction becomes the newest, so the next new one
        // pushes out the one after it instead.
        t.corrected(&id(beyond), "CORRECTION_REASON_OTHER", "");
        t.corrected(
            &id(CORRECTED_TICKETS + beyond),
            "CORRECTION_REASON_OTHER",
            "",
        );
        assert_eq!(t.corrected_ids.entries.len(), CORRECTED_TICKETS);
        t.resolved(&id(beyond), 0, "");
        assert_eq!(t.resolved_uncorrected, 1, "the renewed correction was kept");
        t.resolved(&id(beyond + 1), 0, "");
        assert_eq!(t.resolved_uncorrected, 2);
    }

    #[test]
    fn decisions_are_charted_by_the_hour_of_receipt_for_a_day() {
        let mut t = Tally::default();
        let now = 500 * HOUR_MS + 60_000;
        t.decided("a", true, "auth", "", now - 30 * HOUR_MS);
        t.decided("b", true, "auth", "", now - 2 * HOUR_MS);
        t.decided("c", false, "", "", now - 2 * HOUR_MS);
        t.decided("d", true, "auth", "login", now);
        t.decided("e", true, "auth", "", 0);
        let hours = t.report(5, now).decisions_by_hour;
        assert_eq!(hours.len(), 24);
        assert_eq!(
            hours[23].hour_start_ms,
            500 * HOUR_MS,
            "the current hour last"
        );
        assert_eq!((hours[23].routed, hours[23].review), (1, 0));
        assert_eq!((hours[21].routed, hours[21].review), (1, 1));
        let total: u64 = hours.iter().map(|h| h.routed + h.review).sum();
        assert_eq!(
            total, 3,
            "neither a day-old ticket nor one of unknown receipt"
        );
        assert!(
            !t.decision_hours.contains_key(&(470)),
            "hours out of the chart are forgotten"
        );
    }

    #[test]
    fn incidents_group_by_problem_type_latest_first_for_a_day() {
        let mut t = Tally::default();
        let now = 100 * HOUR_MS;
        t.incident("outage", now - 26 * HOUR_MS, 9);
        t.incident("login", now - 3 * HOUR_MS, 5);
        t.incident("outage", now - 2 * HOUR_MS, 5);
        t.incident("outage", now - HOUR_MS, 7);
        let incidents = t.report(5, now).incidents;
        let seen: Vec<(&str, u64, u32, i64, i64)> = incidents
            .iter()
            .map(|i| {
                (
                    i.problem_type.as_str(),
                    i.tickets,
                    i.customers,
                    i.first_received_at_ms,
                    i.last_received_at_ms,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("outage", 2, 7, now - 2 * HOUR_MS, now - HOUR_MS),
                ("login", 1, 5, now - 3 * HOUR_MS, now - 3 * HOUR_MS),
            ],
            "the day-old outage ticket is left out; the latest incident first"
        );
        assert_eq!(t.report(1, now).incidents.len(), 1);
        assert_eq!(
            t.incidents.len(),
            3,
            "the ticket older than a day before the latest is forgotten"
        );
    }

    #[test]
    fn rising_types_set_this_hour_against_the_same_hour_a_week_before() {
        let mut t = Tally::default();
        let week = WEEK_HOURS * HOUR_MS;
        let now = 1_796_601_600_000 + 30 * 60_000;
        let mut n = 0;
        let mut decide = |t: &mut Tally, problem: &str, at: i64, times: usize| {
            for _ in 0..times {
                n += 1;
                t.decided(&format!("t-{n}"), true, "auth", problem, at);
            }
        };
        // This hour: login 5 (1 a week ago), billing 3 (3 a week ago), vpn 2 (none a week ago).
        decide(&mut t, "login", now - 10 * 60_000, 5);
        decide(&mut t, "billing", now, 3);
        decide(&mut t, "vpn", now, 2);
        decide(&mut t, "login", now - week, 1);
        decide(&mut t, "billing", now - week, 3);
        // The hour before this one, and a week before that, count in neither.
        decide(&mut t, "printer", now - HOUR_MS, 9);
        decide(&mut t, "printer", now - week - HOUR_MS, 1);
        let rising: Vec<(String, u64, u64)> = t
            .report(10, now)
            .rising_issues
            .into_iter()
            .map(|r| (r.problem_type, r.this_hour, r.same_hour_last_week))
            .collect();
        assert_eq!(
            rising,
            [("login".to_owned(), 5, 1), ("vpn".to_owned(), 2, 0)],
            "billing held level; printer rose in another hour"
        );
        assert_eq!(t.report(1, now).rising_issues.len(), 1);
        // A ticket whose receipt time is unknown counts in the totals, in no hour.
        decide(&mut t, "vpn", 0, 4);
        assert_eq!(t.report(10, now).rising_issues[1].this_hour, 2);
        // Hours more than a week and a day before the latest are forgotten.
        decide(&mut t, "vpn", now + 2 * HOUR_MS, 1);
        assert!(
            t.issue_hours
                .contains_key(&((now - week).div_euclid(HOUR_MS)))
        );
        decide(&mut t, "vpn", now + week, 1);
        assert!(
            !t.issue_hours
                .contains_key(&((now - week).div_euclid(HOUR_MS)))
        );
    }
}
