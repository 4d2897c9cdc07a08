//! Learning from corrections and resolutions.

use std::sync::Arc;

use async_trait::async_trait;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_knowledge::{KnowledgeBase, StoredRecord};
use switchboard_proto::{
    Corrected, CorrectionReason, KnowledgeRecord, ProblemTypeSource, Resolved, Ticket,
};
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, Subjects};

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
}

impl FeedbackHandler {
    pub fn new(kb: KnowledgeBase, decisions: Arc<dyn Kv>, subjects: Subjects) -> Self {
        Self {
            kb,
            decisions,
            subjects,
            threads: None,
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

#[async_trait]
impl Handler for FeedbackHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        match self.learn(msg).await {
            Ok(()) => Ok(Vec::new()),
            Err(e @ (FeedbackError::Bus(_) | FeedbackError::KnowledgeBase(_))) => {
                Err(HandlerError::transient(e))
            }
            Err(e) => Err(HandlerError::permanent(e)),
        }
    }
}
