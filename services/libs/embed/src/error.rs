use std::path::PathBuf;
use std::sync::Arc;

/// Why texts could not be embedded. Causes are kept as sources, never flattened to strings.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory, or its weights, is not there. Expected on a fresh checkout: the
    /// caller logs this once and searches with BM25 only.
    #[error(
        "no embedding model in {}: run scripts/fetch-model.sh [--model NAME] with that directory to \
         fetch use-multilingual (or all-MiniLM-L6-v2, or m3e-small) there (until then Switchboard \
         searches with BM25 only)",
        dir.display()
    )]
    ModelMissing { dir: PathBuf },

    /// A setting that cannot work, named with the reason.
    #[error("invalid embedder option: {0}")]
    Options(String),

    #[error("could not read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid model configuration", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The directory holds a BERT checkpoint that was never converted to the ONNX graph the
    /// encoder runs (a directory fetched by an older fetch script).
    #[error(
        "{} holds model weights but no model.onnx: run scripts/fetch-model.sh [--model NAME] with \
         that directory again, which converts them",
        dir.display()
    )]
    Unconverted { dir: PathBuf },

    /// The graph's inputs are neither of the two layouts the encoder runs.
    #[error("{} takes inputs {inputs:?}: expected input_ids and attention_mask (a converted BERT model) or token_ids and row_splits (the Universal Sentence Encoder)", path.display())]
    UnknownGraph { path: PathBuf, inputs: Vec<String> },

    #[error("could not load the tokenizer from {}", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },

    /// ONNX Runtime's library could not be loaded, or is not one this build can use.
    #[error("could not load ONNX Runtime from {} (scripts/fetch-model.sh puts it beside the model)", path.display())]
    Runtime {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("could not load the ONNX model {}", path.display())]
    OnnxModel {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },

    #[error("the ONNX model failed while embedding")]
    OnnxInference(#[source] ort::Error),

    #[error("could not tokenize a text")]
    Tokenize(#[source] tokenizers::Error),

    #[error("could not start the embedding worker thread")]
    Spawn(#[source] std::io::Error),

    /// The worker thread or batching task ended (it panicked, or its owner was dropped).
    #[error("the embedding worker has stopped")]
    Stopped,

    #[error("embedding request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an error status; `body` is the start of what it said.
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },

    #[error("{url} answered with something that is not an embeddings response")]
    Response {
        url: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("asked for {expected} embeddings, got {got}")]
    Count { expected: usize, got: usize },

    /// An answer's `index` fields do not name each input exactly once.
    #[error("embedding index {index} is out of range or repeated for {count} inputs")]
    Index { index: usize, count: usize },

    #[error("expected {expected}-dimension embeddings, got {got}")]
    Dimension { expected: usize, got: usize },

    /// A vector of all zeros, or with a value that is not finite, has no direction to keep.
    #[error("the model returned a vector that cannot be normalised (all zeros or not finite)")]
    Degenerate,

    /// The shared batch this text rode in failed; every caller in it gets the same cause.
    #[error("the batch this text was embedded in failed")]
    Batch(#[source] Arc<EmbedError>),
}
