//! The knowledge base in-process: an embedded qdrant-edge shard under a local directory, the default
//! when no Qdrant server is configured.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FacetRequest, FacetValue, FieldIndexOperations, Fusion, JsonPath, Modifier,
    NamedQuery, OperationError, Payload, PayloadFieldSchema, PayloadOps, PayloadSchemaType,
    PointId, PointInsertOperations, PointOperations, PointStruct, PointStructPersisted, Prefetch,
    QueryEnum, QueryRequest, Record, ScoringQuery, ScrollRequest, SetPayloadOp, UpdateOperation,
    Vector, VectorInternal, VectorStructInternal, Vectors, WithPayloadInterface, WithVector,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::bm25::VECTOR_NAME;
use crate::error::KnowledgeError;
use crate::layout::{DENSE_VECTOR_NAME, Dense, FieldIndex, INDEXED_FIELDS, Layout};
use crate::point::Point;
use crate::vector_store::{
    Hit, MAX_DEPARTMENTS, PREFETCH_FACTOR, SCROLL_PAGE, Search, Stored, VectorStore,
};

/// One directory must be opened by one `EdgeStore` at a time: qdrant-edge takes no lock on it.
#[derive(Debug)]
pub(crate) struct EdgeStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shard: EdgeShard,
    /// qdrant-edge's `flush` takes the WAL lock with `try_lock` and panics if an update holds it, so
    /// updates and flushes take turns here. Searches need no turn: they only read segments.
    writes: Mutex<()>,
    /// Whether points carry dense vectors: asking for a vector the store lacks is an error.
    dense: bool,
}

impl Inner {
    /// The vectors a read returns: the dense one, when points carry one.
    fn with_vector(&self) -> WithVector {
        if self.dense {
            WithVector::Selector(vec![DENSE_VECTOR_NAME.to_owned()])
        } else {
            WithVector::Bool(false)
        }
    }
}

/// A point as read back: its payload and its dense vector.
fn read_back(point: Record) -> Stored {
    Stored {
        payload: point.payload.map(|p| p.0).unwrap_or_default(),
        dense: match point.vector {
            Some(VectorStructInternal::Named(mut vectors)) => {
                match vectors.remove(DENSE_VECTOR_NAME) {
                    Some(VectorInternal::Dense(v)) => Some(v),
                    _ => None,
                }
            }
            _ => None,
        },
    }
}

impl EdgeStore {
    /// Opens the store under `dir`, creating the directory and an empty store with `layout` if there is
    /// none. A store written with another layout is [`KnowledgeError::Layout`].
    ///
    /// Blocking (it reads the segments from disk): call it at start-up or from a blocking task.
    pub(crate) fn open(dir: &Path, layout: &Layout) -> Result<Self, KnowledgeError> {
        std::fs::create_dir_all(dir).map_err(|source| KnowledgeError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        // The configuration a store was created with is saved beside its segments; comparing it first
        // names both layouts, where `load` would only say a segment is incompatible.
        if let Some(saved) = EdgeConfig::load(dir) {
            let found = layout_of(&saved.map_err(KnowledgeError::store("read its configuration"))?);
            if found != *layout {
                return Err(KnowledgeError::Layout {
                    store: dir.display().to_string(),
                    expected: layout.to_string(),
                    found: found.to_string(),
                });
            }
        }
        let shard = EdgeShard::load(dir, Some(config(layout.dense_dimension())))
            .map_err(KnowledgeError::store("open"))?;
        for (field, index) in INDEXED_FIELDS {
            let field_name = field.parse::<JsonPath>().map_err(|()| {
                KnowledgeError::store("create a payload index")(OperationError::validation_error(
                    format!("{field:?} is not a payload path"),
                ))
            })?;
            let schema = match index {
                FieldIndex::Keyword => PayloadSchemaType::Keyword,
                FieldIndex::Integer => PayloadSchemaType::Integer,
            };
            // Idempotent: an index that already exists is left as it is.
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name,
                        field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .map_err(KnowledgeError::store("create a payload index"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shard,
                writes: Mutex::new(()),
                dense: layout.dense_dimension().is_some(),
            }),
        })
    }

    /// Runs `f` on the shard on a blocking thread: qdrant-edge reads and writes segments synchronously.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, KnowledgeError> + Send + 'static,
    ) -> Result<T, KnowledgeError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(KnowledgeError::Task)?
    }
}

