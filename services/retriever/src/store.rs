//! The knowledge base: historical tickets in an embedded qdrant-edge shard, one BM25 sparse vector each
//! and, when an embedder is configured, one dense vector, with the ticket's facts as payload. A search
//! runs both retrievals as prefetches and fuses them in the engine (distribution-based score fusion, so
//! the fused score still says how close a ticket is, where rank fusion would only say its place).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use qdrant_edge::external::serde_json::{Map, Value, json};
use qdrant_edge::external::uuid::Builder;
use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FacetRequest, FacetValue, FieldIndexOperations, Fusion, JsonPath, Modifier,
    NamedQuery, OperationError, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, PointStructPersisted, Prefetch, QueryEnum,
    QueryRequest, ScoringQuery, ScrollRequest, SparseVector, UpdateOperation, Vector,
    VectorInternal, VectorStructInternal, Vectors, WithPayloadInterface, WithVector,
};
use sha2::{Digest, Sha256};
use switchboard_embed::Embedder;
use switchboard_proto::{KnowledgeRecord, SimilarTicket};

use crate::bm25::{self, VECTOR_NAME};
use crate::classifier::Classifier;
use crate::error::RetrieverError;

/// The name of the dense vector in the store.
const DENSE_VECTOR_NAME: &str = "dense";

/// Candidates each retrieval contributes to the fusion, per result asked for: the fusion can then
/// promote a ticket one retrieval ranks low and the other high.
const PREFETCH_FACTOR: usize = 3;

/// The source of imported history, and of records that do not name one.
pub(crate) const HISTORY_SOURCE: &str = "history";

/// Payload fields the store indexes: department for filtering and faceting evidence by department,
/// creation time for time-window filters.
const INDEXED_FIELDS: [(&str, PayloadSchemaType); 2] = [
    ("department", PayloadSchemaType::Keyword),
    ("created_at_ms", PayloadSchemaType::Integer),
];

