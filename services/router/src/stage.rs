//! The router as a pipeline stage. The latest decision per ticket is kept in the `decisions` KV bucket,
//! where the decision board and the feedback role look it up.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_proto::{Outcome, Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage, now_ms};

use crate::config::RouterConfig;
use crate::decide::decide;
use crate::rules::RuleBook;

#[derive(Debug)]
pub struct RouterStage {
    rules: Arc<RuleBook>,
    decisions: Arc<dyn Kv>,
    config: RouterConfig,
}

impl RouterStage {
    pub fn new(rules: Arc<RuleBook>, decisions: Arc<dyn Kv>, config: RouterConfig) -> Self {
        Self {
            rules,
            decisions,
            config,
        }
    }
}

#[async_trait]
impl TicketStage for RouterStage {
    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        let decision = decide(ticket, &self.rules.current(), &self.config, now_ms());
        let stage = match decision.outcome() {
            Outcome::Routed => Stage::Routed,
            _ => Stage::Review,
        };
        tracing::info!(
            ticket = %ticket.id,
            department = %decision.department,
            confidence = decision.confidence,
            outcome = ?decision.outcome(),
            "decided"
        );
        ticket.decision = Some(decision);
        ticket.set_stage(stage);
        self.decisions
            .put(&ticket.id, Bytes::from(ticket.encode_to_vec()))
            .await
            .map_err(HandlerError::transient)?;
        Ok(stage)
    }
}
