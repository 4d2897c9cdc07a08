//! Dense sentence embeddings for retrieval: a BERT-family model run in-process on the CPU
//! ([`LocalBert`]), a sentence encoder exported to ONNX run in-process by ONNX Runtime
//! ([`OnnxEncoder`]), or an OpenAI-compatible `/v1/embeddings` server ([`OpenAiEmbedder`]) for
//! production model servers, all behind one [`Embedder`] trait. [`Batcher`] wraps either so
//! that many tasks embedding one ticket each share batched model calls.
//!
//! Every vector an [`Embedder`] returns is L2-normalised, so a dot product is the cosine
//! similarity and vectors from different embedders can be compared by the same code.

mod batcher;
mod embedder;
mod error;
mod local;
mod onnx;
mod openai;
mod pooling;
mod probe;
mod worker;

pub use batcher::{Batcher, BatcherOptions};
pub use embedder::Embedder;
pub use error::EmbedError;
pub use local::{LocalBert, LocalBertOptions};
pub use onnx::OnnxEncoder;
pub use openai::OpenAiEmbedder;
pub use probe::{ChineseReading, read_chinese};

/// The model in the local directory `dir`: an [`OnnxEncoder`] when it holds `model.onnx`, else a
/// [`LocalBert`] checkpoint. Blocks while it loads: call it at start or from `spawn_blocking`.
pub fn load_local(
    dir: &std::path::Path,
    options: LocalBertOptions,
) -> Result<std::sync::Arc<dyn Embedder>, EmbedError> {
    Ok(if OnnxEncoder::is_in(dir) {
        std::sync::Arc::new(OnnxEncoder::load(dir, options)?)
    } else {
        std::sync::Arc::new(LocalBert::load(dir, options)?)
    })
}
