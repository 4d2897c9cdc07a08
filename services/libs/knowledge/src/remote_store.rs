//! The knowledge base on a Qdrant server (or cluster) through qdrant-client's gRPC API: every replica
//! of the retriever and feedback roles shares one collection.

use std::collections::HashMap;

use async_trait::async_trait;
use qdrant_client::qdrant::vector_output::Vector as VectorOutput;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions;
use qdrant_client::qdrant::{
    CollectionInfo, Condition, CountPointsBuilder, CreateCollection, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, Distance, FacetCountsBuilder,
    FieldType, Filter, Fusion, GetPointsBuilder, Modifier, PointId, PointStruct,
    PrefetchQueryBuilder, Query, QueryPoints, QueryPointsBuilder, RetrievedPoint,
    ScrollPointsBuilder, SetPayloadPointsBuilder, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder,
    VectorsConfigBuilder, VectorsSelector, facet_value,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::Map;

use crate::bm25::VECTOR_NAME;
use crate::error::KnowledgeError;
use crate::layout::{DENSE_VECTOR_NAME, Dense, FieldIndex, INDEXED_FIELDS, Layout};
use crate::point::Point;
use crate::vector_store::{
    Hit, MAX_DEPARTMENTS, PREFETCH_FACTOR, SCROLL_PAGE, Search, Stored, VectorStore,
};

/// A collection on a Qdrant server.
pub(crate) struct RemoteStore {
    client: Qdrant,
    collection: String,
    /// Whether points carry dense vectors: asking for a vector the collection lacks is an error.
    dense: bool,
}

impl std::fmt::Debug for RemoteStore {
    // The client's configuration holds the API key: show only where the store is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.client.config.uri)
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// The vectors a read returns: the dense one, when points carry one.
    fn with_vectors(&self) -> SelectorOptions {
        if self.dense {
            SelectorOptions::Include(VectorsSelector {
                names: vec![DENSE_VECTOR_NAME.to_owned()],
            })
        } else {
            SelectorOptions::Enable(false)
        }
    }

    /// Connects to the server at `url` (its gRPC port, 6334 by default) and opens `collection`,
    /// creating it with `layout` and the payload indexes if it is missing. A collection with another
    /// layout is [`KnowledgeError::Layout`]; a payload index it lacks is added.
    pub(crate) async fn connect(
        url: &str,
        api_key: Option<&str>,
        collection: &str,
        layout: &Layout,
    ) -> Result<Self, KnowledgeError> {
        let connect = |source| KnowledgeError::Connect {
            url: url.to_owned(),
            source: Box::new(source),
        };
        // The client's own version check runs a second runtime and prints to stdout; the health check
        // below reaches the server the same way and reports its version in the log instead.
        let client = Qdrant::from_url(url)
            .api_key(api_key.map(str::to_owned))
            .skip_compatibility_check()
            .build()
            .map_err(connect)?;
        let health = client.health_check().await.map_err(connect)?;
        tracing::info!(url, collection, server_version = %health.version, "connected to Qdrant");

        let store = Self {
            client,
            collection: collection.to_owned(),
            dense: layout.dense_dimension().is_some(),
        };
        let info = match store.info().await? {
            Some(info) => info,
            None => {
                store.create(layout).await?;
                // Deleted again in between: the empty description fails the layout check below.
                store.info().await?.unwrap_or_default()
            }
        };
        let found = layout_of(&info);
        if found != *layout {
            return Err(KnowledgeError::Layout {
                store: format!("Qdrant collection {collection:?} at {url}"),
                expected: layout.to_string(),
                found: found.to_string(),
            });
        }
        for (field, index) in INDEXED_FIELDS {
            if !info.payload_schema.contains_key(field) {
                let field_type = match index {
                    FieldIndex::Keyword => FieldType::Keyword,
                    FieldIndex::Integer => FieldType::Integer,
                };
                store
                    .client
                    .create_field_index(
                        CreateFieldIndexCollectionBuilder::new(collection, field, field_type)
                            .wait(true),
                    )
                    .await
                    .map_err(KnowledgeError::remote("create a payload index"))?;
            }
        }
        Ok(store)
    }

    /// The collection's description; `None` when there is no such collection.
    async fn info(&self) -> Result<Option<CollectionInfo>, KnowledgeError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(KnowledgeError::remote("look up the collection"))?;
        if !exists {
            return Ok(None);
        }
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(KnowledgeError::remote("describe the collection"))?;
        Ok(info.result)
    }

    /// Creates the collection with `layout`. Replicas starting together may race to create it: losing
    /// the race is fine, the winner's collection is checked like any existing one.
    async fn create(&self, layout: &Layout) -> Result<(), KnowledgeError> {
        let request = create_request(&self.collection, layout);
        match self.client.create_collection(request).await {
            Ok(_) => {
                tracing::info!(collection = %self.collection, %layout, "created the Qdrant collection");
                Ok(())
            }
            Err(_) if self.info().await?.is_some() => Ok(()),
            Err(source) => Err(KnowledgeError::remote("create the collection")(source)),
        }
    }
}

