//! The NATS door: CloudEvents that connectors publish on `<prefix>.inbound.<channel>`. The runner owns the
//! consumer, publishes what the handler returns and acks after; a rejected event is dead-lettered with its
//! error, so nothing a connector sent is lost.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound};

use crate::intake::Intake;
use crate::json;

#[derive(Debug, Clone)]
pub struct InboundHandler {
    intake: Arc<Intake>,
}

impl InboundHandler {
    pub fn new(intake: Arc<Intake>) -> Self {
        Self { intake }
    }
}

#[async_trait]
impl Handler for InboundHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        // The channel a connector publishes on names the channel when the event does not.
        let channel = msg
            .subject
            .rsplit('.')
            .next()
            .filter(|token| !token.is_empty());
        let submission =
            json::parse(&msg.payload, true, channel).map_err(|e| self.intake.reject(e))?;
        let admitted = self.intake.admit(submission, msg.attempt > 1).await?;
        tracing::info!(
            ticket_id = %admitted.submitted.ticket_id,
            duplicate = admitted.submitted.duplicate,
            republished = admitted.outbound.is_some(),
            subject = %msg.subject,
            "inbound event admitted"
        );
        Ok(admitted.outbound.into_iter().collect())
    }
}
