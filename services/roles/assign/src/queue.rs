//! The departments' queues: tickets no agent fits yet, each with the reason, in the KV bucket
//! [`QUEUE_BUCKET`] by ticket id. The work state stays routed; this says why no one has it.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_agents::StoreError;
use switchboard_bus::Kv;

/// Waiting tickets as JSON by ticket id, written and read by the assign role only.
pub const QUEUE_BUCKET: &str = "assign_queue";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Waiting {
    pub ticket_id: String,
    pub department: String,
    /// Why no one has it: who in the department was ruled out, and for what.
    pub reason: String,
    /// Since when it has waited (ms since the Unix epoch).
    pub since_ms: i64,
    /// Its priority's weight: the heavier go first when a place frees up.
    pub weight: f32,
    /// When it should be started by: its arrival plus its priority's target (`assign.start_within`),
    /// as on an agent's load. Absent in an entry written before targets were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    kv: Arc<dyn Kv>,
}

impl Queue {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// Every waiting ticket, heaviest first, then longest waiting.
    pub async fn all(&self) -> Result<Vec<Waiting>, StoreError> {
        let mut all = self
            .kv
            .entries()
            .await?
            .into_iter()
            .map(|(id, e)| {
                serde_json::from_slice::<Waiting>(&e.value).map_err(|source| StoreError::Decode {
                    bucket: QUEUE_BUCKET,
                    key: id,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then(a.since_ms.cmp(&b.since_ms))
                .then_with(|| a.ticket_id.cmp(&b.ticket_id))
        });
        Ok(all)
    }

    /// Puts the ticket in its queue, or updates its reason; the time it started waiting is kept.
    /// Returns whether it was not waiting before: a ticket tried again and still waiting was queued
    /// once.
    pub async fn wait(&self, mut waiting: Waiting) -> Result<bool, StoreError> {
        let mut new = true;
        if let Some(entry) = self.kv.get(&waiting.ticket_id).await?
            && let Ok(before) = serde_json::from_slice::<Waiting>(&entry.value)
        {
            if before.reason == waiting.reason && before.department == waiting.department {
                return Ok(false);
            }
            waiting.since_ms = before.since_ms;
            new = false;
        }
        let value = serde_json::to_vec(&waiting).expect("strings and numbers serialise");
        self.kv.put(&waiting.ticket_id, Bytes::from(value)).await?;
        Ok(new)
    }

    pub async fn remove(&self, ticket_id: &str) -> Result<(), StoreError> {
        if self.kv.get(ticket_id).await?.is_some() {
            self.kv.delete(ticket_id).await?;
        }
        Ok(())
    }
}
