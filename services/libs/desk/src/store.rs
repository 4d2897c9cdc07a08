//! [`WorkStates`]: the work state of every ticket in the `work` bucket, moved by read, check, write-if-
//! unchanged, and published as a transition event once written.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use switchboard_bus::{Bus, BusError, Created, Kv, validate_key};
use switchboard_proto::{Priority, TicketState, Transition, WorkState};
use switchboard_runtime::{Outbound, Publisher, Subjects, now_ms, telemetry};

use crate::lifecycle::{self, TransitionError};
use crate::{MAX_ATTEMPTS, RECENT, WORK_BUCKET};

/// The trace-context header whose value a transition records as its trace id.
const TRACEPARENT: &str = "traceparent";

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("ticket {ticket}: transition refused")]
    Refused {
        ticket: String,
        #[source]
        source: TransitionError,
    },
    #[error("ticket {ticket} cannot be assigned to no one")]
    NoAssignee { ticket: String },
    /// Other writers changed the ticket between every read and write this one made.
    #[error("ticket {ticket}'s work state changed under each of {attempts} attempts to move it")]
    Contended { ticket: String, attempts: u32 },
    #[error("the stored work state of ticket {ticket} cannot be decoded")]
    Decode {
        ticket: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the work-state store failed")]
    Bus(#[from] BusError),
}

impl DeskError {
    /// Whether trying the same change again later may succeed: the bus failed or was contended. A
    /// refused move or an undecodable record stays so.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeskError::Bus(_) | DeskError::Contended { .. })
    }
}

/// One requested move: to which state, by whom, why, and what else changes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub to: TicketState,
    /// A role's name when the system moves the ticket, an agent's id when a person does.
    pub actor: String,
    /// What caused the move, unique per ticket (`"router"`, `"resolved"`, `"corrected.<at_ms>"`): a
    /// change whose cause is among the ticket's recent transitions is not applied again; its recorded
    /// transition is published again instead (the bus de-duplicates it). Empty: never de-duplicated.
    pub cause: String,
    pub reason: String,
    /// The new department; `None` keeps the current one.
    pub department: Option<String>,
    /// The new assignee; `None` keeps the current one, except that moving to routed or in review
    /// clears it (the ticket is back in a department's queue).
    pub assignee: Option<String>,
    pub priority: Option<Priority>,
    /// When the ticket was received, recorded when this change creates its work state.
    pub received_at_ms: Option<i64>,
}

impl Change {
    pub fn new(to: TicketState, actor: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            to,
            actor: actor.into(),
            cause: cause.into(),
            reason: String::new(),
            department: None,
            assignee: None,
            priority: None,
            received_at_ms: None,
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn department(mut self, department: impl Into<String>) -> Self {
        self.department = Some(department.into());
        self
    }

    pub fn assignee(mut self, agent: impl Into<String>) -> Self {
        self.assignee = Some(agent.into());
        self
    }

    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    pub fn received_at(mut self, at_ms: i64) -> Self {
        self.received_at_ms = Some(at_ms);
        self
    }
}

/// What [`WorkStates::apply`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The transition made, or the one recorded earlier for the same cause.
    pub transition: Transition,
    /// The ticket's work state after it.
    pub state: WorkState,
    /// The cause had been applied before: nothing was written, the recorded transition republished.
    pub replayed: bool,
}

/// The work state of every ticket, in the `work` bucket.
#[derive(Debug, Clone)]
pub struct WorkStates {
    kv: Arc<dyn Kv>,
    publisher: Publisher,
    subjects: Subjects,
}

impl WorkStates {
    pub fn new(kv: Arc<dyn Kv>, publisher: Publisher, subjects: Subjects) -> Self {
        Self {
            kv,
            publisher,
            subjects,
        }
    }

    /// Opens the [`WORK_BUCKET`] of `bus`, publishing transitions on it under `subjects`.
    pub async fn open(bus: &Arc<dyn Bus>, subjects: Subjects) -> Result<Self, BusError> {
        let kv = bus.kv(WORK_BUCKET).await?;
        Ok(Self::new(kv, Publisher::new(Arc::clone(bus)), subjects))
    }

