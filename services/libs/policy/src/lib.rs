//! The desk's policy on tickets that need more than routing, shared by the roles that apply it:
//! - escalation: when a person must take a ticket at once (anger, complexity, unresolved rounds, VIP),
//!   which the sentiment role decides;
//! - priority: one policy, applied once by the router, that starts from normal and steps the priority
//!   by tone, customer tier, SLA deadline, waiting time and incidents, recording each step as a
//!   [`PriorityStep`](switchboard_proto::PriorityStep) that [`describe`] puts into words;
//! - wording: each of these facts in English and in Chinese ([`Lang`]), from one function per fact;
//! - threads: each thread's unresolved rounds, opened by sentiment and cleared by feedback.

mod config;
mod escalation;
mod lang;
mod priority;
mod threads;

pub use config::{ConfigError, PolicyConfig};
pub use escalation::{Escalation, escalations};
pub use lang::Lang;
pub use priority::{SLA_DEADLINE_ATTRIBUTE, describe, level, prioritise};
pub use threads::{THREADS_BUCKET, open_round, resolve_thread, thread_key};
