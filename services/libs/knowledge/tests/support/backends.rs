//! The two places a knowledge base can live, for the conformance suite: an embedded qdrant-edge
//! directory, always; and a collection on the Qdrant server that `SWITCHBOARD_TEST_QDRANT_URL` names
//! (with `SWITCHBOARD__QDRANT__API_KEY` when it wants one), only when that is set.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Once};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::vectors_config::Config;
use qdrant_client::qdrant::{Distance, Modifier, PayloadSchemaType};
use qdrant_edge::EdgeShard;
use switchboard_embed::Embedder;
use switchboard_knowledge::{KnowledgeBase, KnowledgeError};
use tempfile::TempDir;

/// The environment variable naming the Qdrant server's gRPC endpoint, as the binary's settings do.
pub const URL_VAR: &str = "SWITCHBOARD_TEST_QDRANT_URL";
pub const API_KEY_VAR: &str = "SWITCHBOARD__QDRANT__API_KEY";

/// What a store was created with, read back from the engine itself rather than through the knowledge
/// base: dense vectors by name (dimension, distance), sparse vectors by name (IDF or not), and indexed
/// payload fields by name (their type).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Schema {
    pub dense: BTreeMap<String, (usize, String)>,
    pub sparse: BTreeMap<String, bool>,
    pub indexes: BTreeMap<String, String>,
}

/// One store location. Every `open` opens the same store, so a test can close and reopen it.
#[async_trait]
pub trait Backend: Send + Sync {
    async fn open(
        &self,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<KnowledgeBase, KnowledgeError>;

    /// The store's schema. Call it with every `KnowledgeBase` on the store dropped.
    async fn schema(&self) -> Schema;
}

/// A qdrant-edge store in a temporary directory.
pub struct Edge {
    dir: TempDir,
}

impl Edge {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

#[async_trait]
impl Backend for Edge {
    async fn open(
        &self,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<KnowledgeBase, KnowledgeError> {
        KnowledgeBase::open(self.dir.path(), embedder, min_dense_similarity)
    }

    async fn schema(&self) -> Schema {
        // No config: the shard loads the one it was created with.
        let shard = EdgeShard::load(self.dir.path(), None).expect("load the shard");
        let config = shard.config().clone();
        Schema {
            dense: config
                .vectors
                .iter()
                .map(|(name, p)| (name.to_string(), (p.size, format!("{:?}", p.distance))))
                .collect(),
            sparse: config
                .sparse_vectors
                .iter()
                .map(|(name, p)| {
                    let idf = p.modifier == Some(qdrant_edge::Modifier::Idf);
                    (name.to_string(), idf)
                })
                .collect(),
            indexes: shard
                .info()
                .payload_schema
                .into_iter()
                .map(|(field, index)| (field.to_string(), format!("{:?}", index.data_type)))
                .collect(),
        }
    }
}

/// A collection of its own on the configured server, deleted when the test ends (passed or failed).
pub struct Server {
    url: String,
    api_key: Option<String>,
    collection: String,
}

impl Server {
    /// The server half of `test`, or `None` (having said so) when no server is configured.
    pub fn from_env(test: &str) -> Option<Self> {
        let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
            // Once per test binary, and past the test harness's output capture (which hides what a
            // passing test prints), so every run says plainly that no server was tested.
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: the server half of the vector-store conformance suite ({URL_VAR} is \
                     not set); its qdrant-edge half runs"
                );
            });
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        Some(Self {
            url,
            api_key: std::env::var(API_KEY_VAR).ok().filter(|k| !k.is_empty()),
            collection: format!("switchboard-test-{test}-{}-{nanos}", std::process::id()),
        })
    }
}

#[async_trait]
impl Backend for Server {
    async fn open(
        &self,
        embedder: Option<Arc<dyn Embedder>>,
        min_dense_similarity: f32,
    ) -> Result<KnowledgeBase, KnowledgeError> {
        KnowledgeBase::connect(
            &self.url,
            self.api_key.as_deref(),
            &self.collection,
            embedder,
            min_dense_similarity,
        )
        .await
    }

    async fn schema(&self) -> Schema {
        let info = client(&self.url, self.api_key.clone())
            .collection_info(&self.collection)
            .await
            .expect("collection info")
            .result
            .expect("the collection exists");
        let params = info
            .config
            .and_then(|c| c.params)
            .expect("collection params");
        let dense = match params.vectors_config.and_then(|v| v.config) {
            Some(Config::ParamsMap(m)) => m.map.into_iter().collect(),
            Some(Config::Params(p)) => vec![(String::new(), p)],
            None => Vec::new(),
        };
        Schema {
            dense: dense
                .into_iter()
                .map(|(name, p)| {
                    let distance = Distance::try_from(p.distance).expect("a known distance");
                    (name, (p.size as usize, format!("{distance:?}")))
                })
                .collect(),
            sparse: params
                .sparse_vectors_config
                .map(|s| s.map)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, p)| (name, p.modifier == Some(Modifier::Idf as i32)))
                .collect(),
            indexes: info
                .payload_schema
                .into_iter()
                .map(|(field, index)| {
                    let kind = PayloadSchemaType::try_from(index.data_type).expect("a known type");
                    (field, format!("{kind:?}"))
                })
                .collect(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future: delete from a thread
        // with a runtime (and so a client) of its own.
        let (url, api_key, collection) = (
            self.url.clone(),
            self.api_key.clone(),
            self.collection.clone(),
        );
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime
                .block_on(client(&url, api_key).delete_collection(collection))
                .is_ok()
        })
        .join();
        if !matches!(deleted, Ok(true)) {
            eprintln!("could not delete test collection {}", self.collection);
        }
    }
}

fn client(url: &str, api_key: Option<String>) -> Qdrant {
    Qdrant::from_url(url)
        .api_key(api_key)
        .skip_compatibility_check()
        .build()
        .expect("qdrant client")
}