/// The knowledge base of historical tickets. Cloning is cheap and every clone shares one store.
///
/// One directory must be opened by one `KnowledgeBase` at a time: qdrant-edge takes no lock on it.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shard: EdgeShard,
    /// qdrant-edge's `flush` takes the WAL lock with `try_lock` and panics if an update holds it, so
    /// updates and flushes take turns here. Searches need no turn: they only read segments.
    writes: Mutex<()>,
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
    /// Opens the store under `dir`, creating the directory and an empty store if there is none. With an
    /// embedder, records carry its dense vectors too and searches fuse both retrievals; a dense match
    /// scoring under `min_dense_similarity` (cosine) is dropped, so a ticket unlike anything stored finds
    /// nothing and goes to review. A store written with another layout (another dimension, or with or
    /// without dense vectors) is an error naming both: re-import into a fresh directory.
    ///
    /// Blocking (it reads the segments from disk): call it at start-up or from a blocking task.
    pub fn open(
        dir: &Path,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<Self, RetrieverError> {
        std::fs::create_dir_all(dir).map_err(|source| RetrieverError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        // `load` with a config creates what is missing and checks what exists against it, so a store
        // written with another vector layout fails here instead of at the first search.
        let dimension = embedder.as_ref().map(|e| e.dimension());
        if dimension == Some(0) {
            return Err(RetrieverError::UnknownDimension);
        }
        let shard = EdgeShard::load(dir, Some(config(dimension))).map_err(|source| {
            RetrieverError::Layout {
                path: dir.to_owned(),
                expected: match dimension {
                    Some(d) => format!("BM25 and {d}-dimension dense vectors"),
                    None => "BM25 vectors only".to_owned(),
                },
                source: Box::new(source),
            }
        })?;
        for (field, schema) in INDEXED_FIELDS {
            let field_name = field.parse::<JsonPath>().map_err(|()| {
                RetrieverError::store("create a payload index")(OperationError::validation_error(
                    format!("{field:?} is not a payload path"),
                ))
            })?;
            // Idempotent: an index that already exists is left as it is.
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name,
                        field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .map_err(RetrieverError::store("create a payload index"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shard,
                writes: Mutex::new(()),
                generation: AtomicU64::new(0),
                classifier: Classifier::default(),
                embedder,
                min_dense_similarity,
            }),
        })
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
        let inner = Arc::clone(&self.inner);
        // Tokenising (jieba) and qdrant's update are CPU- and disk-bound: keep both off the async threads.
        tokio::task::spawn_blocking(move || {
            let points = records
                .into_iter()
                .map(|r| point(r.record, r.dense))
                .collect::<Vec<_>>();
            let written = points.len();
            let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(RetrieverError::store("upsert"))?;
            inner.generation.fetch_add(1, Ordering::SeqCst);
            Ok(written)
        })
        .await
        .map_err(RetrieverError::Task)?
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
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::task::spawn_blocking(move || {
            let sparse = bm25::query_vector(&query.text);
            let Some(request) =
                search_request(sparse, query.dense, inner.min_dense_similarity, limit)
            else {
                return Ok(Vec::new());
            };
            let points = inner
                .shard
                .query(request)
                .map_err(RetrieverError::store("search"))?;
            Ok(points
                .into_iter()
                // A ticket that shares no word with the query is not similar, whatever its rank.
                .filter(|p| p.score > 0.0)
                .map(|p| similar_ticket(p.score, p.payload.as_ref()))
                .collect())
        })
        .await
        .map_err(RetrieverError::Task)?
    }

    /// How many tickets the knowledge base holds.
    pub async fn count(&self) -> Result<usize, RetrieverError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner
                .shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(RetrieverError::store("count"))
        })
        .await
        .map_err(RetrieverError::Task)?
    }

    /// Every record in the store with its dense vector, in point-id order (the same order on every
    /// call): what the classifier trains on. Read in pages, off the async threads.
    pub async fn records(&self) -> Result<Vec<StoredRecord>, RetrieverError> {
        /// Records per page: large pages amortise each scroll's fixed cost.
        const PAGE: usize = 1024;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut records = Vec::new();
            let mut offset = None;
            loop {
                let (page, next) = inner
                    .shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(PAGE),
                        filter: None,
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        // Asking for a vector the store lacks is an error, so only with an embedder.
                        with_vector: match inner.embedder {
                            Some(_) => WithVector::Selector(vec![DENSE_VECTOR_NAME.to_owned()]),
                            None => WithVector::Bool(false),
                        },
                        order_by: None,
                    })
                    .map_err(RetrieverError::store("scroll"))?;
                records.extend(page.into_iter().map(|p| {
                    let s = similar_ticket(0.0, p.payload.as_ref());
                    let dense = match p.vector {
                        Some(VectorStructInternal::Named(mut vectors)) => {
                            match vectors.remove(DENSE_VECTOR_NAME) {
                                Some(VectorInternal::Dense(v)) => Some(v),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    StoredRecord {
                        record: KnowledgeRecord {
                            id: s.id,
                            text: s.text,
                            department: s.department,
                            created_at_ms: s.created_at_ms,
                            resolution_minutes: s.resolution_minutes,
                            source: s.source,
                            weight: s.weight,
                            problem_type: s.problem_type,
                        },
                        dense,
                    }
                }));
                match next {
                    Some(id) => offset = Some(id),
                    None => return Ok(records),
                }
            }
        })
        .await
        .map_err(RetrieverError::Task)?
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
        /// Far above any real organisation's department count; the facet needs a bound.
        const MAX_DEPARTMENTS: usize = 10_000;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let key = "department".parse::<JsonPath>().map_err(|()| {
                RetrieverError::store("facet departments")(OperationError::validation_error(
                    "\"department\" is not a payload path",
                ))
            })?;
            let response = inner
                .shard
                .facet(FacetRequest {
                    key,
                    limit: MAX_DEPARTMENTS,
                    filter: None,
                    exact: true,
                })
                .map_err(RetrieverError::store("facet departments"))?;
            let mut departments: Vec<String> = response
                .hits
                .into_iter()
                .filter_map(|hit| match hit.value {
                    FacetValue::Keyword(department) => Some(department),
                    _ => None,
                })
                .collect();
            departments.sort();
            Ok(departments)
        })
        .await
        .map_err(RetrieverError::Task)?
    }

    /// Writes everything upserted so far to disk. qdrant-edge never flushes on its own (only when the
    /// last clone is dropped), and it does not replay its WAL on open: what is not flushed is lost in
    /// a crash.
    ///
    /// qdrant-edge panics if a flush fails (a full or failing disk); the panic stays in the blocking task
    /// and is logged here, since the caller could do nothing more with it than the next flush will.
    pub async fn flush(&self) {
        let inner = Arc::clone(&self.inner);
        let flushed = tokio::task::spawn_blocking(move || {
            let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
            inner.shard.flush();
        })
        .await;
        if let Err(error) = flushed {
            tracing::error!(%error, "knowledge base flush failed");
        }
    }
}

fn config(dense_dimension: Option<usize>) -> EdgeConfig {
    let mut builder = EdgeConfig::builder();
    if let Some(size) = dense_dimension {
        // Embedders return unit vectors, for which cosine is the dot product.
        builder = builder.vector(
            DENSE_VECTOR_NAME,
            EdgeVectorParams::builder(size, Distance::Cosine).build(),
        );
    }
    builder
        .sparse_vector(
            VECTOR_NAME,
            // The engine keeps document frequencies and weights each query term by IDF at search time,
            // as the Qdrant server does for its BM25.
            EdgeSparseVectorParams::builder()
                .modifier(Modifier::Idf)
                .build(),
        )
        .build()
}

