//! Which work states a list shows and in what order: the ticket list (newest first, a page at a time)
//! and the review queue (most urgent first, then longest waiting).

use serde::Deserialize;
use switchboard_proto::{Priority, TicketState, WorkState};

use crate::error::ConsoleError;

/// The most entries one list answer holds, whatever the request asks.
pub const MAX_LIMIT: usize = 500;
/// How many entries a list answers when the request does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// `GET /v1/tickets` filters. Every one left out matches everything.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct TicketFilter {
    /// received, routed, in_review, assigned, in_progress, resolved or reopened.
    pub state: Option<String>,
    pub department: Option<String>,
    /// urgent, high, normal or low.
    pub priority: Option<String>,
    pub channel: Option<String>,
    pub assignee: Option<String>,
    /// Only tickets received at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/reviews` filters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// The department the decision suggests.
    pub department: Option<String>,
    /// urgent, high, normal or low.
    pub priority: Option<String>,
    /// Only tickets that have waited at least this many minutes since they were received.
    pub min_age_minutes: Option<i64>,
    /// Leave out tickets another reviewer holds a live claim on (default false: show them, with the
    /// claim).
    pub available: Option<bool>,
    pub limit: Option<usize>,
}

/// A [`TicketFilter`] checked: names turned into states and priorities, the limit bounded.
#[derive(Debug)]
pub(crate) struct TicketQuery {
    state: Option<TicketState>,
    priority: Option<Priority>,
    filter: TicketFilter,
    limit: usize,
}

impl TryFrom<TicketFilter> for TicketQuery {
    type Error = ConsoleError;

    fn try_from(filter: TicketFilter) -> Result<Self, ConsoleError> {
        Ok(Self {
            state: filter.state.as_deref().map(parse_state).transpose()?,
            priority: filter.priority.as_deref().map(parse_priority).transpose()?,
            limit: limit(filter.limit)?,
            filter,
        })
    }
}

impl TicketQuery {
    fn matches(&self, s: &WorkState) -> bool {
        let f = &self.filter;
        self.state.is_none_or(|state| s.state() == state)
            && self.priority.is_none_or(|p| s.priority() == p)
            && f.department.as_ref().is_none_or(|d| &s.department == d)
            && f.channel.as_ref().is_none_or(|c| &s.channel == c)
            && f.assignee.as_ref().is_none_or(|a| &s.assignee == a)
            && f.since_ms.is_none_or(|since| s.received_at_ms >= since)
            && f.cursor
                .as_ref()
                .is_none_or(|c| s.ticket_id.as_str() < c.as_str())
    }

    /// Every match, newest first (ticket ids are UUIDv7, ordered by arrival), after the cursor.
    pub(crate) fn matching(&self, all: Vec<WorkState>) -> Vec<WorkState> {
        let mut hits: Vec<WorkState> = all.into_iter().filter(|s| self.matches(s)).collect();
        hits.sort_by(|a, b| b.ticket_id.cmp(&a.ticket_id));
        hits
    }

    /// The most entries a page holds.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// One page, newest first, and the cursor of the next page when there is one.
    pub(crate) fn page(&self, all: Vec<WorkState>) -> (Vec<WorkState>, Option<String>) {
        let mut hits = self.matching(all);
        let next = (hits.len() > self.limit).then(|| hits[self.limit - 1].ticket_id.clone());
        hits.truncate(self.limit);
        (hits, next)
    }
}

/// A [`ReviewFilter`] checked.
#[derive(Debug)]
pub(crate) struct ReviewQuery {
    priority: Option<Priority>,
    filter: ReviewFilter,
    limit: usize,
}

impl TryFrom<ReviewFilter> for ReviewQuery {
    type Error = ConsoleError;

    fn try_from(filter: ReviewFilter) -> Result<Self, ConsoleError> {
        if filter.min_age_minutes.is_some_and(|m| m < 0) {
            return Err(ConsoleError::invalid(
                "min_age_minutes",
                "must not be negative",
            ));
        }
        Ok(Self {
            priority: filter.priority.as_deref().map(parse_priority).transpose()?,
            limit: limit(filter.limit)?,
            filter,
        })
    }
}

impl ReviewQuery {
    /// The tickets in review that match, most urgent first and, within a priority, longest waiting
    /// first: the order a reviewer should take them in.
    pub(crate) fn queue(&self, all: Vec<WorkState>, now_ms: i64) -> Vec<WorkState> {
        let f = &self.filter;
        let mut hits: Vec<WorkState> = all
            .into_iter()
            .filter(|s| s.state() == TicketState::InReview)
            .filter(|s| self.priority.is_none_or(|p| s.priority() == p))
            .filter(|s| f.department.as_ref().is_none_or(|d| &s.department == d))
            .filter(|s| {
                f.min_age_minutes
                    .is_none_or(|m| now_ms - s.received_at_ms >= m * 60_000)
            })
            .filter(|s| {
                !f.available.unwrap_or(false)
                    || s.claimed_by.is_empty()
                    || s.claim_expires_at_ms <= now_ms
            })
            .collect();
        hits.sort_by_key(|s| (urgency(s.priority()), s.received_at_ms, s.ticket_id.clone()));
        hits.truncate(self.limit);
        hits
    }
}

/// Urgent first; a ticket the policy gave no priority is taken as normal.
fn urgency(priority: Priority) -> i32 {
    match priority {
        Priority::Unspecified => Priority::Normal as i32,
        p => p as i32,
    }
}