    /// The ticket's work state; `None` before its first transition (a ticket with none is received).
    pub async fn get(&self, ticket_id: &str) -> Result<Option<WorkState>, DeskError> {
        match self.kv.get(ticket_id).await? {
            Some(entry) => Ok(Some(decode(ticket_id, entry.value)?)),
            None => Ok(None),
        }
    }

    /// Moves the ticket as `change` asks, if the lifecycle allows it from the state it is in: reads the
    /// state, checks the move, and writes only if no one else wrote since the read, reading again when
    /// someone did (at most [`MAX_ATTEMPTS`] times), so concurrent movers never lose a move. Once
    /// written, the transition is published on `<prefix>.work.<to>` with the message id
    /// `<ticket>.work.<revision>`, carrying the current trace context. A failed publish fails the call;
    /// the same change applied again then republishes the recorded transition.
    pub async fn apply(&self, ticket_id: &str, change: Change) -> Result<Applied, DeskError> {
        validate_key(ticket_id)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (current, revision) = match self.kv.get(ticket_id).await? {
                Some(entry) => (decode(ticket_id, entry.value)?, Some(entry.revision)),
                None => (fresh(ticket_id, &change), None),
            };
            if !change.cause.is_empty()
                && let Some(done) = current.recent.iter().find(|t| t.cause == change.cause)
            {
                let transition = done.clone();
                self.publish(&transition).await?;
                return Ok(Applied {
                    transition,
                    state: current,
                    replayed: true,
                });
            }
            let (next, transition) = step(ticket_id, current, &change)?;
            let value = Bytes::from(next.encode_to_vec());
            let written = match revision {
                Some(revision) => match self.kv.update(ticket_id, value, revision).await {
                    Ok(_) => true,
                    Err(BusError::WrongRevision { .. }) => false,
                    Err(err) => return Err(err.into()),
                },
                None => matches!(
                    self.kv.create(ticket_id, value).await?,
                    Created::Created { .. }
                ),
            };
            if written {
                self.publish(&transition).await?;
                tracing::debug!(
                    ticket = ticket_id,
                    from = lifecycle_name(transition.from()),
                    to = lifecycle_name(transition.to()),
                    actor = %transition.actor,
                    revision = transition.revision,
                    "work state moved"
                );
                return Ok(Applied {
                    transition,
                    state: next,
                    replayed: false,
                });
            }
            if attempts == MAX_ATTEMPTS {
                return Err(DeskError::Contended {
                    ticket: ticket_id.to_owned(),
                    attempts,
                });
            }
            // Someone else wrote first. A short pause that differs between writers keeps two of them
            // from colliding again and again.
            tokio::time::sleep(jitter(attempts)).await;
        }
    }

    async fn publish(&self, transition: &Transition) -> Result<(), BusError> {
        self.publisher
            .publish(Outbound {
                subject: self.subjects.work(transition.to()),
                msg_id: Some(format!(
                    "{}.work.{}",
                    transition.ticket_id, transition.revision
                )),
                payload: Bytes::from(transition.encode_to_vec()),
            })
            .await
    }
}

fn lifecycle_name(state: TicketState) -> &'static str {
    switchboard_runtime::subjects::state_name(state)
}

fn decode(ticket_id: &str, value: Bytes) -> Result<WorkState, DeskError> {
    WorkState::decode(value).map_err(|source| DeskError::Decode {
        ticket: ticket_id.to_owned(),
        source,
    })
}

/// The work state of a ticket no transition has touched yet: received.
fn fresh(ticket_id: &str, change: &Change) -> WorkState {
    let mut state = WorkState {
        ticket_id: ticket_id.to_owned(),
        received_at_ms: change.received_at_ms.unwrap_or_default(),
        ..WorkState::default()
    };
    state.set_state(TicketState::Received);
    state
}

