//! The decision board: each ticket's work state joined with its decision, one flat row a screen can
//! show and filter, newest first. The same row goes out on the live event stream, so a board that
//! loaded a page and one that only listened show the same thing.

use serde::{Deserialize, Serialize};
use switchboard_proto::{Outcome, Ticket, WorkState};
use switchboard_runtime::subjects::state_name;

use crate::desk::Desk;
use crate::error::ConsoleError;
use crate::query::{TicketFilter, TicketQuery, priority_name};

/// `GET /v1/board` filters: those of `GET /v1/tickets` and what only the decision knows. Every one
/// left out matches everything. The ticket filters are repeated rather than a flattened
/// [`TicketFilter`]: a flattened struct reads every query value as a string, so its numbers would
/// not parse; they are handed to the one [`TicketQuery`] that applies them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct BoardFilter {
    /// received, routed, in_review, assigned, in_progress, resolved or reopened.
    pub state: Option<String>,
    pub department: Option<String>,
    /// urgent, high, normal or low.
    pub priority: Option<String>,
    pub channel: Option<String>,
    pub assignee: Option<String>,
    /// Only tickets received at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// routed or review: what the router decided, whatever people did since.
    pub outcome: Option<String>,
    /// Only tickets the sentiment role did (true) or did not (false) escalate.
    pub escalated: Option<bool>,
    /// Words the masked text, the ticket id or the problem type contains (any case).
    pub q: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// One ticket on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardRow {
    pub ticket_id: String,
    /// received, routed, in_review, …
    pub state: String,
    pub department: String,
    pub assignee: String,
    /// urgent, high, normal, low, or empty before the router set it.
    pub priority: String,
    pub channel: String,
    pub received_at_ms: i64,
    pub updated_at_ms: i64,
    /// Who holds a claim on it in review, and until when.
    pub claimed_by: String,
    pub claim_expires_at_ms: i64,
    /// The text as intake masked it; empty until the decision is stored.
    pub text: String,
    /// routed or review; absent until the router decided.
    pub outcome: Option<String>,
    pub confidence: Option<f32>,
    pub runner_up: String,
    pub escalated: bool,
    pub problem_type: String,
    /// Whether a person moved it to another department.
    pub corrected: bool,
}

/// The page `GET /v1/board` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardPage {
    pub rows: Vec<BoardRow>,
    /// The `cursor` of the next page; absent on the last.
    pub next: Option<String>,
    /// How many tickets the work-state filters matched before the decision filters and the page.
    pub matched: usize,
}

/// A [`BoardFilter`] checked.
struct BoardQuery {
    tickets: TicketQuery,
    outcome: Option<Outcome>,
    escalated: Option<bool>,
    words: Vec<String>,
}

impl TryFrom<BoardFilter> for BoardQuery {
    type Error = ConsoleError;

    fn try_from(f: BoardFilter) -> Result<Self, ConsoleError> {
        let outcome = match f.outcome.as_deref() {
            None => None,
            Some("routed") => Some(Outcome::Routed),
            Some("review") => Some(Outcome::Review),
            Some(other) => {
                return Err(ConsoleError::invalid(
                    "outcome",
                    format!("{other:?} is not one of routed, review"),
                ));
            }
        };
        let words =
            f.q.as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_lowercase)
                .collect();
        Ok(Self {
            tickets: TicketQuery::try_from(TicketFilter {
                state: f.state,
                department: f.department,
                priority: f.priority,
                channel: f.channel,
                assignee: f.assignee,
                since_ms: f.since_ms,
                limit: f.limit,
                cursor: f.cursor,
            })?,
            outcome,
            escalated: f.escalated,
            words,
        })
    }
}

impl BoardQuery {
    /// Whether the row passes what only the decision knows.
    fn matches(&self, row: &BoardRow) -> bool {
        let outcome = self.outcome.map(outcome_name);
        outcome.is_none_or(|o| row.outcome.as_deref() == Some(o))
            && self.escalated.is_none_or(|e| row.escalated == e)
            && self.words.iter().all(|w| {
                row.text.to_lowercase().contains(w)
                    || row.ticket_id.contains(w.as_str())
                    || row.problem_type.to_lowercase().contains(w)
            })
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Routed => "routed",
        Outcome::Review => "review",
        Outcome::Unspecified => "",
    }
}

/// The row of a ticket from its work state and, once stored, its decision.
pub fn row(state: &WorkState, ticket: Option<&Ticket>) -> BoardRow {
    let decision = ticket.and_then(|t| t.decision.as_ref());
    BoardRow {
        ticket_id: state.ticket_id.clone(),
        state: state_name(state.state()).to_owned(),
        department: state.department.clone(),
        assignee: state.assignee.clone(),
        priority: priority_name(state.priority()).to_owned(),
        channel: state.channel.clone(),
        received_at_ms: state.received_at_ms,
        updated_at_ms: state.updated_at_ms,
        claimed_by: state.claimed_by.clone(),
        claim_expires_at_ms: state.claim_expires_at_ms,
        text: ticket.map(|t| t.text.clone()).unwrap_or_default(),
        outcome: decision
            .map(|d| outcome_name(d.outcome()))
            .filter(|o| !o.is_empty())
            .map(str::to_owned),
        confidence: decision.map(|d| d.confidence),
        runner_up: decision.map(|d| d.runner_up.clone()).unwrap_or_default(),
        escalated: ticket
            .and_then(|t| t.assessment.as_ref())
            .is_some_and(|a| a.escalate),
        problem_type: ticket
            .and_then(|t| t.parsed.as_ref())
            .map(|p| p.problem_type.clone())
            .unwrap_or_default(),
        corrected: decision.is_some_and(|d| d.correction.is_some()),
    }
}

