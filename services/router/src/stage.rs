//! The router as a pipeline stage. The latest decision per ticket is kept in the `decisions` KV bucket,
//! where the decision board and the feedback role look it up. Waiting time and SLA deadlines raise the
//! priority again here: a ticket that queued behind a backlog after its assessment has waited longer,
//! and its deadline is nearer, by the time it is decided.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_proto::{Outcome, Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage, now_ms};
use switchboard_sentiment::{SentimentConfig, raise_for_time};

use crate::config::RouterConfig;
use crate::decide::decide;
use crate::rules::RuleBook;

#[derive(Debug)]
pub struct RouterStage {
    rules: Arc<RuleBook>,
    decisions: Arc<dyn Kv>,
    config: RouterConfig,
    /// The waiting-time and SLA settings the sentiment stage applied first.
    priority: SentimentConfig,
}

impl RouterStage {
    pub fn new(
        rules: Arc<RuleBook>,
        decisions: Arc<dyn Kv>,
        config: RouterConfig,
        priority: SentimentConfig,
    ) -> Self {
        Self {
            rules,
            decisions,
            config,
            priority,
        }
    }
}

#[async_trait]
impl TicketStage for RouterStage {
    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        let now = now_ms();
        if let Some(mut assessment) = ticket.assessment.take() {
            raise_for_time(&mut assessment, ticket, &self.priority, now);
            ticket.assessment = Some(assessment);
        }
        let decision = decide(ticket, &self.rules.current(), &self.config, now);
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

#[cfg(test)]
mod tests {
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_proto::{Assessment, Priority};

    use super::*;

    #[tokio::test]
    async fn a_ticket_that_waited_since_its_assessment_is_raised_when_decided() {
        let bus = MemoryBus::new();
        let rules = RuleBook::follow(bus.kv("rules").await.expect("rules"))
            .await
            .expect("rule book");
        let stage = RouterStage::new(
            Arc::new(rules),
            bus.kv("decisions").await.expect("decisions"),
            RouterConfig::default(),
            SentimentConfig::default(),
        );
        let mut assessment = Assessment::default();
        assessment.set_priority(Priority::Normal);
        let mut ticket = Ticket {
            id: "t-1".into(),
            // Assessed at once, decided 90 minutes later: past the 60-minute wait.
            received_at_ms: now_ms() - 90 * 60_000,
            assessment: Some(assessment),
            ..Ticket::default()
        };
        stage.process(&mut ticket).await.expect("decided");
        let assessment = ticket.assessment.clone().expect("assessment");
        assert_eq!(assessment.priority(), Priority::High);
        assert_eq!(assessment.priority_reasons, ["waited 90 min ≥ 60"]);
        assert_eq!(
            ticket.decision.as_ref().expect("decision").priority,
            Priority::High as i32
        );
        // Decided again (a redelivery, or a later stage): the same wait does not raise twice.
        stage.process(&mut ticket).await.expect("decided again");
        let assessment = ticket.assessment.expect("assessment");
        assert_eq!(assessment.priority(), Priority::High);
        assert_eq!(assessment.priority_reasons.len(), 1);
    }
}
