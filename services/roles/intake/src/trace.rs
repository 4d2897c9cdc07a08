//! Joining the caller's trace, so a client that sends `traceparent` finds intake and every later stage in
//! its own trace, as the bus carries the context on from here.

use axum::http::HeaderMap;
use switchboard_bus::Headers;
use switchboard_runtime::telemetry;
use tracing::Span;

/// W3C trace-context headers; gRPC carries them as metadata under the same names.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The span one request is handled in, a child of the caller's trace when it sent one.
pub(crate) fn request_span(door: &'static str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!("intake.submit", door);
    let context: Headers = TRACE_HEADERS
        .into_iter()
        .filter_map(|name| {
            Some((
                name.to_owned(),
                headers.get(name)?.to_str().ok()?.to_owned(),
            ))
        })
        .collect();
    telemetry::set_parent_from_headers(&span, &context);
    span
}
