//! The HTTP webhook door: `POST /v1/tickets` with a plain JSON ticket, or a CloudEvent in structured mode
//! (`Content-Type: application/cloudevents+json`, or any JSON body carrying `specversion`) or in binary
//! mode (`ce-*` headers, the ticket as a JSON body). A body not declared JSON gets 415.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use switchboard_accounts::{Capability, Principal};
use switchboard_runtime::metrics::submission;
use tracing::Instrument;

use crate::error::IntakeError;
use crate::intake::{Intake, Submitted};
use crate::validate::Submission;
use crate::{cloudevents, json, trace};

const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// Answers 202 `{"ticket_id", "duplicate"}`; 400 `{"error", "field"}` for a rejected submission; 413 for a
/// body over [`IntakeConfig::max_body_bytes`](crate::IntakeConfig::max_body_bytes); 415 for a body not
/// declared JSON; 503 when the bus fails.
pub fn http_routes(intake: Arc<Intake>) -> Router {
    let limit = intake.config().max_body_bytes();
    Router::new()
        .route("/v1/tickets", post(submit))
        // The body is buffered whole before parsing: this bounds what one client can make intake hold.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(intake)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Accepted {
    ticket_id: String,
    /// The idempotency key was seen before: `ticket_id` is the first submission's.
    duplicate: bool,
}

/// The body `POST /v1/tickets` takes, as documentation: the body is parsed by hand (`json::parse`) so
/// that a wrong type or invalid UTF-8 gets an error naming its field, which a derived parser would not
/// give. A CloudEvent (structured mode) carries the same object as its `data`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TicketSubmission {
    /// The customer's words; personal data in it is masked before it moves on.
    text: String,
    /// One of `intake.channels` (web, email, chat, wecom, dingtalk, phone by default).
    channel: String,
    customer_id: Option<String>,
    thread_id: Option<String>,
    /// A resubmission with the same key (per channel) returns the first ticket's id.
    idempotency_key: Option<String>,
    customer_tier: Option<String>,
    /// String, number or boolean values.
    attributes: Option<std::collections::HashMap<String, serde_json::Value>>,
}

/// The intake's HTTP door for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(submit), components(schemas(Accepted, TicketSubmission)))]
pub struct IntakeApi;

// The body is taken as bytes, not as `Json`, so text that is not UTF-8 still gets an answer naming its field.
#[utoipa::path(post, path = "/v1/tickets", tag = "intake",
    request_body(content = TicketSubmission, content_type = "application/json",
        description = "a ticket, or a CloudEvent 1.0 in structured mode (application/cloudevents+json) or binary mode (ce-* headers, the ticket as the body)"),
    responses((status = 202, body = Accepted),
        (status = 400, description = "a rejected field, named"),
        (status = 413, description = "over intake.max_body_bytes"),
        (status = 415, description = "the body is not declared JSON"),
        (status = 503, description = "the bus failed, or the pipeline is behind (intake.max_backlog); send it again after Retry-After when given")))]
async fn submit(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = principal.require(Capability::Submit) {
        return e.into_response();
    }
    let span = trace::request_span("http", &headers);
    async move {
        let submitted = match (json_content_type(&headers), body) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(rejection)) => Err(unreadable(&intake, &rejection)),
            (Ok(()), Ok(body)) => match parse(&headers, &body) {
                Ok(submission) => intake.submit(submission).await,
                Err(e) => Err(intake.reject(e)),
            },
        };
        intake.count(submission::HTTP, &submitted);
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
fn unreadable(intake: &Intake, rejection: &BytesRejection) -> IntakeError {
    let e = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        IntakeError::TooLarge {
            limit: intake.config().max_body_bytes(),
        }
    } else {
        IntakeError::invalid("body", rejection.body_text())
    };
    intake.reject(e)
}

/// The body's encoding, from the headers: a structured CloudEvent, a binary-mode one, or a plain ticket
/// (which is still read as an event when it carries `specversion`).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Submission, IntakeError> {
    if media_type(headers).is_some_and(|t| t.eq_ignore_ascii_case(CLOUDEVENTS_JSON)) {
        json::parse(body, true, None)
    } else if cloudevents::is_binary(headers) {
        json::parse_binary_event(cloudevents::binary_attributes(headers)?, body)
    } else {
        json::parse(body, false, None)
    }
}

/// JSON is `application/json` or any `application/<something>+json` (RFC 6839), CloudEvents' included.
fn json_content_type(headers: &HeaderMap) -> Result<(), IntakeError> {
    let is_json = media_type(headers).is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
    });
    if is_json {
        return Ok(());
    }
    let got = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Err(IntakeError::UnsupportedMediaType { got })
}

/// The media type without its parameters (`; charset=utf-8`).
fn media_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}
