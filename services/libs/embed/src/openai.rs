//! Embeddings from a model server speaking the OpenAI-compatible `/v1/embeddings` API
//! (text-embeddings-inference, Ollama, vLLM, OpenAI itself).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::normalize::normalize;
use crate::{EmbedError, Embedder};

/// How much of an error body goes into [`EmbedError::Status`]: enough for the server's reason,
/// not a whole HTML error page in a log line.
const BODY_EXCERPT: usize = 300;

/// A client for one model on one OpenAI-compatible embeddings server.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    /// 0 until configured or learned from the first answer; every later answer must match it,
    /// since vectors of another length cannot go into the same index.
    dimension: AtomicUsize,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    /// `base_url` is the server's root (`http://tei:8080`); a trailing `/v1`, as OpenAI client
    /// libraries expect it, is accepted too. `timeout` bounds each whole request, so a stuck
    /// server cannot stall the pipeline.
    pub fn new(
        base_url: &str,
        model: impl Into<String>,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<OpenAiEmbedder, EmbedError> {
        let root = base_url.trim_end_matches('/');
        let url = if root.ends_with("/v1") {
            format!("{root}/embeddings")
        } else {
            format!("{root}/v1/embeddings")
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| EmbedError::Request {
                url: url.clone(),
                source,
            })?;
        Ok(OpenAiEmbedder {
            client,
            url,
            model: model.into(),
            api_key,
            dimension: AtomicUsize::new(0),
        })
    }

    /// Declares the vector length up front (from configuration), so [`Embedder::dimension`] is
    /// right before the first call and a server answering otherwise is caught.
    #[must_use]
    pub fn with_dimension(self, dimension: usize) -> OpenAiEmbedder {
        self.dimension.store(dimension, Ordering::Relaxed);
        self
    }

    /// The vector length, asking the server with a one-word text when it is not known yet. For
    /// callers that must size an index before the first real text arrives.
    pub async fn learn_dimension(&self) -> Result<usize, EmbedError> {
        match self.dimension.load(Ordering::Relaxed) {
            0 => Ok(self.embed(vec!["dimension".to_owned()]).await?[0].len()),
            known => Ok(known),
        }
    }

    /// Checks every vector against the known length, or learns it from this answer.
    fn check_dimension(&self, vectors: &[Vec<f32>]) -> Result<(), EmbedError> {
        let Some(first) = vectors.first() else {
            return Ok(());
        };
        let expected = match self.dimension.compare_exchange(
            0,
            first.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => first.len(),
            Err(known) => known,
        };
        match vectors.iter().find(|v| v.len() != expected) {
            Some(wrong) => Err(EmbedError::Dimension {
                expected,
                got: wrong.len(),
            }),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for OpenAiEmbedder {
    // Written out so the API key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension.load(Ordering::Relaxed)
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let request_error = |source| EmbedError::Request {
            url: self.url.clone(),
            source,
        };
        let mut request = self.client.post(&self.url).json(&EmbeddingsRequest {
            model: &self.model,
            input: &texts,
        });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(request_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(request_error)?;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body);
            return Err(EmbedError::Status {
                url: self.url.clone(),
                status,
                body: excerpt(body.trim(), BODY_EXCERPT),
            });
        }
        let answer: EmbeddingsResponse =
            serde_json::from_slice(&body).map_err(|source| EmbedError::Response {
                url: self.url.clone(),
                source,
            })?;

        let count = texts.len();
        if answer.data.len() != count {
            return Err(EmbedError::Count {
                expected: count,
                got: answer.data.len(),
            });
        }
        // The API does not promise answers in input order; `index` says which input each is.
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; count];
        for item in answer.data {
            match vectors.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => {
                    return Err(EmbedError::Index {
                        index: item.index,
                        count,
                    });
                }
            }
        }
        // With as many answers as inputs and no index repeated, every slot is filled.
        let mut vectors: Vec<Vec<f32>> = vectors.into_iter().flatten().collect();
        self.check_dimension(&vectors)?;
        // Not every server normalises (Ollama does not); the trait promises unit vectors.
        for vector in &mut vectors {
            normalize(vector)?;
        }
        Ok(vectors)
    }
}

