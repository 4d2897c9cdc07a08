use std::fmt::Debug;

use async_trait::async_trait;

use crate::EmbedError;

/// Turns texts into dense vectors whose dot product measures how alike their meanings are.
#[async_trait]
pub trait Embedder: Send + Sync + Debug {
    /// The model's id. Stored beside the vectors it made: vectors from different models are not
    /// comparable, so a change of name means the knowledge base must be re-embedded.
    fn name(&self) -> &str;

    /// The length of every vector. An embedder that learns it from its server reports 0 until
    /// it knows (see [`crate::OpenAiEmbedder::learn_dimension`]).
    fn dimension(&self) -> usize;

    /// One L2-normalised vector per text, in the order of `texts`. Takes the texts by value
    /// because they are handed on to another thread or task.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;
}
