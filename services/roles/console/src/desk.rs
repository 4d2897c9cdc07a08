//! [`Desk`]: the operations behind the desk API, over the work states, the decided tickets and the
//! feedback events.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use switchboard_bus::Kv;
use switchboard_desk::{Applied, Change, WorkStates};
use switchboard_proto::{Corrected, CorrectionReason, Resolved, Ticket, TicketState, WorkState};
use switchboard_runtime::{Outbound, Publisher, Subjects, now_ms};

use crate::error::ConsoleError;
use crate::query::{ReviewFilter, ReviewQuery, TicketFilter, TicketQuery};

/// The `console` settings section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// How long a reviewer's claim on a ticket lasts, in seconds, unless they act or claim again (600).
    pub claim_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { claim_secs: 600 }
    }
}

/// The correction reasons a person can give, by the name the API takes.
const REASONS: [(&str, CorrectionReason); 5] = [
    ("wrong_department", CorrectionReason::WrongDepartment),
    ("policy_updated", CorrectionReason::PolicyUpdated),
    ("system_upgraded", CorrectionReason::SystemUpgraded),
    (
        "responsibility_changed",
        CorrectionReason::ResponsibilityChanged,
    ),
    ("other", CorrectionReason::Other),
];

/// The desk's operations.
#[derive(Debug, Clone)]
pub struct Desk {
    work: WorkStates,
    work_kv: Arc<dyn Kv>,
    decisions: Arc<dyn Kv>,
    publisher: Publisher,
    subjects: Subjects,
    config: ConsoleConfig,
}

/// A ticket as the desk shows it: its work state and, once decided, the decided envelope with all its
/// evidence.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub state: Option<WorkState>,
    pub ticket: Option<Ticket>,
}

impl Desk {
    pub fn new(
        work: WorkStates,
        work_kv: Arc<dyn Kv>,
        decisions: Arc<dyn Kv>,
        publisher: Publisher,
        subjects: Subjects,
        config: ConsoleConfig,
    ) -> Self {
        Self {
            work,
            work_kv,
            decisions,
            publisher,
            subjects,
            config,
        }
    }

    /// Every work state. A scan of the bucket: lists are bounded in what they answer, not yet in what
    /// they read.
    pub(crate) async fn all(&self) -> Result<Vec<WorkState>, ConsoleError> {
        let mut out = Vec::new();
        for (key, entry) in self.work_kv.entries().await? {
            match WorkState::decode(entry.value) {
                Ok(state) => out.push(state),
                Err(e) => {
                    tracing::warn!(ticket = %key, error = %e, "an undecodable work state is left out of the list")
                }
            }
        }
        Ok(out)
    }

    pub async fn tickets(
        &self,
        filter: TicketFilter,
    ) -> Result<(Vec<WorkState>, Option<String>), ConsoleError> {
        let query = TicketQuery::try_from(filter)?;
        Ok(query.page(self.all().await?))
    }

    pub async fn reviews(&self, filter: ReviewFilter) -> Result<Vec<WorkState>, ConsoleError> {
        let query = ReviewQuery::try_from(filter)?;
        Ok(query.queue(self.all().await?, now_ms()))
    }

    /// The decided envelope of the ticket, once the router has stored it.
    pub(crate) async fn decided(&self, id: &str) -> Result<Option<Ticket>, ConsoleError> {
        let Some(entry) = self.decisions.get(id).await? else {
            return Ok(None);
        };
        let ticket = Ticket::decode(entry.value).map_err(|source| ConsoleError::Decode {
            ticket: id.to_owned(),
            source,
        })?;
        Ok(Some(ticket))
    }

    /// The ticket's work state, when intake has recorded it.
    pub(crate) async fn work_state(&self, id: &str) -> Result<Option<WorkState>, ConsoleError> {
        Ok(self.work.get(id).await?)
    }

    /// The ticket's work state and decided envelope; unknown when it has neither.
    pub async fn ticket(&self, id: &str) -> Result<TicketView, ConsoleError> {
        let state = self.work.get(id).await?;
        let ticket = self.decided(id).await?;
        if state.is_none() && ticket.is_none() {
            return Err(ConsoleError::UnknownTicket(id.to_owned()));
        }
        Ok(TicketView { state, ticket })
    }

    async fn state(&self, id: &str) -> Result<WorkState, ConsoleError> {
        self.work
            .get(id)
            .await?
            .ok_or_else(|| ConsoleError::UnknownTicket(id.to_owned()))
    }

    /// Gives the ticket in review to `reviewer` for the configured time.
    pub async fn claim(&self, id: &str, reviewer: &str) -> Result<WorkState, ConsoleError> {
        let until = now_ms() + i64::try_from(self.config.claim_secs * 1000).unwrap_or(i64::MAX);
        Ok(self.work.claim(id, reviewer, until).await?.state)
    }

