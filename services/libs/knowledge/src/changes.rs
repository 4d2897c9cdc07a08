//! The change feed: how a write to a shared knowledge base reaches the classifier of every process that
//! holds it. In the chart's layout feedback and the retriever run in separate pods over one Qdrant
//! collection; without the feed, a correction would reach the retriever's model only when its pod
//! restarted.
//!
//! Every write through a [`KnowledgeBase`] with a feed puts a [`KnowledgeChange`] under one key of the
//! `knowledge` KV bucket. That key is the bucket's only one, so its revisions count the writes of every
//! process, one by one: the revision is the knowledge base's generation. Each process watches the key:
//! a change one revision past its model carries the records (for a small write), which the model learns
//! in place; a gap or a bulk write leaves it stale, and the trainer retrains in the background.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use switchboard_bus::{BusError, Kv};
use switchboard_proto::{KnowledgeChange, LearnedRecord};

use crate::store::{KnowledgeBase, StoredRecord};

/// The KV bucket of the change feed.
pub const KNOWLEDGE_BUCKET: &str = "knowledge";

/// The bucket's one key.
const CHANGES_KEY: &str = "changes";

/// Writes of at most this many records travel whole and are learnt in place everywhere; larger ones
/// (imports) only say how many, and every model retrains. A correction is one record; the weights it
/// lowers, and the parts of history it moves to its department, are a write each of at most
/// `demote_max_records` (120 by default). 128 records with 512-dimension vectors are about 300 KB,
/// well inside NATS's default 1 MB message.
pub(crate) const LEARN_IN_PLACE: usize = 128;

/// Announces writes on the feed.
#[derive(Debug, Clone)]
pub(crate) struct ChangeFeed {
    kv: Arc<dyn Kv>,
}

impl ChangeFeed {
    pub(crate) fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// The revision of the last announced write, 0 before any.
    pub(crate) async fn revision(&self) -> Result<u64, BusError> {
        Ok(self.kv.get(CHANGES_KEY).await?.map_or(0, |e| e.revision))
    }

    /// Announces a write and returns its revision: the knowledge base's new generation.
    /// `learnable` is the written records when at most [`LEARN_IN_PLACE`], else empty.
    pub(crate) async fn announce(
        &self,
        written: usize,
        learnable: &[StoredRecord],
    ) -> Result<u64, BusError> {
        let change = KnowledgeChange {
            written: written as u64,
            records: learnable
                .iter()
                .map(|r| LearnedRecord {
                    record: Some(r.record.clone()),
                    dense: r.dense.clone().unwrap_or_default(),
                })
                .collect(),
        };
        self.kv
            .put(CHANGES_KEY, Bytes::from(change.encode_to_vec()))
            .await
    }

    /// Follows the feed until the bus closes: every change another process announced moves `kb`'s
    /// generation up and is learnt in place when it can be.
    pub(crate) async fn follow(self, kb: KnowledgeBase) -> Result<(), BusError> {
        let mut changes = self.kv.watch().await?;
        while let Some(change) = changes.next().await {
            let change = change?;
            let Some(value) = change.value.filter(|_| change.key == CHANGES_KEY) else {
                continue;
            };
            let records = match KnowledgeChange::decode(value) {
                Ok(c) if c.records.len() as u64 == c.written => c
                    .records
                    .into_iter()
                    .filter_map(|r| {
                        let dense = (!r.dense.is_empty()).then_some(r.dense);
                        r.record.map(|record| StoredRecord { record, dense })
                    })
                    .collect(),
                Ok(_) => Vec::new(),
                Err(error) => {
                    tracing::warn!(%error, revision = change.revision, "unreadable knowledge change; the model retrains");
                    Vec::new()
                }
            };
            kb.observed(change.revision, records).await;
        }
        Err(BusError::Closed)
    }
}
