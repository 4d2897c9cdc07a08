//! The retriever's place in the pipeline: attach the most similar historical tickets, the classifier's
//! department probabilities, the departments whose duty descriptions read most like the ticket and the
//! most relevant policy passages, as the evidence the router decides on; and give a locally
//! parsed ticket the problem type of its nearest neighbours; and say how many customers have just sent
//! close copies of it (an incident signal, which the priority policy weighs).

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_proto::{Matches, ProblemTypeSource, Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage};

use switchboard_knowledge::bm25::VECTOR_NAME;
use switchboard_knowledge::{KnowledgeBase, KnowledgeError};

use crate::duties::{DUTY_MATCHES, Duties};
use crate::incidents::IncidentWatch;
use crate::problem_type;
use switchboard_knowledge::documents::PassageRef;
use switchboard_proto::{PolicyPassage, SimilarTicket};

/// A store or embedder failure is theirs, not the ticket's: it is retried. A Qdrant server that does
/// not answer is waited out without using up the ticket's deliveries.
fn store_error(e: KnowledgeError) -> HandlerError {
    if e.is_outage() {
        HandlerError::unavailable(e)
    } else {
        HandlerError::transient(e)
    }
}

/// Policy passages each ticket carries: the decision board shows them, the router weighs them.
pub const POLICY_PASSAGES: usize = 3;

fn policy_passage(hit: &SimilarTicket) -> PolicyPassage {
    let place = PassageRef::of(hit);
    PolicyPassage {
        document: place.document,
        position: place.position,
        text: hit.text.clone(),
        departments: place.departments,
        score: hit.score,
    }
}

#[derive(Debug, Clone)]
pub struct RetrieverStage {
    pub kb: KnowledgeBase,
    /// How many similar tickets to attach: the router's evidence is a vote over them.
    pub limit: usize,
    pub incidents: Arc<IncidentWatch>,
    pub duties: Arc<Duties>,
    /// The policy passages, searched with each ticket's query; `None` where none are kept.
    pub policies: Option<KnowledgeBase>,
}

#[async_trait]
impl TicketStage for RetrieverStage {
    const INPUT: Stage = Stage::Assessed;

    /// A ticket with nothing similar still moves on, with empty matches: the router then sends it to
    /// human review rather than guessing.
    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        let query = self.kb.query(&ticket.text).await.map_err(store_error)?;
        let similar = self
            .kb
            .similar_to(&query, self.limit)
            .await
            .map_err(store_error)?;
        let model = self
            .kb
            .classifier()
            .scores(&self.kb, &query)
            .await
            .map_err(store_error)?;
        if let Some(parsed) = ticket.parsed.as_mut() {
            if problem_type::assign_from_neighbours(parsed, &similar) {
                tracing::debug!(
                    ticket = %ticket.id,
                    problem_type = %parsed.problem_type,
                    neighbours = ?parsed.problem_type_neighbours,
                    "problem type taken from the nearest tickets"
                );
            } else if parsed.problem_type_source() == ProblemTypeSource::Keyword {
                tracing::debug!(
                    ticket = %ticket.id,
                    "no similar ticket has a problem type; the keyword guess stays"
                );
            }
        }
        let incident = self
            .incidents
            .observe(ticket, &query, switchboard_runtime::now_ms())
            .await;
        if let Some(incident) = &incident {
            tracing::debug!(
                ticket = %ticket.id,
                customers = incident.customers,
                window_minutes = incident.window_minutes,
                "close recent tickets from other customers"
            );
        }
        let retriever = match self.kb.embedder().map(|e| e.name()) {
            Some(embedder) => format!("{VECTOR_NAME}+{embedder}"),
            None => VECTOR_NAME.to_owned(),
        };
        let policies = match &self.policies {
            Some(store) => store
                .similar_to(&query, POLICY_PASSAGES)
                .await
                .map_err(store_error)?
                .iter()
                .map(policy_passage)
                .collect(),
            None => Vec::new(),
        };
        let duties = query
            .dense
            .as_deref()
            .map(|dense| {
                let classifier = self.kb.classifier();
                self.duties
                    .matches(dense, DUTY_MATCHES, |d| classifier.knows(d))
            })
            .unwrap_or_default();
        ticket.matches = Some(Matches {
            similar,
            duties,
            policies,
            retriever,
            model_scores: model.scores,
            model_version: model.version,
            model_weight: model.model_weight,
            incident,
        });
        Ok(Stage::Matched)
    }
}
