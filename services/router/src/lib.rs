//! The router role: turns a ticket's similar historical tickets, the classifier's probabilities and the
//! live rules into a decision — a department with a confidence and the evidence behind it, or human
//! review when the evidence is weak.

mod config;
mod decide;
mod error;
mod rules;
mod service;
mod stage;

pub use config::{DEFAULT_MODEL_WEIGHT, Gate, MODEL_WEIGHTS, RouterConfig};
pub use decide::{MODEL_VERSION, best_model_weight, decide, routes};
pub use error::RouterError;
pub use rules::{RuleBook, RuleSet};
pub use service::RulesService;
pub use stage::RouterStage;
