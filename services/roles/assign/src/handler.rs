//! The assign role's consumer: every work-state transition.

use async_trait::async_trait;
use prost::Message;
use switchboard_proto::Transition;
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound};

use crate::assigner::Assigner;

#[derive(Debug, Clone)]
pub struct TransitionHandler {
    assigner: Assigner,
}

impl TransitionHandler {
    pub fn new(assigner: Assigner) -> Self {
        Self { assigner }
    }
}

#[async_trait]
impl Handler for TransitionHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        let transition =
            Transition::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
        // What it publishes (its own moves) goes out through the work states, as every mover's does.
        match self.assigner.on_moved(&transition.ticket_id).await {
            Ok(()) => Ok(Vec::new()),
            Err(e) if e.is_transient() => Err(HandlerError::transient(e)),
            Err(e) => Err(HandlerError::permanent(e)),
        }
    }
}
