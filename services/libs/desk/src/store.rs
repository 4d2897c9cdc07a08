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
use crate::{HISTORY_LIMIT, MAX_ATTEMPTS, WORK_BUCKET};

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
    #[error("ticket {ticket} is claimed by {by} until {until_ms} (ms since the epoch)")]
    Claimed {
        ticket: String,
        by: String,
        until_ms: i64,
    },
    #[error("ticket {ticket} is not in review (it is {state})")]
    NotInReview { ticket: String, state: &'static str },
    #[error("ticket {ticket} has no work state")]
    Unknown { ticket: String },
    /// The change was made for the ticket as it stood at one revision, and it has moved since.
    #[error("ticket {ticket} moved on (it is at revision {found}, not {expected})")]
    Moved {
        ticket: String,
        expected: u64,
        found: u64,
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
    /// What kind of act this is (see `Transition.kind`); empty: the target state's name.
    pub kind: String,
    pub note: String,
    /// With a decision: what it weighed (see `Transition.evidence_ids`).
    pub evidence: Option<Evidence>,
    /// Apply only to the ticket at this work-state revision: a change decided from what the ticket was
    /// (an assignment chosen for a routed ticket) must not land on what it has become since.
    pub at_revision: Option<u64>,
}

/// What a decision knew, recorded in its transition for the audit trail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    pub ids: Vec<String>,
    pub model_version: String,
    pub rules_version: u64,
    pub confidence: f32,
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
            kind: String::new(),
            note: String::new(),
            evidence: None,
            at_revision: None,
        }
    }

    pub fn at_revision(mut self, revision: u64) -> Self {
        self.at_revision = Some(revision);
        self
    }

    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    pub fn evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
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

    /// Moves the ticket as `change` asks, if the lifecycle allows it from the state it is in (and, out of
    /// review, if no one else holds the ticket's claim): reads the state, checks the move, and writes only
    /// if no one else wrote since the read, reading again when someone did (at most [`MAX_ATTEMPTS`]
    /// times), so concurrent movers never lose a move. Once written, the transition is published on
    /// `<prefix>.work.<to>` with the message id `<ticket>.work.<revision>`, carrying the current trace
    /// context. A failed publish fails the call; the same change applied again then republishes the
    /// recorded transition.
    pub async fn apply(&self, ticket_id: &str, change: Change) -> Result<Applied, DeskError> {
        self.modify(ticket_id, &change.cause, |current| {
            let current = current.unwrap_or_else(|| fresh(ticket_id, &change));
            step(ticket_id, current, &change, now_ms())
        })
        .await
    }

    /// Records that a ticket was received, before the pipeline decides it: its work state is created at
    /// received, with its channel and time. A ticket whose work state exists already (a redelivery, or
    /// a decision that came first) is left as it is; `false` then.
    pub async fn receive(
        &self,
        ticket_id: &str,
        channel: &str,
        received_at_ms: i64,
    ) -> Result<bool, DeskError> {
        validate_key(ticket_id)?;
        let mut state = fresh(ticket_id, &Change::new(TicketState::Received, "", ""));
        state.channel = channel.to_owned();
        state.received_at_ms = received_at_ms;
        state.updated_at_ms = received_at_ms;
        state.revision = 1;
        let mut transition = transition(ticket_id, &state, "intake", RECEIVED, received_at_ms);
        transition.set_from(TicketState::Unspecified);
        transition.reason = format!("received on {channel}");
        state.history.push(transition.clone());
        match self
            .kv
            .create(ticket_id, Bytes::from(state.encode_to_vec()))
            .await?
        {
            Created::Created { .. } => {
                self.publish(&transition).await?;
                Ok(true)
            }
            Created::Exists(entry) => {
                // The first attempt may have stored the state and failed to publish: publish its
                // transition again (the bus stores it once).
                let stored = decode(ticket_id, entry.value)?;
                if let Some(first) = stored.history.iter().find(|t| t.cause == RECEIVED) {
                    self.publish(first).await?;
                }
                Ok(false)
            }
        }
    }

    /// Gives a ticket in review to one reviewer until `until_ms`: a claim no one else holds (or that
    /// expired) is taken, the holder's own is extended, another's live claim is refused naming them.
    /// The claim is recorded in the ticket's history; moving the ticket out of review releases it.
    pub async fn claim(
        &self,
        ticket_id: &str,
        reviewer: &str,
        until_ms: i64,
    ) -> Result<Applied, DeskError> {
        self.modify(ticket_id, "", |current| {
            let Some(mut state) = current else {
                return Err(DeskError::Unknown {
                    ticket: ticket_id.to_owned(),
                });
            };
            let now = now_ms();
            if state.state() != TicketState::InReview {
                return Err(DeskError::NotInReview {
                    ticket: ticket_id.to_owned(),
                    state: lifecycle_name(state.state()),
                });
            }
            check_claim(ticket_id, &state, reviewer, now)?;
            state.claimed_by = reviewer.to_owned();
            state.claim_expires_at_ms = until_ms;
            state.updated_at_ms = now;
            state.revision += 1;
            let mut t = transition(ticket_id, &state, reviewer, "", now);
            t.set_from(TicketState::InReview);
            t.kind = "claimed".into();
            t.reason = format!("claimed for review until {until_ms}");
            push(&mut state, t.clone());
            Ok((state, t))
        })
        .await
    }

    /// The read, change, write-if-unchanged loop under every move: `change` makes the next state and
    /// its transition from the current one (`None` before the ticket's first).
    async fn modify(
        &self,
        ticket_id: &str,
        cause: &str,
        mut change: impl FnMut(Option<WorkState>) -> Result<(WorkState, Transition), DeskError>,
    ) -> Result<Applied, DeskError> {
        validate_key(ticket_id)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (current, revision) = match self.kv.get(ticket_id).await? {
                Some(entry) => (Some(decode(ticket_id, entry.value)?), Some(entry.revision)),
                None => (None, None),
            };
            if !cause.is_empty()
                && let Some(current) = &current
                && let Some(done) = current.history.iter().find(|t| t.cause == cause)
            {
                let transition = done.clone();
                self.publish(&transition).await?;
                return Ok(Applied {
                    transition,
                    state: current.clone(),
                    replayed: true,
                });
            }
            let (next, transition) = change(current)?;
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

/// The cause of the received transition: a ticket is received once.
const RECEIVED: &str = "received";

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

/// Refuses a person's act on a ticket in review that another reviewer holds a live claim on.
fn check_claim(ticket_id: &str, state: &WorkState, actor: &str, now: i64) -> Result<(), DeskError> {
    if !state.claimed_by.is_empty() && state.claimed_by != actor && state.claim_expires_at_ms > now
    {
        return Err(DeskError::Claimed {
            ticket: ticket_id.to_owned(),
            by: state.claimed_by.clone(),
            until_ms: state.claim_expires_at_ms,
        });
    }
    Ok(())
}

/// The state after `change` and the transition that makes it, if the lifecycle allows the move.
fn step(
    ticket_id: &str,
    mut state: WorkState,
    change: &Change,
    at_ms: i64,
) -> Result<(WorkState, Transition), DeskError> {
    if let Some(expected) = change.at_revision
        && expected != state.revision
    {
        return Err(DeskError::Moved {
            ticket: ticket_id.to_owned(),
            expected,
            found: state.revision,
        });
    }
    let from = state.state();
    lifecycle::check(from, change.to).map_err(|source| DeskError::Refused {
        ticket: ticket_id.to_owned(),
        source,
    })?;
    if from == TicketState::InReview {
        check_claim(ticket_id, &state, &change.actor, at_ms)?;
    }
    if change.to != TicketState::InReview {
        state.claimed_by.clear();
        state.claim_expires_at_ms = 0;
    }
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
    state.set_state(change.to);
    state.updated_at_ms = at_ms;
    state.revision += 1;
    let mut t = transition(ticket_id, &state, &change.actor, &change.cause, at_ms);
    t.set_from(from);
    t.reason.clone_from(&change.reason);
    t.note.clone_from(&change.note);
    t.kind = if change.kind.is_empty() {
        lifecycle_name(change.to).to_owned()
    } else {
        change.kind.clone()
    };
    if let Some(e) = &change.evidence {
        t.evidence_ids.clone_from(&e.ids);
        t.model_version.clone_from(&e.model_version);
        t.rules_version = e.rules_version;
        t.confidence = e.confidence;
    }
    push(&mut state, t.clone());
    Ok((state, t))
}

/// The transition into `state` as it now stands (its state, revision, department and assignee), made
/// by `actor` for `cause` at `at_ms`, in the current trace.
fn transition(
    ticket_id: &str,
    state: &WorkState,
    actor: &str,
    cause: &str,
    at_ms: i64,
) -> Transition {
    let trace_id = telemetry::current_context_headers()
        .remove(TRACEPARENT)
        .unwrap_or_default();
    let mut t = Transition {
        ticket_id: ticket_id.to_owned(),
        actor: actor.to_owned(),
        at_ms,
        trace_id,
        revision: state.revision,
        cause: cause.to_owned(),
        department: state.department.clone(),
        assignee: state.assignee.clone(),
        kind: lifecycle_name(state.state()).to_owned(),
        ..Transition::default()
    };
    t.set_to(state.state());
    t
}

/// Appends to the ticket's history, dropping (and counting) the oldest beyond [`HISTORY_LIMIT`].
fn push(state: &mut WorkState, transition: Transition) {
    state.history.push(transition);
    let excess = state.history.len().saturating_sub(HISTORY_LIMIT);
    state.history.drain(..excess);
    state.dropped += excess as u64;
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
        let (next, t) = step("t", at(TicketState::Assigned), &change, 1).expect("allowed");
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
            1,
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
            1,
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
    fn the_history_keeps_every_move_up_to_its_limit_and_counts_the_rest() {
        let mut state = at(TicketState::Assigned);
        for i in 0..HISTORY_LIMIT + 5 {
            let change = Change::new(TicketState::Assigned, "a", format!("c{i}")).assignee("x");
            state = step("t", state, &change, 1).expect("allowed").0;
        }
        assert_eq!(state.history.len(), HISTORY_LIMIT);
        assert_eq!(state.history[0].cause, "c5");
        assert_eq!(state.dropped, 5);
        assert_eq!(state.revision, (HISTORY_LIMIT + 5) as u64);
    }

    #[test]
    fn a_live_claim_keeps_others_out_of_review_and_leaving_review_releases_it() {
        let mut held = at(TicketState::InReview);
        held.claimed_by = "ana".into();
        held.claim_expires_at_ms = 1_000;
        let confirm = |actor: &str| {
            Change::new(TicketState::Routed, actor, "confirmed")
                .department("billing")
                .kind("confirmed")
        };
        let err = step("t", held.clone(), &confirm("ben"), 999).expect_err("ana holds it");
        assert_eq!(
            err.to_string(),
            "ticket t is claimed by ana until 1000 (ms since the epoch)"
        );
        // Her own act goes through and frees the ticket; so does anyone's once the claim expired.
        let (next, t) = step("t", held.clone(), &confirm("ana"), 999).expect("hers");
        assert_eq!(
            (next.claimed_by.as_str(), next.claim_expires_at_ms),
            ("", 0)
        );
        assert_eq!((t.kind.as_str(), t.actor.as_str()), ("confirmed", "ana"));
        step("t", held, &confirm("ben"), 1_000).expect("expired");
    }

    #[test]
    fn a_change_for_an_earlier_revision_is_refused() {
        let mut routed = at(TicketState::Routed);
        routed.revision = 4;
        let change = |rev| {
            Change::new(TicketState::Assigned, "assign", "")
                .assignee("b")
                .at_revision(rev)
        };
        let err = step("t", routed.clone(), &change(3), 1).expect_err("moved since");
        assert_eq!(
            err.to_string(),
            "ticket t moved on (it is at revision 4, not 3)"
        );
        let (next, _) = step("t", routed, &change(4), 1).expect("as it stands");
        assert_eq!((next.assignee.as_str(), next.revision), ("b", 5));
    }

    #[test]
    fn a_decision_records_what_it_weighed() {
        let change = Change::new(TicketState::Routed, "router", "router").evidence(Evidence {
            ids: vec!["kb:1".into(), "kb:7".into()],
            model_version: "m-3".into(),
            rules_version: 12,
            confidence: 0.8,
        });
        let (_, t) = step("t", at(TicketState::Received), &change, 5).expect("allowed");
        assert_eq!(t.evidence_ids, ["kb:1", "kb:7"]);
        assert_eq!((t.model_version.as_str(), t.rules_version), ("m-3", 12));
        assert_eq!((t.kind.as_str(), t.at_ms), ("routed", 5));
    }
}
