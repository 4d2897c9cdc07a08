//! The knowledge base: historical tickets in a vector store, one BM25 sparse vector each and, when an
//! embedder is configured, one dense vector, with the ticket's facts as payload. A search runs both
//! retrievals as prefetches and fuses them in the engine (see [`crate::vector_store::Search`]). The
//! store is qdrant-edge in-process by default, or a collection on a Qdrant server.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use switchboard_bus::{BusError, Kv};
use switchboard_embed::Embedder;
use switchboard_proto::{KnowledgeRecord, SimilarTicket};
use tokio::sync::Notify;

use crate::bm25;
use crate::changes::{ChangeFeed, LEARN_IN_PLACE};
use crate::classifier::Classifier;
use crate::edge_store::EdgeStore;
use crate::error::KnowledgeError;
use crate::keywords::KeywordTable;
use crate::layout::Layout;
use crate::point::{self, Point};
use crate::remote_store::RemoteStore;
use crate::vector_store::{Search, VectorStore};

/// The knowledge base of historical tickets. Cloning is cheap and every clone shares one store.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Box<dyn VectorStore>,
    /// Successful writes since open, or with a change feed the revision of the last write any process
    /// announced: the classifier compares it with the one it was trained at.
    generation: AtomicU64,
    /// Told after every change, once the classifier has had its chance to learn it in place.
    changed: Notify,
    /// Set once by [`KnowledgeBase::share_changes`].
    feed: OnceLock<ChangeFeed>,
    /// Derived from the records, so it lives with them (see the classifier module).
    classifier: Classifier,
    /// `None`: BM25 only.
    embedder: Option<Arc<dyn Embedder>>,
    /// A dense match below this cosine similarity is not evidence (see [`KnowledgeBase::open`]).
    min_dense_similarity: f32,
}

/// A text ready to search with: its words for BM25 and, with an embedder, its embedding. Made once per
/// ticket by [`KnowledgeBase::query`], so the search and the classifier share one embedding.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: String,
    pub dense: Option<Vec<f32>>,
}

/// A stored record with its dense vector, when it has one: what the classifier trains on.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub record: KnowledgeRecord,
    pub dense: Option<Vec<f32>>,
}

