//! The router as a pipeline stage. The latest decision per ticket is kept in the `decisions` KV bucket,
//! where the decision board and the feedback role look it up, and the decision moves the ticket's work
//! state from received to routed or in review (actor and cause `router`). The priority policy is applied here, the
//! one place a priority is set: by the time a ticket is decided it has waited as long as it will before
//! a person sees it, and every signal the policy weighs (tone, incident) is on it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use switchboard_bus::Kv;
use switchboard_desk::{Change, Evidence, WorkStates};
use switchboard_policy::{PolicyConfig, prioritise};
use switchboard_proto::{Outcome, Stage, Ticket, TicketState};
use switchboard_runtime::{HandlerError, TicketStage, error_chain, now_ms};

use crate::config::RouterConfig;
use crate::decide::decide;
use crate::rules::RuleBook;

#[derive(Debug)]
pub struct RouterStage {
    rules: Arc<RuleBook>,
    decisions: Arc<dyn Kv>,
    config: RouterConfig,
    policy: PolicyConfig,
    /// Where each decision moves the ticket's work state; `None` leaves work states alone.
    work: Option<WorkStates>,
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
            work: None,
        }
    }

    /// Records each decision as the ticket's move from received to routed or in review.
    pub fn with_work(mut self, work: WorkStates) -> Self {
        self.work = Some(work);
        self
    }

    /// Moves the ticket's work state as decided. A redelivered decision finds its cause already
    /// recorded and changes nothing (the first decision's move stands); a move the lifecycle refuses
    /// (the ticket is resolved by now) is logged, and the decision still goes out.
    async fn record(&self, ticket: &Ticket, stage: Stage) -> Result<(), HandlerError> {
        let (Some(work), Some(decision)) = (&self.work, &ticket.decision) else {
            return Ok(());
        };
        let to = if stage == Stage::Routed {
            TicketState::Routed
        } else {
            TicketState::InReview
        };
        let evidence = Evidence {
            ids: ticket
                .matches
                .iter()
                .flat_map(|m| m.similar.iter().map(|s| s.id.clone()))
                .collect(),
            model_version: decision.model_version.clone(),
            rules_version: decision.rules_version,
            confidence: decision.confidence,
        };
        let change = Change::new(to, ROLE, ROLE)
            .kind("decided")
            .evidence(evidence)
            .department(decision.department.clone())
            .priority(decision.priority())
            .received_at(ticket.received_at_ms)
            .reason(format!(
                "{} to {} at confidence {:.2}",
                decision.outcome().as_str_name(),
                decision.department,
                decision.confidence
            ));
        match work.apply(&ticket.id, change).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => Err(HandlerError::transient(e)),
            Err(e) => {
                tracing::warn!(ticket = %ticket.id, error = %error_chain(&e), "work state not moved");
                Ok(())
            }
        }
    }
}

/// The router's name as the actor of the moves it makes.
const ROLE: &str = "router";

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
        // The decision is stored before the work state moves: whoever acts on the move (the assign
        // role reading the ticket's language and problem type) finds the decision that made it.
        self.decisions
            .put(&ticket.id, Bytes::from(ticket.encode_to_vec()))
            .await
            .map_err(HandlerError::transient)?;
        self.record(ticket, stage).await?;
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

    #[tokio::test]
    async fn a_decision_moves_the_work_state_once() {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let work = WorkStates::open(&bus, switchboard_runtime::Subjects::default())
            .await
            .expect("work");
        let rules = RuleBook::follow(bus.kv("rules").await.expect("rules"))
            .await
            .expect("rule book");
        let stage = RouterStage::new(
            Arc::new(rules),
            bus.kv("decisions").await.expect("decisions"),
            RouterConfig::default(),
            PolicyConfig::default(),
        )
        .with_work(work.clone());
        let mut ticket = Ticket {
            id: "t-2".into(),
            received_at_ms: 1_234,
            ..Ticket::default()
        };
        // Nothing in the knowledge base: to review.
        assert_eq!(
            stage.process(&mut ticket).await.expect("decided"),
            Stage::Review
        );
        let state = work.get("t-2").await.expect("get").expect("a work state");
        assert_eq!((state.state(), state.revision), (TicketState::InReview, 1));
        assert_eq!(state.received_at_ms, 1_234);
        let moved = &state.history[0];
        assert_eq!(
            (moved.from(), moved.actor.as_str()),
            (TicketState::Received, "router")
        );
        assert!(moved.reason.contains("OUTCOME_REVIEW"), "{}", moved.reason);
        assert_eq!(moved.kind, "decided");
        // The move records the decision's model version (the method alone: no classifier behind an
        // empty knowledge base) and no evidence ids, there being no similar tickets.
        assert_eq!(moved.model_version, crate::decide::MODEL_VERSION);
        assert!(moved.evidence_ids.is_empty());

        // A redelivery decides again but moves nothing again.
        stage.process(&mut ticket).await.expect("decided again");
        let again = work.get("t-2").await.expect("get").expect("a work state");
        assert_eq!(again, state);
    }
}
