//! The router role: turns a ticket's similar historical tickets, the classifier's probabilities and the
//! live rules into a decision — a department with a confidence and the evidence behind it, or human
//! review when the evidence is weak — with the priority the policy gives it at that moment.

mod config;
mod decide;
mod error;
mod role;
mod rules;
mod service;
mod stage;

pub use config::{Gate, RouterConfig};
pub use decide::routes;
pub use role::role;