#[async_trait]
impl VectorStore for RemoteStore {
    async fn upsert(&self, points: Vec<Point>) -> Result<(), KnowledgeError> {
        let points: Vec<PointStruct> = points.into_iter().map(remote_point).collect();
        // `wait`: the points are searchable when the call returns, as they are in-process.
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(KnowledgeError::remote("upsert"))?;
        Ok(())
    }

    async fn delete(&self, ids: Vec<uuid::Uuid>) -> Result<(), KnowledgeError> {
        if ids.is_empty() {
            return Ok(());
        }
        // By a filter, so that a point no longer stored matches nothing instead of failing the request.
        let selector = Filter::must([Condition::has_id(ids.iter().map(ToString::to_string))]);
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(selector)
                    .wait(true),
            )
            .await
            .map_err(KnowledgeError::remote("delete"))?;
        Ok(())
    }

    async fn set_weights(&self, weights: Vec<(uuid::Uuid, f32)>) -> Result<(), KnowledgeError> {
        // One request per point, since each gets its own weight; a few per correction. Setting a key
        // merges it into the payload, and `wait` makes the weight searchable on return.
        for (id, weight) in weights {
            let mut payload = Map::new();
            payload.insert("weight".to_owned(), serde_json::json!(weight));
            let payload = Payload::from(payload);
            // Selected by a filter rather than by id, so that a point no longer stored matches
            // nothing instead of failing the request.
            let selector = Filter::must([Condition::has_id([id.to_string()])]);
            self.client
                .set_payload(
                    SetPayloadPointsBuilder::new(&self.collection, payload)
                        .points_selector(selector)
                        .wait(true),
                )
                .await
                .map_err(KnowledgeError::remote("set weights"))?;
        }
        Ok(())
    }

    async fn search(&self, search: Search) -> Result<Vec<Hit>, KnowledgeError> {
        let Some(request) = search_request(&self.collection, search) else {
            return Ok(Vec::new());
        };
        let response = self
            .client
            .query(request)
            .await
            .map_err(KnowledgeError::remote("search"))?;
        Ok(response
            .result
            .into_iter()
            .map(|p| Hit {
                score: p.score,
                payload: json_payload(p.payload),
            })
            .collect())
    }

    async fn count(&self) -> Result<usize, KnowledgeError> {
        let response = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(KnowledgeError::remote("count"))?;
        let count = response.result.map_or(0, |r| r.count);
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    async fn scroll(&self) -> Result<Vec<Stored>, KnowledgeError> {
        let mut stored = Vec::new();
        let mut offset = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .limit(SCROLL_PAGE as u32)
                .with_payload(true)
                .with_vectors(self.with_vectors());
            if let Some(offset) = offset {
                request = request.offset(offset);
            }
            let page = self
                .client
                .scroll(request)
                .await
                .map_err(KnowledgeError::remote("scroll"))?;
            stored.extend(page.result.into_iter().map(read_back));
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(stored),
            }
        }
    }

    async fn retrieve(&self, ids: Vec<uuid::Uuid>) -> Result<Vec<Stored>, KnowledgeError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<PointId> = ids.iter().map(|id| id.to_string().into()).collect();
        let found = self
            .client
            .get_points(
                GetPointsBuilder::new(&self.collection, ids)
                    .with_payload(true)
                    .with_vectors(self.with_vectors()),
            )
            .await
            .map_err(KnowledgeError::remote("retrieve"))?;
        Ok(found.result.into_iter().map(read_back).collect())
    }

    async fn departments(&self) -> Result<Vec<String>, KnowledgeError> {
        let response = self
            .client
            .facet(
                FacetCountsBuilder::new(&self.collection, "department")
                    .limit(MAX_DEPARTMENTS as u64)
                    .exact(true),
            )
            .await
            .map_err(KnowledgeError::remote("facet departments"))?;
        Ok(response
            .hits
            .into_iter()
            .filter_map(|hit| match hit.value?.variant? {
                facet_value::Variant::StringValue(department) => Some(department),
                _ => None,
            })
            .collect())
    }

    /// Nothing to do: the server writes each upsert to its write-ahead log before acknowledging it
    /// (`wait`), and replays the log after a crash.
    async fn flush(&self) {}
}

