//! The storage engine under the knowledge base. Two implement it: qdrant-edge in-process
//! ([`crate::edge_store`]) and a Qdrant server through qdrant-client ([`crate::remote_store`]). Both
//! store the same points with the same layout and run the same hybrid search, so the knowledge base
//! above them (record checks, embedding, the classifier) is written once, and one conformance suite
//! (`tests/conformance.rs`) holds both to it.

use std::fmt;

use async_trait::async_trait;
use qdrant_edge::SparseVector;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::KnowledgeError;
use crate::point::Point;

/// Candidates each retrieval contributes to the fusion, per result asked for: the fusion can then
/// promote a ticket one retrieval ranks low and the other high.
pub(crate) const PREFETCH_FACTOR: usize = 3;

/// Far above any real organisation's department count; a facet needs a bound.
pub(crate) const MAX_DEPARTMENTS: usize = 10_000;

/// Points per page when reading the whole store: large pages amortise each scroll's fixed cost.
pub(crate) const SCROLL_PAGE: usize = 1024;

/// One search: BM25 alone; or, with an embedding, BM25 and dense candidates fused by distribution-based
/// score fusion (each retrieval's scores normalised by their own spread, then summed), which keeps a
/// ticket both retrievals find ahead of one only one finds, and still says how close it is where rank
/// fusion would only say its place. Dense candidates under `min_dense_similarity` are left out.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// `None` when the text has no terms.
    pub sparse: Option<SparseVector>,
    pub dense: Option<Vec<f32>>,
    pub min_dense_similarity: f32,
    /// At least 1.
    pub limit: usize,
}

/// A search result: a stored point's payload and its score.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub score: f32,
    pub payload: Map<String, Value>,
}

/// A stored point's payload with its dense vector.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub payload: Map<String, Value>,
    /// Present exactly when the store has dense vectors.
    pub dense: Option<Vec<f32>>,
}

/// A vector store holding knowledge-base points. Implementations take care of their own threading:
/// callers are on the async threads.
#[async_trait]
pub(crate) trait VectorStore: fmt::Debug + Send + Sync {
    /// Inserts or replaces points by id; searchable when this returns.
    async fn upsert(&self, points: Vec<Point>) -> Result<(), KnowledgeError>;

    /// Deletes the points named; one not stored is skipped. Searches no longer see them when this
    /// returns.
    async fn delete(&self, ids: Vec<Uuid>) -> Result<(), KnowledgeError>;

    /// Sets the `weight` of each point named, leaving the rest of its payload and its vectors as they
    /// are; a point that is not stored is skipped. Searches see the new weights when this returns.
    async fn set_weights(&self, weights: Vec<(Uuid, f32)>) -> Result<(), KnowledgeError>;

    /// The best `search.limit` points, best first. Nothing when there is nothing to search with.
    async fn search(&self, search: Search) -> Result<Vec<Hit>, KnowledgeError>;

    async fn count(&self) -> Result<usize, KnowledgeError>;

    /// Every point, in point-id order (the same order on every call).
    async fn scroll(&self) -> Result<Vec<Stored>, KnowledgeError>;

    /// The points named that are stored, in no particular order; one not stored is skipped.
    async fn retrieve(&self, ids: Vec<Uuid>) -> Result<Vec<Stored>, KnowledgeError>;

    /// The distinct departments of the stored points, in no particular order: a facet over the indexed
    /// field, so it reads the index, not every point.
    async fn departments(&self) -> Result<Vec<String>, KnowledgeError>;

    /// Makes every upsert so far durable, and brings the search index up to date where the store does
    /// not on its own. Failures are logged: the caller could do nothing more with them than the next
    /// flush will.
    async fn flush(&self);
}