fn limit(asked: Option<usize>) -> Result<usize, ConsoleError> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(ConsoleError::invalid("limit", "must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(ConsoleError::invalid(
            "limit",
            format!("{n} is over the most one answer holds, {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

const STATES: [TicketState; 7] = [
    TicketState::Received,
    TicketState::Routed,
    TicketState::InReview,
    TicketState::Assigned,
    TicketState::InProgress,
    TicketState::Resolved,
    TicketState::Reopened,
];

fn parse_state(name: &str) -> Result<TicketState, ConsoleError> {
    STATES
        .into_iter()
        .find(|s| switchboard_runtime::subjects::state_name(*s) == name)
        .ok_or_else(|| {
            let known: Vec<&str> = STATES
                .iter()
                .map(|s| switchboard_runtime::subjects::state_name(*s))
                .collect();
            ConsoleError::invalid(
                "state",
                format!("{name:?} is not one of {}", known.join(", ")),
            )
        })
}

/// The name a filter takes for `priority`, empty when the policy gave none.
pub(crate) fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Urgent => "urgent",
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
        Priority::Unspecified => "",
    }
}

pub(crate) fn parse_priority(name: &str) -> Result<Priority, ConsoleError> {
    match name.to_ascii_lowercase().as_str() {
        "urgent" => Ok(Priority::Urgent),
        "high" => Ok(Priority::High),
        "normal" => Ok(Priority::Normal),
        "low" => Ok(Priority::Low),
        _ => Err(ConsoleError::invalid(
            "priority",
            format!("{name:?} is not one of urgent, high, normal, low"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, state: TicketState, priority: Priority, received_at_ms: i64) -> WorkState {
        let mut s = WorkState {
            ticket_id: id.into(),
            department: "billing".into(),
            received_at_ms,
            ..WorkState::default()
        };
        s.set_state(state);
        s.set_priority(priority);
        s
    }

    fn ids(states: &[WorkState]) -> Vec<&str> {
        states.iter().map(|s| s.ticket_id.as_str()).collect()
    }

    #[test]
    fn the_queue_is_most_urgent_first_then_longest_waiting() {
        let all = vec![
            state("a", TicketState::InReview, Priority::Normal, 100),
            state("b", TicketState::InReview, Priority::Urgent, 300),
            state("c", TicketState::InReview, Priority::Normal, 50),
            state("d", TicketState::Routed, Priority::Urgent, 10),
            state("e", TicketState::InReview, Priority::Unspecified, 75),
            state("f", TicketState::InReview, Priority::Low, 1),
        ];
        let q = ReviewQuery::try_from(ReviewFilter::default()).expect("valid");
        assert_eq!(ids(&q.queue(all.clone(), 1_000)), ["b", "c", "e", "a", "f"]);

        let q = ReviewQuery::try_from(ReviewFilter {
            priority: Some("normal".into()),
            min_age_minutes: Some(0),
            limit: Some(1),
            ..ReviewFilter::default()
        })
        .expect("valid");
        assert_eq!(ids(&q.queue(all, 1_000)), ["c"]);
    }

    #[test]
    fn age_and_claims_filter_the_queue() {
        let mut claimed = state("held", TicketState::InReview, Priority::High, 0);
        claimed.claimed_by = "ana".into();
        claimed.claim_expires_at_ms = 5 * 60_000;
        let mut lapsed = state("lapsed", TicketState::InReview, Priority::High, 0);
        lapsed.claimed_by = "ben".into();
        lapsed.claim_expires_at_ms = 60_000;
        let fresh = state("fresh", TicketState::InReview, Priority::High, 3 * 60_000);
        let all = vec![claimed, lapsed, fresh];
        let now = 4 * 60_000;
        let q = ReviewQuery::try_from(ReviewFilter {
            available: Some(true),
            ..ReviewFilter::default()
        })
        .expect("valid");
        assert_eq!(ids(&q.queue(all.clone(), now)), ["lapsed", "fresh"]);
        let q = ReviewQuery::try_from(ReviewFilter {
            min_age_minutes: Some(2),
            ..ReviewFilter::default()
        })
        .expect("valid");
        assert_eq!(ids(&q.queue(all, now)), ["held", "lapsed"]);
    }

    #[test]
    fn pages_follow_the_cursor_newest_first_without_repeats() {
        let all: Vec<WorkState> = (0..7)
            .map(|i| state(&format!("t{i}"), TicketState::Routed, Priority::Normal, i))
            .collect();
        let mut filter = TicketFilter {
            limit: Some(3),
            ..TicketFilter::default()
        };
        let mut seen = Vec::new();
        loop {
            let q = TicketQuery::try_from(filter.clone()).expect("valid");
            let (page, next) = q.page(all.clone());
            seen.extend(page.into_iter().map(|s| s.ticket_id));
            match next {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);
    }

    #[test]
    fn bad_filters_name_their_field_and_the_valid_values() {
        let err = TicketQuery::try_from(TicketFilter {
            state: Some("open".into()),
            ..TicketFilter::default()
        })
        .expect_err("no such state");
        assert_eq!(
            err.to_string(),
            "invalid state: \"open\" is not one of received, routed, in_review, assigned, in_progress, resolved, reopened"
        );
        let err = ReviewQuery::try_from(ReviewFilter {
            limit: Some(MAX_LIMIT + 1),
            ..ReviewFilter::default()
        })
        .expect_err("too many");
        assert!(err.to_string().starts_with("invalid limit: 501"), "{err}");
        let err = parse_priority("asap").expect_err("no such priority");
        assert_eq!(
            err.to_string(),
            "invalid priority: \"asap\" is not one of urgent, high, normal, low"
        );
    }
}
