//! The [`AGENTS_BUCKET`]: every agent as JSON under its id.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use switchboard_bus::{BusError, Entry, Kv, KvChange};

use crate::AGENTS_BUCKET;
use crate::agent::{Agent, Status};
use crate::error::StoreError;

/// How many times a status change reads again when an admin rewrote the agent in between.
const MAX_ATTEMPTS: u32 = 16;

#[derive(Debug, Clone)]
pub struct AgentStore {
    kv: Arc<dyn Kv>,
}

impl AgentStore {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        if switchboard_bus::validate_key(id).is_err() {
            return Ok(None);
        }
        self.kv.get(id).await?.map(|e| decode(id, &e)).transpose()
    }

    /// Every agent, by id.
    pub async fn list(&self) -> Result<Vec<Agent>, StoreError> {
        self.kv
            .entries()
            .await?
            .into_iter()
            .map(|(id, e)| decode(&id, &e))
            .collect()
    }

    /// Stores the agent after checking every field; replaces one with the same id.
    pub async fn put(&self, agent: &Agent) -> Result<(), StoreError> {
        agent.validate()?;
        self.kv.put(&agent.id, encode(agent)).await?;
        Ok(())
    }

    /// Whether there was an agent to delete.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        if self.get(id).await?.is_none() {
            return Ok(false);
        }
        self.kv.delete(id).await?;
        Ok(true)
    }

    /// Sets the agent's status, keeping every other field even when an admin edits the agent at the
    /// same moment. `None` when there is no such agent.
    pub async fn set_status(&self, id: &str, status: Status) -> Result<Option<Agent>, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(entry) = self.kv.get(id).await? else {
                return Ok(None);
            };
            let mut agent = decode(id, &entry)?;
            agent.status = status;
            match self.kv.update(id, encode(&agent), entry.revision).await {
                Ok(_) => return Ok(Some(agent)),
                Err(BusError::WrongRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contended {
            bucket: AGENTS_BUCKET,
            key: id.to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Every agent as it is now, then each change: what reacts to agents coming online or going.
    pub async fn watch(
        &self,
    ) -> Result<BoxStream<'static, Result<KvChange, BusError>>, StoreError> {
        Ok(self.kv.watch().await?)
    }
}

/// Decodes one agent from a change, `None` when it was deleted.
pub fn changed_agent(change: &KvChange) -> Result<Option<Agent>, StoreError> {
    change
        .value
        .as_ref()
        .map(|v| {
            serde_json::from_slice(v).map_err(|source| StoreError::Decode {
                bucket: AGENTS_BUCKET,
                key: change.key.clone(),
                source,
            })
        })
        .transpose()
}

fn encode(agent: &Agent) -> Bytes {
    Bytes::from(serde_json::to_vec(agent).expect("strings, numbers and maps of them serialise"))
}

fn decode(id: &str, entry: &Entry) -> Result<Agent, StoreError> {
    serde_json::from_slice(&entry.value).map_err(|source| StoreError::Decode {
        bucket: AGENTS_BUCKET,
        key: id.to_owned(),
        source,
    })
}