/// The collection for `layout`: the named dense vector when there is one, BM25 with the server's IDF
/// (it keeps document frequencies and weights each query term by IDF at search time).
fn create_request(collection: &str, layout: &Layout) -> CreateCollection {
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params(
        VECTOR_NAME,
        SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
    );
    let mut request = CreateCollectionBuilder::new(collection).sparse_vectors_config(sparse);
    if let Some(dimension) = layout.dense_dimension() {
        let mut dense = VectorsConfigBuilder::default();
        dense.add_named_vector_params(
            DENSE_VECTOR_NAME,
            VectorParamsBuilder::new(dimension as u64, Distance::Cosine),
        );
        request = request.vectors_config(dense);
    }
    request.build()
}

/// The layout a collection on the server has.
fn layout_of(info: &CollectionInfo) -> Layout {
    let params = info.config.as_ref().and_then(|c| c.params.as_ref());
    let distance = |d: i32| {
        Distance::try_from(d).map_or_else(|_| format!("distance {d}"), |d| format!("{d:?}"))
    };
    let dense = match params.and_then(|p| p.vectors_config.as_ref()?.config.as_ref()) {
        // An unnamed vector: the knowledge base never creates one, but a foreign collection may.
        Some(VectorsConfigKind::Params(p)) => vec![(String::new(), p)],
        Some(VectorsConfigKind::ParamsMap(m)) => {
            m.map.iter().map(|(n, p)| (n.clone(), p)).collect()
        }
        None => Vec::new(),
    };
    Layout {
        dense: dense
            .into_iter()
            .map(|(name, p)| {
                let dense = Dense {
                    dimension: usize::try_from(p.size).unwrap_or(usize::MAX),
                    distance: distance(p.distance),
                };
                (name, dense)
            })
            .collect(),
        sparse: params
            .and_then(|p| p.sparse_vectors_config.as_ref())
            .map(|s| {
                s.map
                    .iter()
                    .map(|(name, p)| (name.clone(), p.modifier == Some(Modifier::Idf as i32)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn remote_point(point: Point) -> PointStruct {
    let mut vectors = HashMap::from([(
        VECTOR_NAME.to_owned(),
        Vector::new_sparse(point.sparse.indices, point.sparse.values),
    )]);
    if let Some(dense) = point.dense {
        vectors.insert(DENSE_VECTOR_NAME.to_owned(), Vector::new_dense(dense));
    }
    PointStruct::new(point.id.to_string(), vectors, Payload::from(point.payload))
}

fn json_payload(
    payload: HashMap<String, qdrant_client::qdrant::Value>,
) -> Map<String, serde_json::Value> {
    Payload::from(payload).into()
}

/// A point as read back: its payload and its dense vector.
fn read_back(point: RetrievedPoint) -> Stored {
    Stored {
        dense: point
            .vectors
            .and_then(|v| v.get_vector_by_name(DENSE_VECTOR_NAME))
            .and_then(|v| match v {
                VectorOutput::Dense(dense) => Some(dense.data),
                _ => None,
            }),
        payload: json_payload(point.payload),
    }
}

/// The query for a [`Search`], the same as the in-process store runs; `None` when there is nothing to
/// search with.
fn search_request(collection: &str, search: Search) -> Option<QueryPoints> {
    let Search {
        sparse,
        dense,
        min_dense_similarity,
        limit,
    } = search;
    let sparse = sparse.map(|s| VectorInput::new_sparse(s.indices, s.values));
    let request = QueryPointsBuilder::new(collection)
        .limit(limit as u64)
        .with_payload(true);
    let Some(dense) = dense else {
        return sparse.map(|s| {
            request
                .query(Query::new_nearest(s))
                .using(VECTOR_NAME)
                .build()
        });
    };
    let prefetch_limit = (limit * PREFETCH_FACTOR) as u64;
    let mut request = request.add_prefetch(
        PrefetchQueryBuilder::default()
            .query(Query::new_nearest(VectorInput::new_dense(dense)))
            .using(DENSE_VECTOR_NAME)
            .score_threshold(min_dense_similarity)
            .limit(prefetch_limit),
    );
    if let Some(sparse) = sparse {
        request = request.add_prefetch(
            PrefetchQueryBuilder::default()
                .query(Query::new_nearest(sparse))
                .using(VECTOR_NAME)
                .limit(prefetch_limit),
        );
    }
    Some(request.query(Query::new_fusion(Fusion::Dbsf)).build())
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::{CollectionConfig, CollectionParams, query};

    use super::*;

    /// The collection a server describes after creating it with `layout`.
    fn created(layout: &Layout) -> CollectionInfo {
        let request = create_request("kb", layout);
        CollectionInfo {
            config: Some(CollectionConfig {
                params: Some(CollectionParams {
                    vectors_config: request.vectors_config,
                    sparse_vectors_config: request.sparse_vectors_config,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_with_its_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let err = RemoteStore::connect(&url, None, "kb", &Layout::expected(None))
            .await
            .expect_err("nothing listens");
        assert!(
            matches!(&err, KnowledgeError::Connect { url: u, .. } if *u == url),
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");

        let err = RemoteStore::connect("not a url", None, "kb", &Layout::expected(None))
            .await
            .expect_err("no URL");
        assert!(err.to_string().contains("not a url"), "{err}");
    }

    #[test]
    fn reads_the_layout_a_collection_was_created_with() {
        for dimension in [None, Some(384)] {
            let layout = Layout::expected(dimension);
            assert_eq!(layout_of(&created(&layout)), layout);
        }
        assert_ne!(
            layout_of(&created(&Layout::expected(Some(8)))),
            Layout::expected(Some(16))
        );
    }

    #[test]
    fn a_hybrid_search_fuses_a_thresholded_dense_prefetch_with_bm25() {
        let search = Search {
            sparse: crate::bm25::query_vector("refund"),
            dense: Some(vec![1.0, 0.0]),
            min_dense_similarity: 0.4,
            limit: 2,
        };
        let request = search_request("kb", search).expect("a request");
        assert_eq!(request.collection_name, "kb");
        assert_eq!(request.limit, Some(2));
        assert!(matches!(
            request.query.and_then(|q| q.variant),
            Some(query::Variant::Fusion(f)) if f == Fusion::Dbsf as i32
        ));
        assert_eq!(request.prefetch.len(), 2);
        let dense = &request.prefetch[0];
        assert_eq!(dense.using.as_deref(), Some(DENSE_VECTOR_NAME));
        assert_eq!(dense.score_threshold, Some(0.4));
        assert_eq!(dense.limit, Some(2 * PREFETCH_FACTOR as u64));
        let sparse = &request.prefetch[1];
        assert_eq!(sparse.using.as_deref(), Some(VECTOR_NAME));
        assert_eq!(sparse.score_threshold, None);

        let bm25_only = Search {
            dense: None,
            sparse: crate::bm25::query_vector("refund"),
            min_dense_similarity: 0.4,
            limit: 2,
        };
        let request = search_request("kb", bm25_only).expect("a request");
        assert!(request.prefetch.is_empty());
        assert_eq!(request.using.as_deref(), Some(VECTOR_NAME));
        let nothing = Search {
            sparse: None,
            dense: None,
            min_dense_similarity: 0.4,
            limit: 2,
        };
        assert!(search_request("kb", nothing).is_none());
    }
}
