//! Intake's one error type, its kind for the gRPC and HTTP doors (`switchboard_errors` maps kinds to
//! both alike), and its mapping for the runner.

use std::time::Duration;

use switchboard_bus::BusError;
pub use switchboard_errors::FIELD_METADATA_KEY;
use switchboard_errors::{ErrorKind, ServiceError};
use switchboard_runtime::HandlerError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The submission itself is at fault; retrying it unchanged cannot help.
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// The idempotency store could not be asked, so it is unknown whether the ticket is new.
    #[error("the idempotency store failed")]
    Idempotency(#[source] BusError),
    #[error("publishing the ticket failed")]
    Publish(#[source] BusError),
    /// The pipeline is behind: a role has more tickets waiting than the configured bound
    /// ([`crate::backlog`]).
    #[error(
        "the pipeline is behind: {waiting} tickets wait for {role}, over intake.max_backlog = {bound}; retry in {} s",
        switchboard_errors::retry_secs(*.retry_after)
    )]
    Overloaded {
        role: String,
        waiting: u64,
        bound: u64,
        retry_after: Duration,
    },
    /// What the idempotency bucket holds for a key is not a claim intake wrote, so it cannot tell which
    /// ticket the key made.
    #[error("the idempotency record {key:?} cannot be read")]
    Claim {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("recording the ticket as received failed")]
    Work(#[source] switchboard_desk::DeskError),
    /// The HTTP body is over [`IntakeConfig::max_body_bytes`](crate::IntakeConfig::max_body_bytes). (The
    /// gRPC door leaves this to tonic, whose answer the gRPC listener turns into `RESOURCE_EXHAUSTED`,
    /// like this error's kind.)
    #[error("invalid body: over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The HTTP body is not declared JSON: reading it as JSON anyway would accept what the client did
    /// not mean to send.
    #[error(
        "unsupported content type {}: send application/json, or application/cloudevents+json for a CloudEvent",
        .got.as_deref().map_or("(none given)".to_owned(), |t| format!("{t:?}"))
    )]
    UnsupportedMediaType { got: Option<String> },
}

impl IntakeError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// The submission was at fault (a field, its size, its content type), not intake: sending it
    /// again unchanged cannot help.
    pub fn is_rejection(&self) -> bool {
        match self {
            Self::Invalid { .. } | Self::TooLarge { .. } | Self::UnsupportedMediaType { .. } => {
                true
            }
            Self::Idempotency(_)
            | Self::Publish(_)
            | Self::Overloaded { .. }
            | Self::Claim { .. }
            | Self::Work(_) => false,
        }
    }

    /// The request field at fault, for rejections.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::TooLarge { .. } => Some("body"),
            Self::Idempotency(_)
            | Self::Publish(_)
            | Self::Overloaded { .. }
            | Self::Claim { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::Work(_) => None,
        }
    }
}

impl ServiceError for IntakeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            Self::Idempotency(_) | Self::Publish(_) | Self::Overloaded { .. } | Self::Work(_) => {
                ErrorKind::Unavailable
            }
            Self::Claim { .. } => ErrorKind::DataLoss,
        }
    }

    fn field(&self) -> Option<&str> {
        IntakeError::field(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl From<IntakeError> for Status {
    fn from(e: IntakeError) -> Self {
        switchboard_errors::grpc_status(e)
    }
}

/// For the NATS door: a rejected event is dead-lettered at once (with this error, so nothing is lost),
/// while a bus failure is worth redelivering.
impl From<IntakeError> for HandlerError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Invalid { .. }
            | IntakeError::TooLarge { .. }
            | IntakeError::UnsupportedMediaType { .. }
            | IntakeError::Claim { .. } => HandlerError::permanent(e),
            IntakeError::Work(ref w) if !w.is_transient() => HandlerError::permanent(e),
            IntakeError::Idempotency(_)
            | IntakeError::Publish(_)
            | IntakeError::Overloaded { .. }
            | IntakeError::Work(_) => HandlerError::transient(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use tonic::Code;

    use super::*;

    #[test]
    fn invalid_maps_to_invalid_argument_with_the_field() {
        let status = Status::from(IntakeError::invalid("channel", "\"fax\" is not configured"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid channel: \"fax\" is not configured"
        );
        assert_eq!(
            status.metadata().get(FIELD_METADATA_KEY).unwrap(),
            "channel"
        );
    }

    #[test]
    fn bus_failures_keep_their_cause() {
        let e = IntakeError::Publish(BusError::Publish {
            subject: "tickets.received".into(),
            source: "connection refused".into(),
        });
        assert_eq!(e.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        let status = Status::from(e);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "publishing the ticket failed: publishing to tickets.received failed: connection refused"
        );
        assert!(status.metadata().get(FIELD_METADATA_KEY).is_none());
    }

    #[test]
    fn only_rejections_are_permanent_for_the_runner() {
        let invalid = HandlerError::from(IntakeError::invalid("text", "missing"));
        assert!(matches!(invalid, HandlerError::Permanent(_)));
        let bus = HandlerError::from(IntakeError::Idempotency(BusError::Closed));
        assert!(matches!(bus, HandlerError::Transient(_)));
    }
}
