//! The router role: turns a ticket's similar historical tickets, the classifier's probabilities and the
//! live rules into a decision — a department with a confidence and the evidence behind it, or human
//! review when the evidence is weak — with the priority the policy gives it at that moment. It also
//! serves the editing of those rules (gRPC `Rules` and HTTP), keeping every version, the what-if
//! preview of a change over recent decisions, the department catalog's descriptions, and the
//! keyword → department rules the history suggests, with each department's hot keywords.

mod catalog;
mod config;
mod decide;
mod duty;
mod editor;
mod error;
mod extract;
mod history;
mod http;
mod http_mined;
mod mined;
mod mixing;
mod policy;
mod preview;
#[cfg(test)]
mod racing;
mod role;
#[cfg(test)]
mod rule_properties;
mod rules;
mod service;
mod stage;
mod suggest;

pub use config::{DutyConfig, Gate, RouterConfig, SuggestionConfig};
pub use decide::routes;
pub use editor::{RuleEditor, StoredRule};
pub use history::{Action, RULE_HISTORY_BUCKET, RuleVersion};
pub use http::{RouterApi, RouterApiState, routes as http_routes};
pub use mined::MinedHistory;
pub use role::role;
