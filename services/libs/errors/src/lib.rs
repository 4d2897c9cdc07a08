//! How every door answers a failure: one [`ErrorKind`] per error, one table from kinds to a gRPC code
//! and an HTTP status, and the two conversions every crate uses, [`grpc_status`] and [`http_response`],
//! so a client reading either door sees the same code, the same message and the same field.
//!
//! Each crate keeps its own `thiserror` enum with its causes as sources and implements
//! [`ServiceError`] on it; only the kind is chosen there. A crate's `From<its error> for tonic::Status`
//! cannot be written here (neither type is ours), so each crate writes a one-line one calling
//! [`grpc_status`].

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// gRPC metadata key naming the request field a rejection is about, for clients that act on it.
pub const FIELD_METADATA_KEY: &str = "x-switchboard-field";
/// gRPC metadata key saying, in whole seconds, when a refused request is worth sending again: HTTP's
/// `Retry-After`, which gRPC has no standard place for.
pub const RETRY_AFTER_METADATA_KEY: &str = "retry-after";

/// What kind of failure an error is, as far as a client is concerned: whether to fix the request, look
/// elsewhere, authenticate, or retry later. Deliberately few; add one only with its row in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is at fault; sending it again unchanged cannot help.
    InvalidArgument,
    /// The request is larger than this door accepts.
    PayloadTooLarge,
    /// The request body is in a format this door does not read (HTTP `Content-Type`).
    UnsupportedMediaType,
    /// What the request names does not exist.
    NotFound,
    /// What the request would create exists already.
    AlreadyExists,
    /// What the request names changed under it (another writer came first): reading again and
    /// retrying may succeed.
    Aborted,
    /// The caller could not be identified.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller tried too often (failed logins); retrying after the time it is told may succeed.
    TooManyRequests,
    /// Stored data cannot be read back: retrying will not help, and someone should look.
    DataLoss,
    /// A dependency (the bus, a store, an embedder) failed; retrying later may succeed.
    Unavailable,
    /// A fault of the service itself.
    Internal,
}