#[async_trait]
impl VectorStore for EdgeStore {
    async fn upsert(&self, points: Vec<Point>) -> Result<(), KnowledgeError> {
        self.blocking(move |inner| {
            let points = points.into_iter().map(edge_point).collect();
            let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(KnowledgeError::store("upsert"))
        })
        .await
    }

    async fn delete(&self, ids: Vec<Uuid>) -> Result<(), KnowledgeError> {
        self.blocking(move |inner| {
            let ids = ids.into_iter().map(PointId::Uuid).collect();
            let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePoints { ids },
                ))
                .map_err(KnowledgeError::store("delete"))
        })
        .await
    }

    async fn set_weights(&self, weights: Vec<(Uuid, f32)>) -> Result<(), KnowledgeError> {
        self.blocking(move |inner| {
            let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
            // One operation per point, since each gets its own weight; setting a key merges it into
            // the payload, so text, department and times stay.
            for (id, weight) in weights {
                let mut payload = Payload::default();
                payload.0.insert("weight".to_owned(), json!(weight));
                let set =
                    inner
                        .shard
                        .update(UpdateOperation::PayloadOperation(PayloadOps::SetPayload(
                            SetPayloadOp {
                                payload,
                                points: Some(vec![PointId::Uuid(id)]),
                                filter: None,
                                key: None,
                            },
                        )));
                match set {
                    // Deleted or never stored: there is nothing to weigh.
                    Ok(_) | Err(OperationError::PointIdError { .. }) => {}
                    Err(e) => return Err(KnowledgeError::store("set weights")(e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn search(&self, search: Search) -> Result<Vec<Hit>, KnowledgeError> {
        let Some(request) = search_request(search) else {
            return Ok(Vec::new());
        };
        self.blocking(move |inner| {
            let points = inner
                .shard
                .query(request)
                .map_err(KnowledgeError::store("search"))?;
            Ok(points
                .into_iter()
                .map(|p| Hit {
                    score: p.score,
                    payload: p.payload.map(|p| p.0).unwrap_or_default(),
                })
                .collect())
        })
        .await
    }

    async fn count(&self) -> Result<usize, KnowledgeError> {
        self.blocking(|inner| {
            inner
                .shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(KnowledgeError::store("count"))
        })
        .await
    }

    async fn scroll(&self) -> Result<Vec<Stored>, KnowledgeError> {
        self.blocking(|inner| {
            let mut stored = Vec::new();
            let mut offset = None;
            loop {
                let (page, next) = inner
                    .shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(SCROLL_PAGE),
                        filter: None,
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        with_vector: inner.with_vector(),
                        order_by: None,
                    })
                    .map_err(KnowledgeError::store("scroll"))?;
                stored.extend(page.into_iter().map(read_back));
                match next {
                    Some(id) => offset = Some(id),
                    None => return Ok(stored),
                }
            }
        })
        .await
    }

    async fn retrieve(&self, ids: Vec<Uuid>) -> Result<Vec<Stored>, KnowledgeError> {
        self.blocking(move |inner| {
            let ids: Vec<PointId> = ids.into_iter().map(PointId::Uuid).collect();
            let points = inner
                .shard
                .retrieve(
                    &ids,
                    Some(WithPayloadInterface::Bool(true)),
                    Some(inner.with_vector()),
                )
                .map_err(KnowledgeError::store("retrieve"))?;
            Ok(points.into_iter().map(read_back).collect())
        })
        .await
    }

    async fn departments(&self) -> Result<Vec<String>, KnowledgeError> {
        self.blocking(|inner| {
            let key = "department".parse::<JsonPath>().map_err(|()| {
                KnowledgeError::store("facet departments")(OperationError::validation_error(
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
                .map_err(KnowledgeError::store("facet departments"))?;
            Ok(response
                .hits
                .into_iter()
                .filter_map(|hit| match hit.value {
                    FacetValue::Keyword(department) => Some(department),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    /// qdrant-edge never flushes on its own (only when the last clone is dropped), and it does not
    /// replay its WAL on open: what is not flushed is lost in a crash. It panics if a flush fails (a
    /// full or failing disk); the panic stays in the blocking task and is logged here.
    ///
    /// Nor does it optimise on its own, as the Qdrant server does: without this, a knowledge base
    /// of any size stays one plain segment, and every search compares the query with every stored
    /// vector. Optimising builds the HNSW index on segments past Qdrant's indexing threshold (10 MB
    /// of vectors: about 5,000 tickets at 512 dimensions). On banking77's 10,003 tickets it added
    /// about 2.5 s to the import, and the exhaustive search had been a fifth of the pipeline's CPU
    /// time (`perf`, 2-core AMD EPYC).
    async fn flush(&self) {
        let flushed = self
            .blocking(|inner| {
                let _turn = inner.writes.lock().unwrap_or_else(PoisonError::into_inner);
                inner.shard.flush();
                inner
                    .shard
                    .optimize()
                    .map_err(KnowledgeError::store("optimise"))?;
                Ok(())
            })
            .await;
        if let Err(error) = flushed {
            tracing::error!(%error, path = %self.inner.shard.path().display(), "knowledge base flush failed");
        }
    }
}

/// The shard configuration for [`Layout::expected`] with this dense dimension.
fn config(dense_dimension: Option<usize>) -> EdgeConfig {
    let mut builder = EdgeConfig::builder();
    if let Some(size) = dense_dimension {
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

/// The layout a saved shard configuration describes.
fn layout_of(config: &EdgeConfig) -> Layout {
    Layout {
        dense: config
            .vectors
            .iter()
            .map(|(name, params)| {
                let dense = Dense {
                    dimension: params.size,
                    distance: format!("{:?}", params.distance),
                };
                (name.to_string(), dense)
            })
            .collect(),
        sparse: config
            .sparse_vectors
            .iter()
            .map(|(name, params)| (name.to_string(), params.modifier == Some(Modifier::Idf)))
            .collect(),
    }
}

fn edge_point(point: Point) -> PointStructPersisted {
    let mut vectors = vec![(VECTOR_NAME, Vector::from(point.sparse))];
    if let Some(dense) = point.dense {
        vectors.push((DENSE_VECTOR_NAME, Vector::from(dense)));
    }
    // `PointStruct::new` panics unless the payload is a JSON object; it is one.
    PointStruct::new(
        PointId::Uuid(point.id),
        Vectors::new_named(vectors),
        Value::Object(point.payload),
    )
    .into()
}

/// The query for a [`Search`]; `None` when there is nothing to search with.
fn search_request(search: Search) -> Option<QueryRequest> {
    let Search {
        sparse,
        dense,
        min_dense_similarity,
        limit,
    } = search;
    let nearest = |query: VectorInternal, using: &str| {
        ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query,
            using: Some(using.to_owned()),
        }))
    };
    let request = |prefetches, query| QueryRequest {
        prefetches,
        query: Some(query),
        filter: None,
        score_threshold: None,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    };
    let Some(dense) = dense else {
        return sparse.map(|s| request(Vec::new(), nearest(s.into(), VECTOR_NAME)));
    };
    let prefetch = |query, score_threshold| Prefetch {
        prefetches: Vec::new(),
        query: Some(query),
        limit: limit * PREFETCH_FACTOR,
        params: None,
        filter: None,
        score_threshold,
    };
    let mut prefetches = vec![prefetch(
        nearest(dense.into(), DENSE_VECTOR_NAME),
        Some(min_dense_similarity.into()),
    )];
    if let Some(sparse) = sparse {
        prefetches.push(prefetch(nearest(sparse.into(), VECTOR_NAME), None));
    }
    Some(request(prefetches, ScoringQuery::Fusion(Fusion::Dbsf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_is_created_with_the_expected_layout() {
        for dimension in [None, Some(8)] {
            assert_eq!(layout_of(&config(dimension)), Layout::expected(dimension));
        }
    }

    #[test]
    fn a_hybrid_search_fuses_a_thresholded_dense_prefetch_with_bm25() {
        let search = Search {
            sparse: crate::bm25::query_vector("refund"),
            dense: Some(vec![1.0, 0.0]),
            min_dense_similarity: 0.4,
            limit: 2,
        };
        let request = search_request(search).expect("a request");
        assert!(matches!(
            request.query,
            Some(ScoringQuery::Fusion(Fusion::Dbsf))
        ));
        assert_eq!(request.prefetches.len(), 2);
        assert_eq!(request.prefetches[0].limit, 2 * PREFETCH_FACTOR);
        assert_eq!(request.prefetches[0].score_threshold, Some(0.4f32.into()));
        assert_eq!(request.prefetches[1].score_threshold, None);
        let nothing = Search {
            sparse: None,
            dense: None,
            min_dense_similarity: 0.4,
            limit: 2,
        };
        assert!(search_request(nothing).is_none());
    }
}
