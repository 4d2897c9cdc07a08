use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prost::Message;
use switchboard_proto::{Corrected, Resolved, Stage, Ticket};
use switchboard_runtime::{Handler, HandlerError, Inbound, Metrics, Outbound, Subjects};

use crate::tally::Tally;

/// Reads every subject of the pipeline; publishes nothing.
#[derive(Debug)]
pub struct MetricsHandler {
    tally: Arc<Mutex<Tally>>,
    metrics: Metrics,
    subjects: Subjects,
}

impl MetricsHandler {
    pub fn new(tally: Arc<Mutex<Tally>>, metrics: Metrics, subjects: Subjects) -> Self {
        Self {
            tally,
            metrics,
            subjects,
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Handler for MetricsHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        let s = &self.subjects;
        let subject = msg.subject.as_str();
        if subject == s.stage(Stage::Received) {
            let t = Ticket::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
            self.tally().received(&t.id, t.received_at_ms);
        } else if subject == s.stage(Stage::Routed) || subject == s.stage(Stage::Review) {
            let t = Ticket::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
            let routed = t.stage() == Stage::Routed;
            self.metrics
                .decision(if routed { "routed" } else { "review" });
            let problem = t
                .parsed
                .as_ref()
                .map(|p| p.problem_type.as_str())
                .unwrap_or_default();
            self.tally().decided(routed, problem);
        } else if subject == s.corrected() {
            let c = Corrected::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
            self.metrics.correction(c.reason().as_str_name());
            self.tally().corrected(&c.ticket_id);
        } else if subject == s.resolved() {
            let r = Resolved::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
            self.tally().resolved(&r.ticket_id, r.resolved_at_ms);
        } else if subject.starts_with(&format!("{}.deadletter.", s.prefix())) {
            self.tally().dead_lettered();
        }
        Ok(Vec::new())
    }
}