/// The state after `change` and the transition that makes it, if the lifecycle allows the move.
fn step(
    ticket_id: &str,
    mut state: WorkState,
    change: &Change,
) -> Result<(WorkState, Transition), DeskError> {
    let from = state.state();
    lifecycle::check(from, change.to).map_err(|source| DeskError::Refused {
        ticket: ticket_id.to_owned(),
        source,
    })?;
    if let Some(department) = &change.department {
        state.department.clone_from(department);
    }
    match (&change.assignee, change.to) {
        (Some(agent), _) => state.assignee.clone_from(agent),
        (None, TicketState::Routed | TicketState::InReview) => state.assignee.clear(),
        (None, _) => {}
    }
    if change.to == TicketState::Assigned && state.assignee.is_empty() {
        return Err(DeskError::NoAssignee {
            ticket: ticket_id.to_owned(),
        });
    }
    if let Some(priority) = change.priority {
        state.set_priority(priority);
    }
    let at_ms = now_ms();
    state.set_state(change.to);
    state.updated_at_ms = at_ms;
    state.revision += 1;
    let trace_id = telemetry::current_context_headers()
        .remove(TRACEPARENT)
        .unwrap_or_default();
    let mut transition = Transition {
        ticket_id: ticket_id.to_owned(),
        actor: change.actor.clone(),
        at_ms,
        reason: change.reason.clone(),
        trace_id,
        revision: state.revision,
        cause: change.cause.clone(),
        department: state.department.clone(),
        assignee: state.assignee.clone(),
        ..Transition::default()
    };
    transition.set_from(from);
    transition.set_to(change.to);
    state.recent.push(transition.clone());
    let excess = state.recent.len().saturating_sub(RECENT);
    state.recent.drain(..excess);
    Ok((state, transition))
}

/// Up to a millisecond per attempt so far, varying with the clock's nanoseconds.
fn jitter(attempts: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_micros(u64::from(nanos % (attempts * 1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: TicketState) -> WorkState {
        let mut s = WorkState {
            ticket_id: "t".into(),
            department: "billing".into(),
            assignee: "agent-1".into(),
            ..WorkState::default()
        };
        s.set_state(state);
        s
    }

    #[test]
    fn routing_clears_the_assignee_and_assigning_needs_one() {
        let change = Change::new(TicketState::Routed, "feedback", "c").department("hr");
        let (next, t) = step("t", at(TicketState::Assigned), &change).expect("allowed");
        assert_eq!(
            (next.department.as_str(), next.assignee.as_str()),
            ("hr", "")
        );
        assert_eq!(
            (t.from(), t.to(), t.revision),
            (TicketState::Assigned, TicketState::Routed, 1)
        );

        let mut unassigned = at(TicketState::Routed);
        unassigned.assignee.clear();
        let err = step(
            "t",
            unassigned,
            &Change::new(TicketState::Assigned, "a", "c"),
        )
        .expect_err("no one to assign to");
        assert!(matches!(err, DeskError::NoAssignee { .. }), "{err:?}");
    }

    #[test]
    fn a_refusal_names_the_ticket_and_both_states() {
        let err = step(
            "t-9",
            at(TicketState::Resolved),
            &Change::new(TicketState::Assigned, "a", "c"),
        )
        .expect_err("resolved tickets are reopened first");
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err).expect("source")
        );
        assert_eq!(
            chain,
            "ticket t-9: transition refused: a ticket cannot go from resolved to assigned"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn only_the_latest_transitions_are_kept() {
        let mut state = at(TicketState::Assigned);
        for i in 0..RECENT + 5 {
            let change = Change::new(TicketState::Assigned, "a", format!("c{i}")).assignee("x");
            state = step("t", state, &change).expect("allowed").0;
        }
        assert_eq!(state.recent.len(), RECENT);
        assert_eq!(state.recent[0].cause, "c5");
        assert_eq!(state.revision, (RECENT + 5) as u64);
    }
}
