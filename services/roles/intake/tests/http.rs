//! The HTTP door, driven through the router in-process with `tower::ServiceExt::oneshot`.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use support::{Fixture, caller, fixture, fixture_with};
use switchboard_accounts::Role;
use switchboard_intake::{IntakeConfig, http_routes};
use tower::ServiceExt;

async fn post(f: &Fixture, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    post_as(f, Role::Connector, content_type, body).await
}

/// Posts as a caller of `role`, as the auth layer in front of the routes would identify one.
async fn post_as(
    f: &Fixture,
    role: Role,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let headers = [(header::CONTENT_TYPE.as_str(), content_type)];
    post_with(f, role, &headers, body).await
}

/// Posts with exactly these headers.
async fn post_with(
    f: &Fixture,
    role: Role,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut request = Request::post("/v1/tickets");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(body.into()).unwrap();
    request.extensions_mut().insert(caller(role));
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
    // Counted at the HTTP door, not at the others.
    assert_eq!(f.submissions("http", "accepted"), Some(1));
    assert_eq!(f.submissions("http", "duplicate"), Some(1));
    assert_eq!(f.submissions("grpc", "accepted"), Some(0));

    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert_eq!(t.id, first["ticket_id"]);
    assert_eq!(t.text, "Card <BANK_CARD_1> was charged twice");
    assert_eq!(t.language, "en");
    assert_eq!(t.thread_id, "th-9");
    assert_eq!(t.attributes["ip"], "<IP_1>");
    assert_eq!(f.published_anywhere().await, 1);
    let state = f
        .work
        .get(&t.id)
        .await
        .unwrap()
        .expect("recorded as received");
    assert_eq!(state.channel, t.channel);
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

/// One event as the CloudEvents Python SDK encodes it for HTTP in `mode` (see `cloudevents/generate.py`).
fn sdk_encoded(mode: &str) -> (Vec<(String, String)>, String) {
    let path = format!(
        "{}/tests/cloudevents/{mode}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let message: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let headers = message["headers"].as_object().unwrap();
    let headers = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (headers, message["body"].as_str().unwrap().to_owned())
}

async fn post_sdk_encoded(f: &Fixture, mode: &str) -> (StatusCode, Value) {
    let (headers, body) = sdk_encoded(mode);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_with(f, Role::Connector, &headers, body).await
}

#[tokio::test]
async fn an_event_in_binary_and_structured_mode_is_one_ticket_either_way_round() {
    for (first_mode, second_mode) in [("binary", "structured"), ("structured", "binary")] {
        let f = fixture().await;
        let (status, first) = post_sdk_encoded(&f, first_mode).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first_mode}: {first}");
        assert_eq!(first["duplicate"], false);
        let (status, second) = post_sdk_encoded(&f, second_mode).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{second_mode}: {second}");
        assert_eq!(
            second,
            json!({"ticket_id": first["ticket_id"], "duplicate": true}),
            "{first_mode} then {second_mode}"
        );

        let tickets = f.received().await;
        assert_eq!(tickets.len(), 1, "{first_mode} first");
        let t = &tickets[0];
        // The event's id (percent-decoded from its ce-id header) and source make the key, its channel
        // extension the channel, its data the ticket.
        assert_eq!(
            t.idempotency_key,
            "https://connectors.example/wecom/evt-42 / résumé"
        );
        assert_eq!(t.channel, "wecom");
        assert_eq!(t.customer_id, "c-9");
        assert_eq!(t.text, "宽带断网三天了，电话 <PHONE_1>");
    }
}

#[tokio::test]
async fn a_binary_mode_event_is_checked_like_a_structured_one() {
    let f = fixture().await;
    let (headers, body) = sdk_encoded("binary");
    let without_id: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k != "ce-id")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, reply) = post_with(&f, Role::Connector, &without_id, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply,
        json!({"error": "invalid id: missing; CloudEvents 1.0 requires it", "field": "id"})
    );
    let all: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, reply) = post_with(&f, Role::Connector, &all, r#"["not", "a ticket"]"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["field"], "body", "{reply}");
    assert!(f.received().await.is_empty());
}

#[tokio::test]
async fn a_body_not_declared_json_is_415() {
    let f = fixture().await;
    let ticket = json!({"text": "VPN drops every hour", "channel": "web"}).to_string();
    let (status, reply) = post(&f, "text/plain", ticket.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        reply["error"],
        "unsupported content type \"text/plain\": send application/json, or application/cloudevents+json for a CloudEvent"
    );
    let (status, reply) = post_with(&f, Role::Connector, &[], ticket.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("unsupported content type (none given)"),
        "{reply}"
    );
    assert!(f.received().await.is_empty());
    // JSON under its own name, with parameters, or as a +json type is read.
    for content_type in [
        "application/json; charset=utf-8",
        "application/vnd.desk+json",
    ] {
        let (status, reply) = post(&f, content_type, ticket.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{content_type}: {reply}");
    }
    assert_eq!(f.received().await.len(), 2);
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
    assert_eq!(f.submissions("http", "rejected"), Some(3));
    assert_eq!(f.submissions("http", "accepted"), Some(0));
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
async fn a_bus_failure_is_503_with_the_cause_and_the_retry_gets_the_claimed_ticket() {
    let f = fixture_with(IntakeConfig::default(), true).await;
    let body = json!({"text": "hi", "channel": "api", "idempotency_key": "k-1"});
    let (status, body) = post_json(&f, body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "publishing the ticket failed: publishing to tickets.received failed: stream unavailable"})
    );
    assert!(!f.rejected("body"));
    assert_eq!(f.submissions("http", "failed"), Some(1));
    assert_eq!(f.submissions("http", "rejected"), Some(0));
    // The key stays claimed for the ticket that may or may not be on the bus: the retry publishes that
    // ticket, rather than a second one.
    assert_eq!(f.idempotency.entries().await.unwrap().len(), 1);
    f.faults.clear();
    let body = json!({"text": "hi", "channel": "api", "idempotency_key": "k-1"});
    let (status, retried) = post_json(&f, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["duplicate"], true);
    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(retried["ticket_id"], tickets[0].id);
}

#[tokio::test]
async fn only_roles_that_submit_may_submit() {
    let f = fixture().await;
    let body = json!({"text": "VPN drops every hour", "channel": "web"}).to_string();
    let (status, reply) = post_as(&f, Role::Viewer, "application/json", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("needs role admin or connector"),
        "{reply}"
    );
    assert_eq!(f.published_anywhere().await, 0);
    let (status, _) = post_as(&f, Role::Admin, "application/json", body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
