//! Learning from corrections and resolutions.

use std::sync::Arc;

use async_trait::async_trait;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_desk::{Change, DeskError, WorkStates};
use switchboard_knowledge::{KnowledgeBase, StoredRecord};
use switchboard_proto::{
    Corrected, CorrectionReason, KnowledgeRecord, ProblemTypeSource, Resolved, Ticket, TicketState,
};
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, Subjects, error_chain};

use crate::error::{FeedbackError, load_ticket};

/// How much a corrected ticket counts as evidence, by the agent's reason. A policy or system change makes
/// older history wrong, so the correction must outvote the old tickets around it; a plain mistake only
/// needs to count a little more than one historical ticket.
pub fn correction_weight(reason: CorrectionReason) -> f32 {
    match reason {
        CorrectionReason::PolicyUpdated
        | CorrectionReason::SystemUpgraded
        | CorrectionReason::ResponsibilityChanged => 3.0,
        CorrectionReason::WrongDepartment => 2.0,
        CorrectionReason::Other | CorrectionReason::Unspecified => 1.5,
    }
}

/// The problem type a decided ticket teaches the knowledge base: the one its parser read (an LLM's) or
/// the one its nearest neighbours gave it. A local parser's keyword guess is left out: written back, it
/// would become a neighbour's type and spread to every similar ticket as if someone had named it.
fn learned_problem_type(ticket: &Ticket) -> String {
    match &ticket.parsed {
        Some(parsed)
            if matches!(
                parsed.problem_type_source(),
                ProblemTypeSource::Parser | ProblemTypeSource::Neighbours
            ) =>
        {
            parsed.problem_type.clone()
        }
        _ => String::new(),
    }
}

#[derive(Debug)]
pub struct FeedbackHandler {
    kb: KnowledgeBase,
    decisions: Arc<dyn Kv>,
    subjects: Subjects,
    /// The sentiment role's unresolved-rounds bucket, cleared for a thread when one of its tickets is
    /// resolved; `None` leaves the counts alone.
    threads: Option<Arc<dyn Kv>>,
    /// Where resolutions and corrections move the ticket's work state; `None` leaves work states alone.
    work: Option<WorkStates>,
}

/// The feedback role's name, the actor of a move whose event names no agent.
const ROLE: &str = "feedback";

impl FeedbackHandler {
    pub fn new(kb: KnowledgeBase, decisions: Arc<dyn Kv>, subjects: Subjects) -> Self {
        Self {
            kb,
            decisions,
            subjects,
            threads: None,
            work: None,
        }
    }

    /// Records resolutions and corrections in the tickets' work states:
    ///
    /// - a resolution moves the ticket to resolved, with the department that solved it when it names
    ///   one (otherwise the work state's department stands);
    /// - a correction moves it to routed with the new department, whether it was routed or in review
    ///   (a person has now decided, so it leaves review) or already assigned or in progress (the
    ///   assignee is cleared: they were in the wrong department). A resolved ticket stays resolved: the
    ///   correction still teaches the knowledge base, but only reopening, a person's act, changes a
    ///   resolution.
    ///
    /// The actor is the agent the event names (this role's name when it names none); the event's
    /// de-duplication id is the cause, so a redelivered event moves nothing twice.
    pub fn with_work(mut self, work: WorkStates) -> Self {
        self.work = Some(work);
        self
    }

