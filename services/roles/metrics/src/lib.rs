//! The metrics role: watches every event on the bus and keeps the figures of the data cockpit — decisions
//! by outcome, corrections by reason, dispatch accuracy, handling time and hot issue types — exposed as
//! Prometheus counters, through the `Stats` gRPC service and as `GET /v1/stats`.

mod handler;
mod http;
mod role;
mod service;
mod tally;

pub use http::{MetricsApi, routes};
pub use role::role;
