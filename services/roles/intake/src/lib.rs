//! The intake role: where tickets enter Switchboard. Three doors (gRPC `Intake.Submit`, an HTTP webhook
//! taking plain JSON or CloudEvents, and CloudEvents on NATS `<prefix>.inbound.<channel>`) share one path:
//! validation with errors that name the field, whitespace normalisation, language detection, PII masking,
//! idempotency, and a ticket envelope published on `<prefix>.received`.

mod backlog;
mod claim;
mod cloudevents;
mod config;
#[cfg(test)]
mod decode_properties;
mod error;
mod grpc;
mod http;
mod inbound;
mod intake;
mod json;
mod normalise;
mod role;
mod trace;
mod validate;

pub use backlog::Backlog;
pub use config::{ConfigError, IntakeConfig};
pub use error::{FIELD_METADATA_KEY, IntakeError};
pub use grpc::IntakeService;
pub use http::{IntakeApi, http_routes};
pub use inbound::InboundHandler;
pub use intake::{Intake, Submitted};
pub use role::{IDEMPOTENCY_BUCKET, role};
pub use validate::{MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES, MAX_ID_BYTES, Submission};