    /// Applies the move; only a failure worth retrying fails the event, since learning from it does not
    /// depend on the lifecycle.
    async fn move_work(&self, ticket_id: &str, change: Change) -> Result<(), FeedbackError> {
        let Some(work) = &self.work else {
            return Ok(());
        };
        let to = change.to;
        match work.apply(ticket_id, change).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => Err(FeedbackError::Work(e)),
            Err(e @ DeskError::Refused { .. }) => {
                tracing::info!(ticket = ticket_id, error = %error_chain(&e), "work state left as it is");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(ticket = ticket_id, to = ?to, error = %error_chain(&e), "work state not moved");
                Ok(())
            }
        }
    }

    /// Resets a thread's unresolved rounds in `threads` ([`switchboard_policy::THREADS_BUCKET`]) when one
    /// of its tickets is resolved.
    pub fn with_threads(mut self, threads: Arc<dyn Kv>) -> Self {
        self.threads = Some(threads);
        self
    }

    async fn learn(&self, msg: &Inbound) -> Result<(), FeedbackError> {
        let record = if msg.subject == self.subjects.corrected() {
            let c =
                Corrected::decode(msg.payload.clone()).map_err(|source| FeedbackError::Decode {
                    ticket: "correction event".into(),
                    source,
                })?;
            let ticket = load_ticket(self.decisions.as_ref(), &c.ticket_id).await?;
            tracing::info!(ticket = %c.ticket_id, to = %c.to_department, reason = ?c.reason(), "learning from correction");
            let mut why = c.reason().as_str_name().to_owned();
            if !c.note.is_empty() {
                why = format!("{why}: {}", c.note);
            }
            let change = Change::new(
                TicketState::Routed,
                actor(&c.agent),
                format!("corrected.{}", c.at_ms),
            )
            .department(c.to_department.clone())
            .reason(why);
            self.move_work(&c.ticket_id, change).await?;
            KnowledgeRecord {
                id: format!("ticket:{}", ticket.id),
                problem_type: learned_problem_type(&ticket),
                text: ticket.text,
                department: c.to_department.clone(),
                created_at_ms: ticket.received_at_ms,
                resolution_minutes: None,
                source: "correction".into(),
                weight: correction_weight(c.reason()),
            }
        } else if msg.subject == self.subjects.resolved() {
            let r =
                Resolved::decode(msg.payload.clone()).map_err(|source| FeedbackError::Decode {
                    ticket: "resolution event".into(),
                    source,
                })?;
            let ticket = load_ticket(self.decisions.as_ref(), &r.ticket_id).await?;
            if let Some(threads) = &self.threads
                && !ticket.thread_id.is_empty()
            {
                switchboard_policy::resolve_thread(threads.as_ref(), &ticket.thread_id).await?;
            }
            let department = if r.department.is_empty() {
                ticket
                    .decision
                    .as_ref()
                    .map(|d| d.department.clone())
                    .unwrap_or_default()
            } else {
                r.department.clone()
            };
            // A resolution naming no department keeps the work state's, which has seen the
            // corrections that the stored decision has not.
            let mut change = Change::new(TicketState::Resolved, actor(&r.agent), "resolved");
            if !r.department.is_empty() {
                change = change
                    .department(r.department.clone())
                    .reason(format!("resolved by {}", r.department));
            }
            self.move_work(&r.ticket_id, change).await?;
            KnowledgeRecord {
                id: format!("ticket:{}", ticket.id),
                problem_type: learned_problem_type(&ticket),
                text: ticket.text,
                department,
                created_at_ms: ticket.received_at_ms,
                resolution_minutes: Some(
                    (r.resolved_at_ms - ticket.received_at_ms).max(0) / 60_000,
                ),
                source: "resolution".into(),
                weight: 1.0,
            }
        } else {
            return Err(FeedbackError::UnexpectedSubject {
                subject: msg.subject.clone(),
            });
        };
        // Embedded once, for the store and for the classifier, which learns the record in place here and
        // in every process that shares the knowledge base.
        let dense = self.kb.query(&record.text).await?.dense;
        self.kb.learn(vec![StoredRecord { record, dense }]).await?;
        // qdrant-edge does not replay its write-ahead log on open: unflushed learning would be lost in a crash.
        self.kb.flush().await;
        Ok(())
    }
}

/// Who moved the ticket: the agent the event names, or this role.
fn actor(agent: &str) -> &str {
    if agent.is_empty() { ROLE } else { agent }
}

#[async_trait]
impl Handler for FeedbackHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        match self.learn(msg).await {
            Ok(()) => Ok(Vec::new()),
            Err(
                e @ (FeedbackError::Bus(_)
                | FeedbackError::KnowledgeBase(_)
                | FeedbackError::Work(_)),
            ) => Err(HandlerError::transient(e)),
            Err(e) => Err(HandlerError::permanent(e)),
        }
    }
}
