//! The knowledge base: historical tickets in a vector store, one BM25 sparse vector each and, when an
//! embedder is configured, one dense vector, with the ticket's facts as payload. A search runs both
//! retrievals as prefetches and fuses them in the engine (see [`crate::vector_store::Search`]). The
//! store is qdrant-edge in-process by default, or a collection on a Qdrant server.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_embed::Embedder;
use switchboard_proto::{KnowledgeRecord, SimilarTicket};

use crate::bm25;
use crate::classifier::Classifier;
use crate::edge_store::EdgeStore;
use crate::error::RetrieverError;
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
    /// Successful upserts since open: the classifier compares it with the one it was trained at.
    generation: AtomicU64,
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
    /// or without dense vectors) is [`RetrieverError::Layout`], naming both: re-import into a fresh
    /// directory.
    ///
    /// Blocking (it reads the segments from disk): call it at start-up or from a blocking task.
    pub fn open(
        dir: &Path,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<Self, RetrieverError> {
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
    ) -> Result<Self, RetrieverError> {
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
    pub async fn upsert(&self, records: Vec<KnowledgeRecord>) -> Result<usize, RetrieverError> {
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

    /// [`Self::upsert`] for records already embedded (by [`Self::query`]), so a caller that needs the
    /// embedding too (feedback, to teach the classifier) embeds once. Each record must carry a dense
    /// vector exactly when the store has an embedder.
    pub async fn write(&self, records: Vec<StoredRecord>) -> Result<usize, RetrieverError> {
        if records.is_empty() {
            return Ok(0);
        }
        let embedded = self.inner.embedder.is_some();
        for StoredRecord { record, dense } in &records {
            check(record)?;
            if dense.is_some() != embedded {
                return Err(RetrieverError::InvalidRecord {
                    id: record.id.clone(),
                    field: "dense",
                    problem: "must be present exactly when the store has an embedder",
                });
            }
        }
        // Tokenising (jieba) is CPU-bound: keep it off the async threads.
        let points = tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .map(|r| Point::new(r.record, r.dense))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(RetrieverError::Task)?;
        let written = points.len();
        self.inner.store.upsert(points).await?;
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        Ok(written)
    }

    /// The embedder, or `None` when the store is BM25 only. Its name is part of every model version.
    pub fn embedder(&self) -> Option<&dyn Embedder> {
        self.inner.embedder.as_deref()
    }

    /// Prepares `text` for [`Self::similar`] and the classifier: embeds it when there is an embedder.
    pub async fn query(&self, text: &str) -> Result<Query, RetrieverError> {
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
    ) -> Result<Vec<SimilarTicket>, RetrieverError> {
        self.similar_to(&self.query(text).await?, limit).await
    }

    /// The `limit` stored tickets most similar to the query, best first: BM25 alone, or BM25 and dense
    /// fused. Empty when nothing shares a word with the text and nothing is semantically close.
    pub async fn similar_to(
        &self,
        query: &Query,
        limit: usize,
    ) -> Result<Vec<SimilarTicket>, RetrieverError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Tokenising (jieba) is CPU work, and a ticket may be long: off the async threads.
        let text = query.text.clone();
        let sparse = tokio::task::spawn_blocking(move || bm25::query_vector(&text))
            .await
            .map_err(RetrieverError::Task)?;
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
    pub async fn count(&self) -> Result<usize, RetrieverError> {
        self.inner.store.count().await
    }

    /// Every record in the store with its dense vector, in point-id order (the same order on every
    /// call): what the classifier trains on.
    pub async fn records(&self) -> Result<Vec<StoredRecord>, RetrieverError> {
        let stored = self.inner.store.scroll().await?;
        Ok(stored
            .into_iter()
            .map(|s| StoredRecord {
                record: point::knowledge_record(&s.payload),
                dense: s.dense,
            })
            .collect())
    }

    /// How many upserts this handle's store has taken since it was opened; any write changes it.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// The classifier trained from this store's records, shared by every clone of the store.
    pub fn classifier(&self) -> &Classifier {
        &self.inner.classifier
    }

    /// Every department the knowledge base holds tickets for, sorted: the departments an LLM parser may
    /// suggest. A facet over the indexed `department` field, so it reads the index, not every point.
    pub async fn departments(&self) -> Result<Vec<String>, RetrieverError> {
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
}

/// The vectors a store needs for `embedder`.
fn layout(embedder: Option<&dyn Embedder>) -> Result<Layout, RetrieverError> {
    let dimension = embedder.map(|e| e.dimension());
    if dimension == Some(0) {
        return Err(RetrieverError::UnknownDimension);
    }
    Ok(Layout::expected(dimension))
}

/// The checks every record passes before it is embedded or written.
fn check(record: &KnowledgeRecord) -> Result<(), RetrieverError> {
    let invalid = |field, problem| RetrieverError::InvalidRecord {
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
    if record.department.trim().is_empty() {
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
