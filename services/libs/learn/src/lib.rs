//! The linear learning the roles and the knowledge base share: hashed n-gram features of a text
//! ([`ngrams`]), the dual-coordinate-descent linear SVM that weighs them ([`svm`]), and the seedable
//! randomness that makes training reproducible ([`SplitMix64`]). Each user keeps only what is its own
//! (the knowledge base's TF-IDF and one class against the rest, the sentiment model's naive-Bayes
//! ratios and file format); there is one of each of these.

pub mod ngrams;
mod rng;
pub mod svm;

pub use ngrams::{Counts, NgramConfig, NgramFeatures, fnv1a64};
pub use rng::SplitMix64;
pub use svm::{Block, Linear, Pass, Solver, squared_norm};