/// A stable point id for a record id: re-importing the same record overwrites it. A UUID from SHA-256
/// rather than a 64-bit hash, so that distinct records practically never collide and silently replace
/// each other.
fn point_id(record_id: &str) -> PointId {
    let digest = Sha256::digest(record_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    PointId::Uuid(Builder::from_custom_bytes(bytes).into_uuid())
}

/// The search for one query: BM25 alone; or, with an embedding, BM25 and dense candidates fused by
/// distribution-based score fusion (each retrieval's scores normalised by their own spread, then
/// summed), which keeps a ticket both retrievals find ahead of one only one finds. Dense candidates
/// under `min_dense_similarity` are left out. `None` when there is nothing to search with.
fn search_request(
    sparse: Option<SparseVector>,
    dense: Option<Vec<f32>>,
    min_dense_similarity: f32,
    limit: usize,
) -> Option<QueryRequest> {
    let nearest = |query: VectorInternal, using: &str| {
        ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query,
            using: Some(using.to_owned()),
        }))
    };
    let request = |prefetches, query, score_threshold| QueryRequest {
        prefetches,
        query: Some(query),
        filter: None,
        score_threshold,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    };
    let Some(dense) = dense else {
        return sparse.map(|s| request(Vec::new(), nearest(s.into(), VECTOR_NAME), None));
    };
    let dense = Prefetch {
        prefetches: Vec::new(),
        query: Some(nearest(dense.into(), DENSE_VECTOR_NAME)),
        limit: limit * PREFETCH_FACTOR,
        params: None,
        filter: None,
        score_threshold: Some(min_dense_similarity.into()),
    };
    let mut prefetches = vec![dense];
    if let Some(sparse) = sparse {
        prefetches.push(Prefetch {
            prefetches: Vec::new(),
            query: Some(nearest(sparse.into(), VECTOR_NAME)),
            limit: limit * PREFETCH_FACTOR,
            params: None,
            filter: None,
            score_threshold: None,
        });
    }
    Some(request(
        prefetches,
        ScoringQuery::Fusion(Fusion::Dbsf),
        None,
    ))
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

/// The point for a record that passed [`check`], with its dense vector when the store has them.
fn point(record: KnowledgeRecord, dense: Option<Vec<f32>>) -> PointStructPersisted {
    let department = record.department.trim();
    let weight = if record.weight == 0.0 {
        1.0
    } else {
        record.weight
    };
    let source = match record.source.trim() {
        "" => HISTORY_SOURCE,
        s => s,
    };
    let mut payload = json!({
        "id": record.id,
        "text": record.text,
        "department": department,
        "created_at_ms": record.created_at_ms,
        "source": source,
        "weight": weight,
        "problem_type": record.problem_type.trim(),
    });
    if let (Some(minutes), Value::Object(map)) = (record.resolution_minutes, &mut payload) {
        map.insert("resolution_minutes".to_owned(), minutes.into());
    }
    let mut vectors = vec![(
        VECTOR_NAME,
        Vector::from(bm25::document_vector(&record.text)),
    )];
    if let Some(dense) = dense {
        vectors.push((DENSE_VECTOR_NAME, Vector::from(dense)));
    }
    // `PointStruct::new` panics unless the payload is a JSON object; `json!({..})` above is one.
    PointStruct::new(point_id(&record.id), Vectors::new_named(vectors), payload).into()
}

fn similar_ticket(score: f32, payload: Option<&Payload>) -> SimilarTicket {
    // The store only holds points written by `point`, so every field is present; a missing one reads as
    // its proto default rather than failing the whole search.
    let empty = Map::new();
    let fields = payload.map_or(&empty, |p| &p.0);
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    SimilarTicket {
        id: text("id"),
        text: text("text"),
        department: text("department"),
        score,
        created_at_ms: fields
            .get("created_at_ms")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        resolution_minutes: fields.get("resolution_minutes").and_then(Value::as_i64),
        // f32 went in, so the round trip through JSON's f64 is exact.
        weight: fields.get("weight").and_then(Value::as_f64).unwrap_or(1.0) as f32,
        source: text("source"),
        // Records stored before problem types existed have none, which reads as unknown.
        problem_type: text("problem_type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_eq!(point_id("t-1"), point_id("t-1"));
        assert_ne!(point_id("t-1"), point_id("t-2"));
        // Pinned: a change would orphan every stored record instead of overwriting it on re-import.
        // SHA-256("t-1"), first 16 bytes, with UUIDv8 version and variant bits.
        assert_eq!(
            point_id("t-1"),
            PointId::Uuid(
                "46e9bc34-76c9-8ea2-8fb1-7adac6cd9cda"
                    .parse()
                    .expect("uuid")
            )
        );
    }

    #[tokio::test]
    async fn departments_are_the_distinct_departments_of_the_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("open");
        assert!(kb.departments().await.expect("facet").is_empty());
        let record = |id: &str, department: &str| KnowledgeRecord {
            id: id.into(),
            text: format!("ticket {id}"),
            department: department.into(),
            ..Default::default()
        };
        kb.upsert(vec![
            record("1", "network_ops"),
            record("2", "billing"),
            record("3", "network_ops"),
        ])
        .await
        .expect("upsert");
        assert_eq!(
            kb.departments().await.expect("facet"),
            ["billing", "network_ops"]
        );
    }

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
