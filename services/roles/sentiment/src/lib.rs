//! The sentiment role: reads the tone of a ticket (sentiment, anger, urgency) from word lists, or its
//! sentiment from a trained model when one is configured, counts its thread's unresolved rounds, and
//! applies the policy's escalation rules: whether a human should take it at once.

mod assess;
mod config;
mod eval;
mod lexicon;
mod model;
mod role;
mod score;
mod split;
mod stage;
mod train;

pub use config::{ConfigError, SentimentConfig};
pub use eval::Confusion;
pub use model::{Model, ModelError};
pub use role::role;
pub use score::{Signals, score};
pub use split::{Part, part, validation_part};
pub use stage::{SentimentError, SentimentStage};
pub use switchboard_learn::NgramConfig;
pub use train::{Progress, TrainError, TrainParams, train};