impl Desk {
    /// One page of the board. The work-state filters run over every state; the decision of each
    /// match is read only until the page is full, so a page costs its own size in reads unless the
    /// decision filters leave out most tickets.
    pub async fn board(&self, filter: BoardFilter) -> Result<BoardPage, ConsoleError> {
        let query = BoardQuery::try_from(filter)?;
        let hits = query.tickets.matching(self.all().await?);
        let matched = hits.len();
        let limit = query.tickets.limit();
        let mut rows = Vec::with_capacity(limit);
        let mut next = None;
        for state in hits {
            let ticket = self.decided(&state.ticket_id).await?;
            let row = row(&state, ticket.as_ref());
            if !query.matches(&row) {
                continue;
            }
            if rows.len() == limit {
                next = rows.last().map(|r: &BoardRow| r.ticket_id.clone());
                break;
            }
            rows.push(row);
        }
        Ok(BoardPage {
            rows,
            next,
            matched,
        })
    }

    /// The board row of one ticket, when intake has recorded it.
    pub async fn board_row(&self, id: &str) -> Result<Option<BoardRow>, ConsoleError> {
        let Some(state) = self.work_state(id).await? else {
            return Ok(None);
        };
        let ticket = self.decided(id).await?;
        Ok(Some(row(&state, ticket.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{Assessment, Decision, Parsed, Priority, TicketState};

    use super::*;

    fn decided(id: &str, text: &str, outcome: Outcome, escalate: bool) -> (WorkState, Ticket) {
        let mut state = WorkState {
            ticket_id: id.into(),
            department: "billing".into(),
            ..WorkState::default()
        };
        state.set_state(TicketState::Routed);
        state.set_priority(Priority::High);
        let mut decision = Decision {
            department: "billing".into(),
            confidence: 0.8,
            runner_up: "it".into(),
            ..Decision::default()
        };
        decision.set_outcome(outcome);
        let ticket = Ticket {
            id: id.into(),
            text: text.into(),
            assessment: Some(Assessment {
                escalate,
                ..Assessment::default()
            }),
            parsed: Some(Parsed {
                problem_type: "Refund".into(),
                ..Parsed::default()
            }),
            decision: Some(decision),
            ..Ticket::default()
        };
        (state, ticket)
    }

    fn query(f: BoardFilter) -> BoardQuery {
        BoardQuery::try_from(f).expect("valid")
    }

    #[test]
    fn a_row_joins_the_work_state_and_the_decision() {
        let (state, ticket) = decided("t1", "my <PHONE_1> bill", Outcome::Review, true);
        let r = row(&state, Some(&ticket));
        assert_eq!(
            (
                r.state.as_str(),
                r.priority.as_str(),
                r.outcome.as_deref(),
                r.escalated
            ),
            ("routed", "high", Some("review"), true)
        );
        assert_eq!(
            (r.text.as_str(), r.runner_up.as_str()),
            ("my <PHONE_1> bill", "it")
        );
        let bare = row(&state, None);
        assert_eq!(
            (bare.outcome, bare.confidence, bare.text.as_str()),
            (None, None, "")
        );
    }

    #[test]
    fn decision_filters_and_search_pick_rows() {
        let (s1, t1) = decided("t1", "Refund my BILL", Outcome::Routed, false);
        let (s2, t2) = decided("t2", "printer jam", Outcome::Review, true);
        let rows = [row(&s1, Some(&t1)), row(&s2, Some(&t2))];
        let pick = |f: BoardFilter| -> Vec<String> {
            let q = query(f);
            rows.iter()
                .filter(|r| q.matches(r))
                .map(|r| r.ticket_id.clone())
                .collect()
        };
        let f = BoardFilter::default;
        assert_eq!(pick(f()), ["t1", "t2"]);
        assert_eq!(
            pick(BoardFilter {
                outcome: Some("review".into()),
                ..f()
            }),
            ["t2"]
        );
        assert_eq!(
            pick(BoardFilter {
                escalated: Some(false),
                ..f()
            }),
            ["t1"]
        );
        assert_eq!(
            pick(BoardFilter {
                q: Some("bill refund".into()),
                ..f()
            }),
            ["t1"]
        );
        assert!(
            pick(BoardFilter {
                q: Some("bill jam".into()),
                ..f()
            })
            .is_empty()
        );
        let err = BoardQuery::try_from(BoardFilter {
            outcome: Some("done".into()),
            ..f()
        })
        .err()
        .expect("no such outcome");
        assert_eq!(
            err.to_string(),
            "invalid outcome: \"done\" is not one of routed, review"
        );
    }
}
