//! What the vector-store tests share: the backends, the history they search and the test embedder.

pub mod backends;
pub mod history;
pub mod word_hash;
