//! The metrics role: watches every event on the bus and keeps the figures of the data cockpit — decisions
//! by outcome, corrections by reason, dispatch accuracy, handling time and hot issue types — exposed as
//! Prometheus counters and through the `Stats` gRPC service.

mod handler;
mod role;
mod service;
mod tally;

pub use role::role;
