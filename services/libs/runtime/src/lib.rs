//! What every role shares: subject names and the pipeline's order, the handler contract, how a role
//! describes itself, the runner that turns a handler into a durable-consumer loop with acks, retries and
//! dead-letters, supervision, metrics, and telemetry.

pub mod buckets;
pub mod deadletters;
pub mod departments;
pub mod handler;
pub mod metrics;
pub mod publisher;
pub mod role;
pub mod runner;
pub mod signing;
pub mod subjects;
pub mod supervisor;
pub mod telemetry;

pub use handler::{Handler, HandlerError, Inbound, Outbound, TicketHandler, TicketStage};
pub use metrics::Metrics;
pub use publisher::Publisher;
pub use role::{GrpcService, RoleContext, RoleParts, Work, grpc};
pub use runner::{RoleRunner, RunnerOptions, RunningRole};
pub use signing::{Signer, SigningBus};
pub use subjects::Subjects;
pub use supervisor::{Failure, Failures, Supervisor};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Milliseconds since the Unix epoch, the time unit of every timestamp on the bus.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error and its causes, outermost first, joined by ": " — for logs and dead letters, where the
/// whole chain must be visible. The same chain is what clients are told (`switchboard_errors`).
pub use switchboard_errors::error_chain;
