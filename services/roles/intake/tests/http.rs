//! The HTTP door, driven through the router in-process with `tower::ServiceExt::oneshot`.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use support::{Fixture, fixture, fixture_with};
use switchboard_intake::{IntakeConfig, http_routes};
use tower::ServiceExt;

async fn post(f: &Fixture, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let request = Request::post("/v1/tickets")
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap();
    let response = http_routes(f.intake.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post_json(f: &Fixture, body: Value) -> (StatusCode, Value) {
    post(f, "application/json", body.to_string()).await
}

#[tokio::test]
async fn plain_json_is_accepted_once_per_idempotency_key() {
    let f = fixture().await;
    let body = json!({
        "text": "Card 4111 1111 1111 1111 was charged twice",
        "channel": "web",
        "customer_id": "c-1",
        "thread_id": "th-9",
        "idempotency_key": "req-1",
        "customer_tier": "gold",
        "attributes": {"ip": "203.0.113.7"}
    });
    let (status, first) = post_json(&f, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, second) = post_json(&f, body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        second,
        json!({"ticket_id": first["ticket_id"], "duplicate": true})
    );

    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert_eq!(t.id, first["ticket_id"]);
    assert_eq!(t.text, "Card <BANK_CARD_1> was charged twice");
    assert_eq!(t.language, "en");
    assert_eq!(t.thread_id, "th-9");
    assert_eq!(t.attributes["ip"], "<IP_1>");
    assert_eq!(f.published_anywhere().await, 1);
}

#[tokio::test]
async fn cloudevents_in_structured_mode() {
    let f = fixture().await;
    let event = json!({
        "specversion": "1.0",
        "id": "evt-1",
        "source": "connector/dingtalk",
        "type": "ticket.created",
        "channel": "dingtalk",
        "data": {"text": "审批流程卡住了", "customer_id": "u-1"}
    });
    let (status, first) = post(
        &f,
        "application/cloudevents+json; charset=utf-8",
        event.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // Sent again (as plain JSON, recognised by `specversion`): source/id make it the same event.
    let (status, again) = post_json(&f, event).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        again,
        json!({"ticket_id": first["ticket_id"], "duplicate": true})
    );

    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].channel, "dingtalk");
    assert_eq!(tickets[0].idempotency_key, "connector/dingtalk/evt-1");
    assert_eq!(tickets[0].language, "zh");
}

#[tokio::test]
async fn rejections_are_400_naming_the_field() {
    let f = fixture().await;
    let (status, body) = post_json(&f, json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "channel");
    assert_eq!(
        body["error"],
        "invalid channel: missing; allowed: web, email, chat, wecom, dingtalk, phone, api"
    );

    let event = json!({"specversion": "1.0", "source": "s", "type": "t", "data": {"text": "hi"}});
    let (status, body) = post(&f, "application/cloudevents+json", event.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "id");

    let (status, body) = post(&f, "application/json", "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "body");

    assert!(f.rejected("channel") && f.rejected("id") && f.rejected("body"));
    assert_eq!(f.published_anywhere().await, 0);
    assert!(f.received().await.is_empty());
}

#[tokio::test]
async fn text_that_is_not_utf8_is_named_even_though_the_body_is_not_json() {
    let f = fixture().await;
    let body = b"{\"channel\": \"web\", \"text\": \"caf\xe9 au lait\"}".to_vec();
    let (status, body) = post(&f, "application/json", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid text: not valid UTF-8: invalid byte at offset 31 of the body", "field": "text"})
    );
}

#[tokio::test]
async fn text_over_the_limit_is_400_and_a_body_over_the_cap_is_413() {
    let config = IntakeConfig {
        max_text_bytes: 100,
        ..IntakeConfig::default()
    };
    let cap = config.max_body_bytes();
    let f = fixture_with(config, false).await;

    let (status, body) = post_json(&f, json!({"text": "x".repeat(101), "channel": "web"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "invalid text: 101 bytes, over the limit of 100 bytes"
    );

    let (status, body) = post_json(&f, json!({"text": "x".repeat(cap), "channel": "web"})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["field"], "body");
    assert_eq!(
        body["error"],
        format!("invalid body: over the limit of {cap} bytes")
    );
    assert_eq!(f.published_anywhere().await, 0);
}

#[tokio::test]
async fn a_bus_failure_is_503_with_the_cause_and_claims_no_key() {
    let f = fixture_with(IntakeConfig::default(), true).await;
    let body = json!({"text": "hi", "channel": "api", "idempotency_key": "k-1"});
    let (status, body) = post_json(&f, body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "publishing the ticket failed: publishing to tickets.received failed: stream unavailable"})
    );
    assert!(f.idempotency.entries().await.unwrap().is_empty());
    assert!(!f.rejected("body"));
}
