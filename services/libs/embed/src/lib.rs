//! Dense sentence embeddings for retrieval: a sentence model exported to ONNX, run in-process by ONNX
//! Runtime ([`OnnxEncoder`]: a BERT-family model such as all-MiniLM-L6-v2, or the multilingual
//! Universal Sentence Encoder), or an OpenAI-compatible `/v1/embeddings` server ([`OpenAiEmbedder`])
//! for production model servers, both behind one [`Embedder`] trait. [`Batcher`] wraps either so
//! that many tasks embedding one ticket each share batched model calls.
//!
//! Every vector an [`Embedder`] returns is L2-normalised, so a dot product is the cosine
//! similarity and vectors from different embedders can be compared by the same code.

mod batcher;
mod embedder;
mod error;
mod normalize;
mod onnx;
mod openai;
mod probe;
mod worker;

pub use batcher::{Batcher, BatcherOptions};
pub use embedder::Embedder;
pub use error::EmbedError;
pub use onnx::{LocalModelOptions, OnnxEncoder};
pub use openai::OpenAiEmbedder;
pub use probe::{ChineseReading, read_chinese};

/// The sentence model in the local directory `dir`, run by ONNX Runtime. Blocks while it loads:
/// call it at start or from `spawn_blocking`.
pub fn load_local(
    dir: &std::path::Path,
    options: LocalModelOptions,
) -> Result<std::sync::Arc<dyn Embedder>, EmbedError> {
    Ok(std::sync::Arc::new(OnnxEncoder::load(dir, options)?))
}
