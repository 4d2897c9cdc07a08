//! Intake's one error type and its mappings to gRPC, HTTP and the runner, so every door answers alike.

use axum::http::StatusCode;
use switchboard_bus::BusError;
use switchboard_runtime::{HandlerError, error_chain};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// gRPC metadata key naming the request field a rejection is about, for clients that act on it.
pub const FIELD_METADATA_KEY: &str = "x-switchboard-field";

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
}

impl IntakeError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// The request field at fault, for rejections.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Idempotency(_) | Self::Publish(_) => None,
        }
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Idempotency(_) | Self::Publish(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn grpc_code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::Idempotency(_) | Self::Publish(_) => Code::Unavailable,
        }
    }
}

impl From<IntakeError> for Status {
    fn from(e: IntakeError) -> Self {
        let mut metadata = MetadataMap::new();
        // Field names are static ASCII identifiers, which are always valid metadata values.
        if let Some(field) = e.field() {
            metadata.insert(FIELD_METADATA_KEY, MetadataValue::from_static(field));
        }
        // The whole chain: a client told only "publishing failed" cannot tell a full stream from an outage.
        Status::with_metadata(e.grpc_code(), error_chain(&e), metadata)
    }
}

/// For the NATS door: a rejected event is dead-lettered at once (with this error, so nothing is lost),
/// while a bus failure is worth redelivering.
impl From<IntakeError> for HandlerError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Invalid { .. } => HandlerError::permanent(e),
            IntakeError::Idempotency(_) | IntakeError::Publish(_) => HandlerError::transient(e),
        }
    }
}

#[cfg(test)]
mod tests {
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
