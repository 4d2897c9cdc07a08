//! The NATS door: CloudEvents that connectors publish on `<prefix>.inbound.<channel>`. The runner owns the
//! consumer and acks after the handler returns; a rejected event is dead-lettered with its error, so
//! nothing a connector sent is lost. Unlike other handlers this one publishes its ticket itself, through
//! the path every door shares: the idempotency claim must learn that the publish landed, which a publish
//! left to the runner would not tell it. A failed publish is a transient error, so the event is
//! redelivered and the retry publishes the claimed ticket again.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_runtime::metrics::submission;
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
        let submitted = match json::parse(&msg.payload, true, channel) {
            Ok(submission) => self.intake.submit_queued(submission).await,
            Err(e) => Err(self.intake.reject(e)),
        };
        self.intake.count(submission::NATS, &submitted);
        let submitted = submitted?;
        tracing::info!(
            ticket_id = %submitted.ticket_id,
            duplicate = submitted.duplicate,
            attempt = msg.attempt,
            subject = %msg.subject,
            "inbound event admitted"
        );
        Ok(Vec::new())
    }
}
