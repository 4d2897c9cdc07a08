//! Publishing with the current trace context in the headers, so one ticket is one trace across roles.

use std::sync::Arc;

use switchboard_bus::{Bus, BusError, OutMessage};

use crate::handler::Outbound;
use crate::telemetry;

#[derive(Debug, Clone)]
pub struct Publisher {
    bus: Arc<dyn Bus>,
}

impl Publisher {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    pub async fn publish(&self, out: Outbound) -> Result<(), BusError> {
        self.bus
            .publish(OutMessage {
                subject: out.subject,
                msg_id: out.msg_id,
                headers: telemetry::current_context_headers(),
                payload: out.payload,
            })
            .await
    }
}