impl KnowledgeBase {
    /// Opens the embedded store under `dir`, creating the directory and an empty store if there is none.
    /// One directory must be opened by one `KnowledgeBase` at a time: qdrant-edge takes no lock on it.
    ///
    /// With an embedder, records carry its dense vectors too and searches fuse both retrievals; a dense
    /// match scoring under `min_dense_similarity` (cosine) is dropped, so a ticket unlike anything stored
    /// finds nothing and goes to review. A store written with another layout (another dimension, or with
    /// or without dense vectors) is [`KnowledgeError::Layout`], naming both: re-import into a fresh
    /// directory.
    ///
    /// Blocking (it reads the segments from disk): call it at start-up or from a blocking task.
    pub fn open(
        dir: &Path,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<Self, KnowledgeError> {
        let store = EdgeStore::open(dir, &layout(embedder.as_deref())?)?;
        Ok(Self::new(Box::new(store), embedder, min_dense_similarity))
    }

    /// [`Self::open`] on a Qdrant server: connects to `url` (the server's gRPC port, 6334 by default)
    /// with `api_key` when the server wants one, and uses `collection`, creating it with the
    /// knowledge base's vectors and payload indexes when it is missing. Replicas share the collection.
    pub async fn connect(
        url: &str,
        api_key: Option<&str>,
        collection: &str,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<Self, KnowledgeError> {
        let layout = layout(embedder.as_deref())?;
        let store = RemoteStore::connect(url, api_key, collection, &layout).await?;
        Ok(Self::new(Box::new(store), embedder, min_dense_similarity))
    }

    fn new(
        store: Box<dyn VectorStore>,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                generation: AtomicU64::new(0),
                changed: Notify::new(),
                feed: OnceLock::new(),
                classifier: Classifier::default(),
                embedder,
                min_dense_similarity,
            }),
        }
    }

    /// Inserts or replaces records by id and returns how many were written. The whole batch is checked
    /// first: one record without text or department rejects the batch, naming the record and the field.
    /// An empty `source` becomes "history" and a zero `weight` becomes 1.0 (proto3 cannot tell unset
    /// from zero, and a zero weight would silence the evidence).
    ///
    /// Written records are searchable at once but durable only after [`Self::flush`].
    pub async fn upsert(&self, records: Vec<KnowledgeRecord>) -> Result<usize, KnowledgeError> {
        // Checked before embedding, so a bad record costs no model time.
        for record in &records {
            check(record)?;
        }
        let dense: Vec<Option<Vec<f32>>> = match &self.inner.embedder {
            Some(embedder) if !records.is_empty() => {
                let texts = records.iter().map(|r| r.text.clone()).collect();
                embedder.embed(texts).await?.into_iter().map(Some).collect()
            }
            _ => vec![None; records.len()],
        };
        let stored = records
            .into_iter()
            .zip(dense)
            .map(|(record, dense)| StoredRecord { record, dense })
            .collect();
        self.write(stored).await
    }

    /// [`Self::upsert`] for records already embedded (by [`Self::query`]). Each record must carry a
    /// dense vector exactly when the store has an embedder. The classifier retrains in the background.
    pub async fn write(&self, records: Vec<StoredRecord>) -> Result<usize, KnowledgeError> {
        let (written, _, _) = self.store(records).await?;
        self.inner.changed.notify_one();
        Ok(written)
    }

    /// Deletes the records with these ids (those not stored are skipped). Like any write that is not
    /// learnt in place, it leaves the classifier to retrain.
    pub async fn delete(&self, ids: &[String]) -> Result<(), KnowledgeError> {
        if ids.is_empty() {
            return Ok(());
        }
        let points = ids.iter().map(|id| point::point_id(id)).collect();
        self.inner.store.delete(points).await?;
        self.announce(ids.len(), &[]).await?;
        self.inner.changed.notify_one();
        Ok(())
    }

    /// Writes what people taught (a correction, a resolution, already embedded like [`Self::write`])
    /// and folds it into the classifier in place, here and, through the change feed, in every other
    /// process: the next similar ticket is decided by a model that knows it, with no retrain.
    pub async fn learn(&self, records: Vec<StoredRecord>) -> Result<usize, KnowledgeError> {
        let (written, generation, learnable) = self.store(records).await?;
        if written > 0 {
            self.inner.classifier.learn(learnable, generation).await;
        }
        self.inner.changed.notify_one();
        Ok(written)
    }

    /// Sets the weight of stored records, leaving their text, department and vectors as they are
    /// (records no longer stored are skipped), and returns how many weights were given. Each change is
    /// a record as stored (with its current weight and, when the store has an embedder, its dense
    /// vector) and its new weight, above zero: a zero would read as unset, 1. Searches see the new
    /// weights at once; the classifier, which weighs every record by its weight, moves each record to
    /// its new weight in place here, and every other process sharing the store retrains. Durable
    /// after [`Self::flush`].
    pub async fn set_weights(
        &self,
        changes: Vec<(StoredRecord, f32)>,
    ) -> Result<usize, KnowledgeError> {
        if changes.is_empty() {
            return Ok(0);
        }
        for (StoredRecord { record, .. }, weight) in &changes {
            if !weight.is_finite() || *weight <= 0.0 {
                return Err(KnowledgeError::InvalidRecord {
                    id: record.id.clone(),
                    field: "weight",
                    problem: "must be a finite number above zero",
                });
            }
        }
        let written = changes.len();
        let points = changes
            .iter()
            .map(|(r, weight)| (point::point_id(&r.record.id), *weight))
            .collect();
        self.inner.store.set_weights(points).await?;
        // The feed carries no weights: other models cannot follow in place, and retrain.
        let generation = self.announce(written, &[]).await?;
        self.inner.classifier.reweigh(changes, generation).await;
        self.inner.changed.notify_one();
        Ok(written)
    }

    /// Checks and stores the records, announces the write, and returns how many were written, the new
    /// generation and, for a small write, the records to learn in place.
    async fn store(
        &self,
        records: Vec<StoredRecord>,
    ) -> Result<(usize, u64, Vec<StoredRecord>), KnowledgeError> {
        if records.is_empty() {
            return Ok((0, self.generation(), Vec::new()));
        }
        let embedded = self.inner.embedder.is_some();
        for StoredRecord { record, dense } in &records {
            check(record)?;
            if dense.is_some() != embedded {
                return Err(KnowledgeError::InvalidRecord {
                    id: record.id.clone(),
                    field: "dense",
                    problem: "must be present exactly when the store has an embedder",
                });
            }
        }
        let learnable = if records.len() <= LEARN_IN_PLACE {
            records.clone()
        } else {
            Vec::new()
        };
        // Tokenising (jieba) is CPU-bound: keep it off the async threads.
        let points = tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .map(|r| Point::new(r.record, r.dense))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(KnowledgeError::Task)?;
        let written = points.len();
        self.inner.store.upsert(points).await?;
        let generation = self.announce(written, &learnable).await?;
        Ok((written, generation, learnable))
    }

    /// Moves the generation past a write of `written` records, telling the change feed when there is
    /// one; `learnable` is what the models may learn in place (empty: every model retrains).
    async fn announce(
        &self,
        written: usize,
        learnable: &[StoredRecord],
    ) -> Result<u64, KnowledgeError> {
        Ok(match self.inner.feed.get() {
            Some(feed) => {
                let revision = feed
                    .announce(written, learnable)
                    .await
                    .map_err(KnowledgeError::Announce)?;
                self.inner.generation.fetch_max(revision, Ordering::SeqCst);
                revision
            }
            None => self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1,
        })
    }

    /// Shares this knowledge base's changes with every other process that holds it (over a Qdrant
    /// server) through the `knowledge` KV bucket ([`crate::KNOWLEDGE_BUCKET`]): announces every write
    /// there, and follows the others' in the returned future, which the caller runs as long as the
    /// process and which ends only with an error (the bus closed or failed). Call it once, before the
    /// first training, so that training starts from the feed's revision.
    pub async fn share_changes(
        &self,
        kv: Arc<dyn Kv>,
    ) -> Result<futures::future::BoxFuture<'static, Result<(), BusError>>, KnowledgeError> {
        let feed = ChangeFeed::new(kv);
        let revision = feed.revision().await.map_err(KnowledgeError::Announce)?;
        self.inner.generation.fetch_max(revision, Ordering::SeqCst);
        if self.inner.feed.set(feed.clone()).is_err() {
            return Err(KnowledgeError::FeedTwice);
        }
        Ok(Box::pin(feed.follow(self.clone())))
    }

    /// A change the feed brought: another process's write at `revision`, with its records when few.
    pub(crate) async fn observed(&self, revision: u64, records: Vec<StoredRecord>) {
        let before = self.inner.generation.fetch_max(revision, Ordering::SeqCst);
        if revision <= before {
            // This process's own write, announced and learnt already.
            return;
        }
        if !records.is_empty() {
            self.inner.classifier.learn(records, revision).await;
        }
        self.inner.changed.notify_one();
    }

    /// Waits for the next change to the knowledge base (see [`Classifier::train_in_background`]).
    pub(crate) async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The embedder, or `None` when the store is BM25 only. Its name is part of every model version.
    /// The embedder itself, to open another store that must embed alike (the policy passages').
    pub fn shared_embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.inner.embedder.clone()
    }

    pub fn embedder(&self) -> Option<&dyn Embedder> {
        self.inner.embedder.as_deref()
    }

    /// Prepares `text` for [`Self::similar`] and the classifier: embeds it when there is an embedder.
    pub async fn query(&self, text: &str) -> Result<Query, KnowledgeError> {
        let dense = match &self.inner.embedder {
            Some(embedder) => embedder.embed(vec![text.to_owned()]).await?.pop(),
            None => None,
        };
        Ok(Query {
            text: text.to_owned(),
            dense,
        })
    }

    /// The `limit` stored tickets most similar to `text`, best first: [`Self::query`] then
    /// [`Self::similar_to`].
    pub async fn similar(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<SimilarTicket>, KnowledgeError> {
        self.similar_to(&self.query(text).await?, limit).await
    }

    /// The `limit` stored tickets most similar to the query, best first: BM25 alone, or BM25 and dense
    /// fused. Empty when nothing shares a word with the text and nothing is semantically close.
    pub async fn similar_to(
        &self,
        query: &Query,
        limit: usize,
    ) -> Result<Vec<SimilarTicket>, KnowledgeError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Tokenising (jieba) is CPU work, and a ticket may be long: off the async threads.
        let text = query.text.clone();
        let sparse = tokio::task::spawn_blocking(move || bm25::query_vector(&text))
            .await
            .map_err(KnowledgeError::Task)?;
        let search = Search {
            sparse,
            dense: query.dense.clone(),
            min_dense_similarity: self.inner.min_dense_similarity,
            limit,
        };
        let hits = self.inner.store.search(search).await?;
        Ok(hits
            .into_iter()
            // A ticket that shares no word with the query is not similar, whatever its rank.
            .filter(|h| h.score > 0.0)
            .map(|h| point::similar_ticket(h.score, &h.payload))
            .collect())
    }

    /// How many tickets the knowledge base holds.
    pub async fn count(&self) -> Result<usize, KnowledgeError> {
        self.inner.store.count().await
    }

    /// Every record in the store with its dense vector, in point-id order (the same order on every
    /// call): what the classifier trains on.
    pub async fn records(&self) -> Result<Vec<StoredRecord>, KnowledgeError> {
        let stored = self.inner.store.scroll().await?;
        Ok(stored
            .into_iter()
            .map(|s| StoredRecord {
                record: point::knowledge_record(&s.payload),
                dense: s.dense,
            })
            .collect())
    }

    /// The records named that are stored, with their dense vectors, in the order named; one not
    /// stored is skipped. What changing a record's weight needs without embedding its text again.
    pub async fn stored(&self, ids: &[String]) -> Result<Vec<StoredRecord>, KnowledgeError> {
        let points = ids.iter().map(|id| point::point_id(id)).collect();
        let mut found: HashMap<String, StoredRecord> = self
            .inner
            .store
            .retrieve(points)
            .await?
            .into_iter()
            .map(|s| {
                let record = point::knowledge_record(&s.payload);
                (
                    record.id.clone(),
                    StoredRecord {
                        record,
                        dense: s.dense,
                    },
                )
            })
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// The keywords of every record (see [`KeywordTable`]), mined off the async threads.
    pub async fn keywords(&self) -> Result<KeywordTable, KnowledgeError> {
        let records = self.records().await?.into_iter().map(|s| s.record);
        tokio::task::spawn_blocking(move || KeywordTable::mine(records))
            .await
            .map_err(KnowledgeError::Task)?
    }

    /// The store's write count: how many writes this handle made since it was opened, or with a change
    /// feed the revision of the last write any process announced. Any write changes it.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// The classifier trained from this store's records, shared by every clone of the store.
    pub fn classifier(&self) -> &Classifier {
        &self.inner.classifier
    }

    /// Every department the knowledge base holds tickets for, sorted: the departments an LLM parser may
    /// suggest. A facet over the indexed `department` field, so it reads the index, not every point.
    pub async fn departments(&self) -> Result<Vec<String>, KnowledgeError> {
        let mut departments = self.inner.store.departments().await?;
        departments.sort();
        Ok(departments)
    }

    /// Makes everything upserted so far durable: the embedded store writes it to disk (it never does on
    /// its own, and what is not flushed is lost in a crash); a server has already logged each write.
    /// A failure is logged: the caller could do nothing more with it than the next flush will.
    pub async fn flush(&self) {
        self.inner.store.flush().await;
    }

    /// Waits, up to `within`, until this is the last handle (tasks that were stopped may still hold
    /// one while they wind down), then drops it, so that the store closes now: the embedded store
    /// writes its files as it closes, and a caller about to delete its directory must know that is
    /// over. Returns whether it was the last handle.
    pub async fn close(self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while Arc::strong_count(&self.inner) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Arc::strong_count(&self.inner) == 1
    }
}

