//! A tiny deterministic embedder: words hashed into a few dimensions, enough to give a store dense
//! vectors of a chosen length whose similarity follows the words two texts share.

use async_trait::async_trait;
use switchboard_embed::{EmbedError, Embedder};

#[derive(Debug)]
pub struct WordHash(pub usize);

#[async_trait]
impl Embedder for WordHash {
    fn name(&self) -> &str {
        "word-hash"
    }

    fn dimension(&self) -> usize {
        self.0
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; self.0];
                for w in t.split_whitespace() {
                    v[w.bytes().map(usize::from).sum::<usize>() % self.0] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}
