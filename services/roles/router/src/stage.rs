//! The router as a pipeline stage. The latest decision per ticket is kept in the `decisions` KV bucket,
//! where the decision board and the feedback role look it up. The priority policy is applied here, the
//! one place a priority is set: by the time a ticket is decided it has waited as long as it will before
//! a person sees it, and every signal the policy weighs (tone, incident) is on it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_policy::{PolicyConfig, prioritise};
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
    policy: PolicyConfig,
}

impl RouterStage {
    pub fn new(
        rules: Arc<RuleBook>,
        decisions: Arc<dyn Kv>,
        config: RouterConfig,
        policy: PolicyConfig,
    ) -> Self {
        Self {
            rules,
            decisions,
            config,
            policy,
        }
    }
}

#[async_trait]
impl TicketStage for RouterStage {
    const INPUT: Stage = Stage::Matched;

    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        let now = now_ms();
        let priority = prioritise(ticket, &self.policy, now);
        let decision = decide(ticket, &self.rules.current(), &self.config, priority, now);
        let stage = match decision.outcome() {
            Outcome::Routed => Stage::Routed,
            _ => Stage::Review,
        };
        tracing::info!(
            ticket = %ticket.id,
            department = %decision.department,
            confidence = decision.confidence,
            outcome = ?decision.outcome(),
            priority = ?decision.priority(),
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
    use switchboard_proto::{Priority, PriorityCause};

    use super::*;

    #[tokio::test]
    async fn the_decision_carries_the_policys_priority_once_per_wait() {
        let bus = MemoryBus::new();
        let rules = RuleBook::follow(bus.kv("rules").await.expect("rules"))
            .await
            .expect("rule book");
        let stage = RouterStage::new(
            Arc::new(rules),
            bus.kv("decisions").await.expect("decisions"),
            RouterConfig::default(),
            PolicyConfig::default(),
        );
        let mut ticket = Ticket {
            id: "t-1".into(),
            // Decided 90 minutes after receipt: past the 60-minute wait.
            received_at_ms: now_ms() - 90 * 60_000,
            ..Ticket::default()
        };
        stage.process(&mut ticket).await.expect("decided");
        let decision = ticket.decision.clone().expect("decision");
        assert_eq!(decision.priority(), Priority::High);
        assert_eq!(decision.priority_steps.len(), 1);
        assert_eq!(decision.priority_steps[0].cause(), PriorityCause::Wait);
        // Decided again (a redelivery): prioritised afresh, so the same wait does not raise twice.
        stage.process(&mut ticket).await.expect("decided again");
        let decision = ticket.decision.expect("decision");
        assert_eq!(decision.priority(), Priority::High);
        assert_eq!(decision.priority_steps.len(), 1);
    }
}