/// The first `max` characters of `text`, marked when cut.
fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Json;
    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use serde_json::{Value, json};

    use super::*;

    /// How the stand-in server misbehaves, if at all.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Answers in reverse order, vectors [len(text), 1, 0] (not unit length); 401 without
        /// the key "secret".
        Good,
        Unavailable,
        MissingOne,
        RepeatedIndex,
        /// The first input gets 3 values, the others 2.
        RaggedDimensions,
        NotJson,
    }

    async fn embeddings(
        State(mode): State<Mode>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, String) {
        let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let mut embedding = vec![text.len() as f32, 1.0];
                if matches!(mode, Mode::Good)
                    || (matches!(mode, Mode::RaggedDimensions) && index == 0)
                {
                    embedding.push(0.0);
                }
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        data.reverse();
        match mode {
            Mode::Good => {
                let authorised = headers
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer secret");
                if !authorised {
                    return (StatusCode::UNAUTHORIZED, "bad key".into());
                }
            }
            Mode::Unavailable => {
                let page = format!("model is loading, retry later{}", " ".repeat(1000));
                return (StatusCode::SERVICE_UNAVAILABLE, page);
            }
            Mode::MissingOne => {
                data.pop();
            }
            Mode::RepeatedIndex => data[0]["index"] = json!(0),
            Mode::RaggedDimensions => {}
            Mode::NotJson => return (StatusCode::OK, "<html>hello</html>".into()),
        }
        let answer = json!({"object": "list", "model": body["model"], "data": data});
        (StatusCode::OK, answer.to_string())
    }

    /// Serves the stand-in on a free port of 127.0.0.1; the server lives as long as the test's
    /// runtime.
    async fn serve(mode: Mode) -> SocketAddr {
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(mode);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    }

    fn client(address: SocketAddr, key: Option<&str>) -> OpenAiEmbedder {
        OpenAiEmbedder::new(
            &format!("http://{address}/"),
            "test-model",
            key.map(str::to_owned),
            Duration::from_secs(10),
        )
        .unwrap()
    }

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn answers_come_back_in_input_order_normalised() {
        let embedder = client(serve(Mode::Good).await, Some("secret"));
        assert_eq!(embedder.dimension(), 0);
        let vectors = embedder.embed(texts(&["abc", "abcd", ""])).await.unwrap();
        let expected = |n: f32| {
            let norm = (n * n + 1.0).sqrt();
            vec![n / norm, 1.0 / norm, 0.0]
        };
        assert_eq!(vectors, vec![expected(3.0), expected(4.0), expected(0.0)]);
        assert_eq!(embedder.dimension(), 3);
        assert_eq!(embedder.name(), "test-model");
        assert_eq!(embedder.learn_dimension().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn the_dimension_is_learned_on_request_and_checked_when_configured() {
        let address = serve(Mode::Good).await;
        let embedder = client(address, Some("secret"));
        assert_eq!(embedder.learn_dimension().await.unwrap(), 3);

        let configured = client(address, Some("secret")).with_dimension(384);
        let error = configured.embed(texts(&["a"])).await.unwrap_err();
        assert!(
            matches!(
                error,
                EmbedError::Dimension {
                    expected: 384,
                    got: 3
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_error_status_names_the_status_and_what_the_server_said() {
        let address = serve(Mode::Unavailable).await;
        let error = client(address, None)
            .embed(texts(&["a"]))
            .await
            .unwrap_err();
        let EmbedError::Status { status, body, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("model is loading"), "{body}");
        let message = error.to_string();
        assert!(message.contains("503"), "{message}");
        assert!(message.contains("/v1/embeddings"), "{message}");

        // The key is sent: without it the stand-in refuses.
        let error = client(serve(Mode::Good).await, None)
            .embed(texts(&["a"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, EmbedError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn malformed_answers_are_named() {
        let missing = client(serve(Mode::MissingOne).await, None);
        let error = missing.embed(texts(&["a", "b"])).await.unwrap_err();
        assert!(
            matches!(
                error,
                EmbedError::Count {
                    expected: 2,
                    got: 1
                }
            ),
            "{error:?}"
        );

        let repeated = client(serve(Mode::RepeatedIndex).await, None);
        let error = repeated.embed(texts(&["a", "b"])).await.unwrap_err();
        assert!(
            matches!(error, EmbedError::Index { index: 0, count: 2 }),
            "{error:?}"
        );

        let ragged = client(serve(Mode::RaggedDimensions).await, None);
        let error = ragged.embed(texts(&["a", "b"])).await.unwrap_err();
        assert!(
            matches!(
                error,
                EmbedError::Dimension {
                    expected: 3,
                    got: 2
                }
            ),
            "{error:?}"
        );

        let not_json = client(serve(Mode::NotJson).await, None);
        let error = not_json.embed(texts(&["a"])).await.unwrap_err();
        assert!(matches!(error, EmbedError::Response { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_request_error() {
        // Bind and drop a listener to get a port nothing listens on.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = client(address, None)
            .embed(texts(&["a"]))
            .await
            .unwrap_err();
        assert!(matches!(error, EmbedError::Request { .. }), "{error:?}");
    }

    #[test]
    fn base_urls_with_or_without_v1_reach_the_same_endpoint() {
        for base in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/v1",
            "http://h:1/v1/",
        ] {
            let embedder = OpenAiEmbedder::new(base, "m", None, Duration::from_secs(1)).unwrap();
            assert_eq!(embedder.url, "http://h:1/v1/embeddings", "{base}");
        }
    }

    #[test]
    fn excerpts_cut_on_character_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hé", 2), "hé");
    }
}
