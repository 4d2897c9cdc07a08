//! The retriever's place in the pipeline: attach the most similar historical tickets, and the
//! classifier's department probabilities, as the evidence the router decides on; and give a locally
//! parsed ticket the problem type of its nearest neighbours; and raise the priority of a ticket that many
//! customers have just sent close copies of (an incident).

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_proto::{Matches, ProblemTypeSource, Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage};

use crate::bm25::VECTOR_NAME;
use crate::incidents::IncidentWatch;
use crate::problem_type;
use crate::store::KnowledgeBase;

#[derive(Debug, Clone)]
pub struct RetrieverStage {
    pub kb: KnowledgeBase,
    /// How many similar tickets to attach: the router's evidence is a vote over them.
    pub limit: usize,
    pub incidents: Arc<IncidentWatch>,
}

#[async_trait]
impl TicketStage for RetrieverStage {
    /// A ticket with nothing similar still moves on, with empty matches: the router then sends it to
    /// human review rather than guessing.
    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        // A store or embedder failure is theirs, not the ticket's: redelivery may well succeed.
        let query = self
            .kb
            .query(&ticket.text)
            .await
            .map_err(HandlerError::transient)?;
        let similar = self
            .kb
            .similar_to(&query, self.limit)
            .await
            .map_err(HandlerError::transient)?;
        let model = self
            .kb
            .classifier()
            .scores(&self.kb, &query, self.limit)
            .await
            .map_err(HandlerError::transient)?;
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
        if let Some(incident) =
            self.incidents
                .observe(ticket, &query, switchboard_runtime::now_ms())
        {
            tracing::info!(
                ticket = %ticket.id,
                customers = incident.customers,
                window_minutes = incident.window_minutes,
                "incident: priority raised"
            );
        }
        let retriever = match self.kb.embedder().map(|e| e.name()) {
            Some(embedder) => format!("{VECTOR_NAME}+{embedder}"),
            None => VECTOR_NAME.to_owned(),
        };
        ticket.matches = Some(Matches {
            similar,
            retriever,
            model_scores: model.scores,
            model_version: model.version,
            model_weight: model.model_weight,
        });
        Ok(Stage::Matched)
    }
}
