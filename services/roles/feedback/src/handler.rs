//! Learning from corrections and resolutions.

use std::sync::Arc;

use async_trait::async_trait;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_desk::{Change, DeskError, WorkStates};
use switchboard_knowledge::{KnowledgeBase, StoredRecord};
use switchboard_proto::{
    Corrected, KnowledgeRecord, ProblemTypeSource, Resolved, Ticket, TicketState,
};
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, Subjects, error_chain};

use crate::corrections::{CorrectedTicket, CorrectionsConfig, demote};
use crate::decision;
use crate::error::{FeedbackError, load_ticket};

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
    /// How corrections weigh, by reason.
    corrections: CorrectionsConfig,
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
            corrections: CorrectionsConfig::default(),
        }
    }

    /// Weighs corrections as `corrections` says instead of by the defaults.
    pub fn with_corrections(mut self, corrections: CorrectionsConfig) -> Self {
        self.corrections = corrections;
        self
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
        if msg.subject == self.subjects.corrected() {
            let c =
                Corrected::decode(msg.payload.clone()).map_err(|source| FeedbackError::Decode {
                    ticket: "correction event".into(),
                    source,
                })?;
            self.learn_correction(c).await
        } else if msg.subject == self.subjects.resolved() {
            let r =
                Resolved::decode(msg.payload.clone()).map_err(|source| FeedbackError::Decode {
                    ticket: "resolution event".into(),
                    source,
                })?;
            self.learn_resolution(r).await
        } else {
            Err(FeedbackError::UnexpectedSubject {
                subject: msg.subject.clone(),
            })
        }
    }

    /// A correction: the work state moves, the ticket is learnt with its reason's weight, a change of
    /// history demotes the old department's close older tickets, and the stored decision becomes the
    /// agent's. The decision is written last: it is what marks the correction applied, so a
    /// redelivery after a failure anywhere before it redoes the rest (the record is replaced by id;
    /// only a failure between the demotion and the decision's write demotes twice, within the floor),
    /// and a redelivery after it demotes nothing again.
    async fn learn_correction(&self, c: Corrected) -> Result<(), FeedbackError> {
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
        let record = KnowledgeRecord {
            id: record_id(&ticket),
            problem_type: learned_problem_type(&ticket),
            text: ticket.text.clone(),
            department: c.to_department.clone(),
            created_at_ms: ticket.received_at_ms,
            resolution_minutes: None,
            source: CORRECTION_SOURCE.into(),
            weight: self.corrections.weight(c.reason()),
        };
        let query = self.kb.query(&record.text).await?;
        self.teach(record, query.dense.clone()).await?;
        if !decision::holds(&ticket, &c) {
            // The department it was taken from: the event's, or else the decision it corrects.
            let from = match c.from_department.as_str() {
                "" => ticket
                    .decision
                    .as_ref()
                    .map(|d| d.department.as_str())
                    .unwrap_or_default(),
                from => from,
            };
            let corrected = CorrectedTicket {
                record_id: &record_id(&ticket),
                query: &query,
                received_at_ms: ticket.received_at_ms,
                from_department: from,
                to_department: &c.to_department,
                reason: c.reason(),
            };
            let demoted = demote(&self.kb, &self.corrections, &corrected).await?;
            if demoted > 0 {
                tracing::info!(ticket = %c.ticket_id, from, demoted, "older tickets of the old department demoted");
                self.kb.flush().await;
            }
        }
        decision::correct(self.decisions.as_ref(), &c).await?;
        Ok(())
    }

    /// A resolution: the thread's rounds are cleared, the work state moves, and the ticket is learnt
    /// with its resolution time. It never undoes a correction: naming no department, it learns the
    /// stored decision's, which is the corrected one; and a corrected ticket keeps the correction's
    /// weight and source, since a person's word on the department outweighs a plain resolution.
    async fn learn_resolution(&self, r: Resolved) -> Result<(), FeedbackError> {
        let ticket = load_ticket(self.decisions.as_ref(), &r.ticket_id).await?;
        if let Some(threads) = &self.threads
            && !ticket.thread_id.is_empty()
        {
            switchboard_policy::resolve_thread(threads.as_ref(), &ticket.thread_id).await?;
        }
        let decided = ticket.decision.as_ref();
        let department = if r.department.is_empty() {
            decided.map(|d| d.department.clone()).unwrap_or_default()
        } else {
            r.department.clone()
        };
        let (source, weight) = match decided.and_then(|d| d.correction.as_ref()) {
            Some(c) => (CORRECTION_SOURCE, self.corrections.weight(c.reason())),
            None => ("resolution", 1.0),
        };
        // A resolution naming no department keeps the work state's.
        let mut change = Change::new(TicketState::Resolved, actor(&r.agent), "resolved");
        if !r.department.is_empty() {
            change = change
                .department(r.department.clone())
                .reason(format!("resolved by {}", r.department));
        }
        self.move_work(&r.ticket_id, change).await?;
        let record = KnowledgeRecord {
            id: record_id(&ticket),
            problem_type: learned_problem_type(&ticket),
            text: ticket.text.clone(),
            department,
            created_at_ms: ticket.received_at_ms,
            resolution_minutes: Some((r.resolved_at_ms - ticket.received_at_ms).max(0) / 60_000),
            source: source.into(),
            weight,
        };
        let dense = self.kb.query(&record.text).await?.dense;
        self.teach(record, dense).await
    }

    /// Writes the record and folds it into the classifier in place, here and in every process that
    /// shares the knowledge base.
    async fn teach(
        &self,
        record: KnowledgeRecord,
        dense: Option<Vec<f32>>,
    ) -> Result<(), FeedbackError> {
        self.kb.learn(vec![StoredRecord { record, dense }]).await?;
        // qdrant-edge does not replay its write-ahead log on open: unflushed learning would be lost in a crash.
        self.kb.flush().await;
        Ok(())
    }
}

/// The source of a record a correction wrote.
const CORRECTION_SOURCE: &str = "correction";

/// A decided ticket's knowledge record: one per ticket, which its correction and its resolution both
/// write, so the later replaces the earlier.
fn record_id(ticket: &Ticket) -> String {
    format!("ticket:{}", ticket.id)
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
            // Waited out in place, without using up the message's deliveries.
            Err(e) if matches!(&e, FeedbackError::KnowledgeBase(k) if k.is_outage()) => {
                Err(HandlerError::unavailable(e))
            }
            Err(
                e @ (FeedbackError::Bus(_)
                | FeedbackError::KnowledgeBase(_)
                | FeedbackError::Work(_)
                | FeedbackError::Contended { .. }),
            ) => Err(HandlerError::transient(e)),
            Err(e) => Err(HandlerError::permanent(e)),
        }
    }
}
