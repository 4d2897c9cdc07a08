//! Dense sentence embeddings for retrieval: a BERT-family model run in-process on the CPU
//! ([`LocalBert`]), or an OpenAI-compatible `/v1/embeddings` server ([`OpenAiEmbedder`]) for
//! production model servers, both behind one [`Embedder`] trait. [`Batcher`] wraps either so
//! that many tasks embedding one ticket each share batched model calls.
//!
//! Every vector an [`Embedder`] returns is L2-normalised, so a dot product is the cosine
//! similarity and vectors from different embedders can be compared by the same code.

mod batcher;
mod embedder;
mod error;
mod local;
mod openai;
mod pooling;
mod probe;

pub use batcher::{Batcher, BatcherOptions};
pub use embedder::Embedder;
pub use error::EmbedError;
pub use local::{LocalBert, LocalBertOptions};
pub use openai::OpenAiEmbedder;
pub use probe::{ChineseReading, read_chinese};
