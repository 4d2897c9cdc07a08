//! The feedback role: agents' corrections and resolutions flow back into the knowledge base, so the next
//! similar ticket is routed on better evidence. Also serves the `Decisions` gRPC service through which the
//! decision board reads decisions and sends corrections.

mod corrections;
mod decision;
mod error;
mod handler;
mod role;
mod service;

pub use corrections::CorrectionsConfig;
pub use handler::FeedbackHandler;
pub use role::role;