    /// Accepts the decision's department for a ticket in review (or checks a routed one): routed, by
    /// `actor`.
    pub async fn confirm(
        &self,
        id: &str,
        actor: &str,
        note: &str,
    ) -> Result<WorkState, ConsoleError> {
        let current = self.state(id).await?;
        if !matches!(current.state(), TicketState::InReview | TicketState::Routed) {
            return Err(ConsoleError::invalid(
                "state",
                format!(
                    "only a ticket in review or routed can be confirmed; {id} is {}",
                    switchboard_runtime::subjects::state_name(current.state())
                ),
            ));
        }
        if current.department.is_empty() {
            return Err(ConsoleError::invalid(
                "department",
                "the decision suggests no department to confirm: send a correction naming one",
            ));
        }
        let change = Change::new(TicketState::Routed, actor, "")
            .kind("confirmed")
            .department(current.department.clone())
            .reason(format!("{actor} confirmed {}", current.department))
            .note(note);
        Ok(self.work.apply(id, change).await?.state)
    }

    /// Moves the ticket to `department` for `reason` and publishes the correction feedback learns from.
    pub async fn correct(
        &self,
        id: &str,
        actor: &str,
        department: &str,
        reason: &str,
        note: &str,
    ) -> Result<WorkState, ConsoleError> {
        let department = department.trim();
        if department.is_empty() {
            return Err(ConsoleError::invalid("department", "is required"));
        }
        let code = parse_reason(reason)?;
        let current = self.state(id).await?;
        let at_ms = now_ms();
        let mut why = code.as_str_name().to_owned();
        if !note.is_empty() {
            why = format!("{why}: {note}");
        }
        // The cause feedback gives the same correction, so its move of the event finds this one done.
        let change = Change::new(TicketState::Routed, actor, format!("corrected.{at_ms}"))
            .kind(reason)
            .department(department)
            .reason(why)
            .note(note);
        let Applied { state, .. } = self.work.apply(id, change).await?;
        let mut event = Corrected {
            ticket_id: id.to_owned(),
            from_department: current.department,
            to_department: department.to_owned(),
            agent: actor.to_owned(),
            note: note.to_owned(),
            at_ms,
            ..Corrected::default()
        };
        event.set_reason(code);
        let subject = self.subjects.corrected();
        let msg_id = format!("{id}.corrected.{at_ms}");
        self.publish(id, "corrected", subject, msg_id, event.encode_to_vec())
            .await?;
        Ok(state)
    }

    /// Resolves the ticket (by `department` when given, else the one it is in) and publishes the
    /// resolution feedback learns from.
    pub async fn resolve(
        &self,
        id: &str,
        actor: &str,
        department: &str,
        note: &str,
    ) -> Result<WorkState, ConsoleError> {
        let department = department.trim();
        let mut change = Change::new(TicketState::Resolved, actor, "resolved").note(note);
        if !department.is_empty() {
            change = change
                .department(department)
                .reason(format!("resolved by {department}"));
        }
        let applied = self.work.apply(id, change).await?;
        let at_ms = applied.transition.at_ms;
        let event = Resolved {
            ticket_id: id.to_owned(),
            department: department.to_owned(),
            agent: actor.to_owned(),
            resolved_at_ms: at_ms,
        };
        let subject = self.subjects.resolved();
        let msg_id = format!("{id}.resolved");
        self.publish(id, "resolved", subject, msg_id, event.encode_to_vec())
            .await?;
        Ok(applied.state)
    }

    /// Reopens a resolved ticket, by `actor` for `reason`: the one way back from a resolution. Its
    /// department stays; routing it again is a correction or an assignment.
    pub async fn reopen(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<WorkState, ConsoleError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ConsoleError::invalid(
                "reason",
                "is required: say why the resolution did not hold",
            ));
        }
        self.state(id).await?;
        let change = Change::new(TicketState::Reopened, actor, "")
            .kind("reopened")
            .reason(reason);
        Ok(self.work.apply(id, change).await?.state)
    }

    /// Publishes the event feedback learns from, once the ticket's work state says it is `done`.
    async fn publish(
        &self,
        ticket: &str,
        done: &'static str,
        subject: String,
        msg_id: String,
        payload: Vec<u8>,
    ) -> Result<(), ConsoleError> {
        self.publisher
            .publish(Outbound {
                subject,
                msg_id: Some(msg_id),
                payload: Bytes::from(payload),
            })
            .await
            .map_err(|source| ConsoleError::Unpublished {
                ticket: ticket.to_owned(),
                done,
                source,
            })
    }
}

fn parse_reason(name: &str) -> Result<CorrectionReason, ConsoleError> {
    REASONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let known: Vec<&str> = REASONS.iter().map(|(n, _)| *n).collect();
            ConsoleError::invalid(
                "reason",
                format!("{name:?} is not one of {}", known.join(", ")),
            )
        })
}
