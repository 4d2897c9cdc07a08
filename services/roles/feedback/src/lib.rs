//! The feedback role: agents' corrections and resolutions flow back into the knowledge base, so the next
//! similar ticket is routed on better evidence. Also serves the `Decisions` gRPC service through which the
//! decision board reads decisions and sends corrections.

mod error;
mod handler;
mod role;
mod service;

pub use error::FeedbackError;
pub use handler::{FeedbackHandler, correction_weight};
pub use role::role;
pub use service::DecisionsService;