/// The vectors a store needs for `embedder`.
fn layout(embedder: Option<&dyn Embedder>) -> Result<Layout, KnowledgeError> {
    let dimension = embedder.map(|e| e.dimension());
    if dimension == Some(0) {
        return Err(KnowledgeError::UnknownDimension);
    }
    Ok(Layout::expected(dimension))
}

/// The checks every record passes before it is embedded or written.
fn check(record: &KnowledgeRecord) -> Result<(), KnowledgeError> {
    let invalid = |field, problem| KnowledgeError::InvalidRecord {
        id: record.id.clone(),
        field,
        problem,
    };
    if record.id.trim().is_empty() {
        return Err(invalid("id", "is empty"));
    }
    if record.text.trim().is_empty() {
        return Err(invalid("text", "is empty"));
    }
    // A policy passage may concern no department in particular; a ticket always went to one.
    if record.department.trim().is_empty() && record.source != crate::documents::POLICY_SOURCE {
        return Err(invalid("department", "is empty"));
    }
    if !record.weight.is_finite() || record.weight < 0.0 {
        return Err(invalid("weight", "must be a finite number, zero or more"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_records_naming_id_and_field() {
        let record = KnowledgeRecord {
            id: "r-9".into(),
            text: "card lost".into(),
            department: "  ".into(),
            ..Default::default()
        };
        let err = check(&record).expect_err("empty department");
        let message = err.to_string();
        assert!(
            message.contains("r-9") && message.contains("department"),
            "{message}"
        );
    }
}