impl ErrorKind {
    /// Every kind, in table order.
    pub const ALL: [Self; 12] = [
        Self::InvalidArgument,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::NotFound,
        Self::AlreadyExists,
        Self::Aborted,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::TooManyRequests,
        Self::DataLoss,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The table: each kind's gRPC code and HTTP status, side by side so the two doors cannot drift.
    pub const fn codes(self) -> (Code, StatusCode) {
        match self {
            Self::InvalidArgument => (Code::InvalidArgument, StatusCode::BAD_REQUEST),
            // ResourceExhausted, as the gRPC listener also answers for a message over tonic's decoding
            // limit (tonic itself says OutOfRange).
            Self::PayloadTooLarge => (Code::ResourceExhausted, StatusCode::PAYLOAD_TOO_LARGE),
            Self::UnsupportedMediaType => {
                (Code::InvalidArgument, StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            Self::NotFound => (Code::NotFound, StatusCode::NOT_FOUND),
            Self::AlreadyExists => (Code::AlreadyExists, StatusCode::CONFLICT),
            Self::Aborted => (Code::Aborted, StatusCode::CONFLICT),
            Self::Unauthenticated => (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            Self::PermissionDenied => (Code::PermissionDenied, StatusCode::FORBIDDEN),
            Self::TooManyRequests => (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
            Self::DataLoss => (Code::DataLoss, StatusCode::INTERNAL_SERVER_ERROR),
            Self::Unavailable => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            Self::Internal => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub const fn grpc_code(self) -> Code {
        self.codes().0
    }

    pub const fn http_status(self) -> StatusCode {
        self.codes().1
    }
}

/// An error a service answers a client with.
pub trait ServiceError: Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;

    /// The request field a rejection is about, sent as [`FIELD_METADATA_KEY`] and as the HTTP `field`.
    fn field(&self) -> Option<&str> {
        None
    }

    /// How long a client should wait before sending the request again, when the refusal says:
    /// `Retry-After` on HTTP, [`RETRY_AFTER_METADATA_KEY`] on gRPC.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    fn grpc_code(&self) -> Code {
        self.kind().grpc_code()
    }

    fn http_status(&self) -> StatusCode {
        self.kind().http_status()
    }
}

/// The error and its causes, outermost first, joined by `": "`.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Whole seconds, rounded up, so a client waiting that long is never early.
pub fn retry_secs(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

/// The gRPC answer: the kind's code; the whole cause chain as the message, since a client sees only
/// that (told only "publishing failed", it cannot tell a full stream from an outage); the field, if
/// any, in [`FIELD_METADATA_KEY`]; when to retry, if said, in [`RETRY_AFTER_METADATA_KEY`]; and the
/// error itself as the status's source, for server-side logging and tracing layers.
pub fn grpc_status<E: ServiceError>(e: E) -> Status {
    let mut metadata = MetadataMap::new();
    // Field names are ASCII identifiers; one that is not a valid metadata value is left out rather
    // than sent mangled.
    if let Some(field) = e.field().and_then(|f| MetadataValue::try_from(f).ok()) {
        metadata.insert(FIELD_METADATA_KEY, field);
    }
    if let Some(after) = e.retry_after() {
        metadata.insert(
            RETRY_AFTER_METADATA_KEY,
            MetadataValue::from(retry_secs(after)),
        );
    }
    let mut status = Status::with_metadata(e.grpc_code(), error_chain(&e), metadata);
    status.set_source(Arc::new(e));
    status
}

#[derive(Debug, Serialize)]
struct Failure<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// The HTTP answer: the kind's status and `{"error": <the cause chain>, "field": <the field>}`, the
/// field left out when there is none, with `Retry-After` when the error says when to retry.
pub fn http_response<E: ServiceError>(e: &E) -> Response {
    let body = Failure {
        error: error_chain(e),
        field: e.field(),
    };
    let mut response = (e.http_status(), Json(body)).into_response();
    if let Some(after) = e.retry_after() {
        let secs = HeaderValue::from(retry_secs(after));
        response.headers_mut().insert(header::RETRY_AFTER, secs);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code_and_status() {
        let table = [
            (
                ErrorKind::InvalidArgument,
                Code::InvalidArgument,
                StatusCode::BAD_REQUEST,
            ),
            (
                ErrorKind::PayloadTooLarge,
                Code::ResourceExhausted,
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                ErrorKind::UnsupportedMediaType,
                Code::InvalidArgument,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (ErrorKind::NotFound, Code::NotFound, StatusCode::NOT_FOUND),
            (
                ErrorKind::AlreadyExists,
                Code::AlreadyExists,
                StatusCode::CONFLICT,
            ),
            (ErrorKind::Aborted, Code::Aborted, StatusCode::CONFLICT),
            (
                ErrorKind::Unauthenticated,
                Code::Unauthenticated,
                StatusCode::UNAUTHORIZED,
            ),
            (
                ErrorKind::PermissionDenied,
                Code::PermissionDenied,
                StatusCode::FORBIDDEN,
            ),
            (
                ErrorKind::TooManyRequests,
                Code::ResourceExhausted,
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (
                ErrorKind::DataLoss,
                Code::DataLoss,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                ErrorKind::Unavailable,
                Code::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                ErrorKind::Internal,
                Code::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        assert_eq!(
            table.map(|(kind, _, _)| kind),
            ErrorKind::ALL,
            "every kind, once"
        );
        for (kind, code, status) in table {
            assert_eq!(kind.codes(), (code, status), "{kind:?}");
            assert_eq!((kind.grpc_code(), kind.http_status()), (code, status));
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the outer step failed")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("the inner cause")]
    struct Inner;

    impl ServiceError for Outer {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Unavailable
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("invalid {0}: missing")]
    struct Rejected(&'static str);

    impl ServiceError for Rejected {
        fn kind(&self) -> ErrorKind {
            ErrorKind::InvalidArgument
        }

        fn field(&self) -> Option<&str> {
            Some(self.0)
        }
    }

    #[test]
    fn a_status_carries_the_chain_the_field_and_the_error() {
        let status = grpc_status(Outer(Inner));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "the outer step failed: the inner cause");
        assert!(status.metadata().get(FIELD_METADATA_KEY).is_none());
        let source = status.source().expect("the error is the source");
        assert!(source.downcast_ref::<Outer>().is_some(), "{source:?}");

        let status = grpc_status(Rejected("channel"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid channel: missing");
        assert_eq!(
            status.metadata().get(FIELD_METADATA_KEY).unwrap(),
            "channel"
        );
    }

    #[test]
    fn a_field_that_is_no_metadata_value_is_left_out() {
        let status = grpc_status(Rejected("line\nbreak"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.metadata().get(FIELD_METADATA_KEY).is_none());
    }

    async fn answer(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    #[tokio::test]
    async fn an_http_answer_has_the_status_the_chain_and_the_field() {
        let (status, body) = answer(http_response(&Rejected("channel"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid channel: missing", "field": "channel"})
        );

        let (status, body) = answer(http_response(&Outer(Inner))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({"error": "the outer step failed: the inner cause"})
        );
    }
}
