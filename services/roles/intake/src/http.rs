//! The HTTP webhook door: `POST /v1/tickets` with a plain JSON ticket, or a CloudEvent in structured mode
//! (`Content-Type: application/cloudevents+json`, or any JSON body carrying `specversion`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use tracing::Instrument;

use crate::error::IntakeError;
use crate::intake::{Intake, Submitted};
use crate::{json, trace};

const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// Answers 202 `{"ticket_id", "duplicate"}`; 400 `{"error", "field"}` for a rejected submission; 413 for a
/// body over [`IntakeConfig::max_body_bytes`](crate::IntakeConfig::max_body_bytes); 503 when the bus fails.
pub fn http_routes(intake: Arc<Intake>) -> Router {
    let limit = intake.config().max_body_bytes();
    Router::new()
        .route("/v1/tickets", post(submit))
        // The body is buffered whole before parsing: this bounds what one client can make intake hold.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(intake)
}

#[derive(Debug, Serialize)]
struct Accepted {
    ticket_id: String,
    duplicate: bool,
}

// The body is taken as bytes, not as `Json`, so text that is not UTF-8 still gets an answer naming its field.
async fn submit(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let span = trace::request_span("http", &headers);
    async move {
        let body = match body {
            Ok(body) => body,
            Err(rejection) => return unreadable(&intake, &rejection),
        };
        let submitted = match json::parse(&body, is_cloudevent(&headers), None) {
            Ok(submission) => intake.submit(submission).await,
            Err(e) => Err(intake.reject(e)),
        };
        match submitted {
            Ok(Submitted {
                ticket_id,
                duplicate,
            }) => (
                StatusCode::ACCEPTED,
                Json(Accepted {
                    ticket_id,
                    duplicate,
                }),
            )
                .into_response(),
            Err(e) => switchboard_errors::http_response(&e),
        }
    }
    .instrument(span)
    .await
}

/// A body that could not be read: over the size limit (413), or cut off by the client (400).
fn unreadable(intake: &Intake, rejection: &BytesRejection) -> Response {
    let e = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        IntakeError::TooLarge {
            limit: intake.config().max_body_bytes(),
        }
    } else {
        IntakeError::invalid("body", rejection.body_text())
    };
    switchboard_errors::http_response(&intake.reject(e))
}

fn is_cloudevent(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(CLOUDEVENTS_JSON))
}
