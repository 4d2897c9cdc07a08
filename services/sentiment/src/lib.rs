//! The sentiment role: reads the tone of a ticket (sentiment, anger, urgency) from word lists, or its
//! sentiment from a trained model when one is configured, and from those, the parsed section, the thread's
//! history and the clock decides its priority and whether a human should take it at once.

mod assess;
mod config;
mod eval;
mod features;
mod incident;
mod lexicon;
mod model;
mod priority;
mod score;
mod split;
mod stage;
mod threads;
mod train;

pub use config::{ConfigError, SentimentConfig};
pub use eval::Confusion;
pub use features::FeatureConfig;
pub use incident::{Incident, Neighbour, incident};
pub use model::{Model, ModelError};
pub use priority::{SLA_DEADLINE_ATTRIBUTE, parse_instant_ms, raise_for_incident, raise_for_time};
pub use score::{Signals, score};
pub use split::{Part, part, validation_part};
pub use stage::{SentimentError, SentimentStage};
pub use threads::{THREADS_BUCKET, open_round, resolve_thread, thread_key};
pub use train::{Progress, TrainError, TrainParams, train};
