//! Admission by backlog: over `intake.max_backlog`, the HTTP and gRPC doors answer 503 and
//! `UNAVAILABLE` with when to retry, the NATS door still takes what waits in its stream, and the gate
//! opens again once the queue drains.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use support::{caller, fixture};
use switchboard_accounts::Role;
use switchboard_bus::ConsumerSpec;
use switchboard_intake::{Backlog, InboundHandler, IntakeService, Submission, http_routes};
use switchboard_proto::intake_server::Intake as _;
use switchboard_proto::{Stage, SubmitRequest};
use switchboard_runtime::{Handler, Inbound};
use tonic::Code;
use tower::ServiceExt;

fn submission(text: &str) -> Submission {
    Submission {
        text: text.as_bytes().to_vec(),
        channel: "web".into(),
        ..Submission::default()
    }
}

#[tokio::test]
async fn over_the_bound_http_and_grpc_say_when_to_retry_and_the_queue_door_still_takes_events() {
    let f = fixture().await;
    // The first role of the pipeline, as its runner would bind it.
    let parser = f
        .bus
        .consumer(ConsumerSpec {
            durable: "parser".into(),
            filter: f.subjects.stage(Stage::Received),
            ack_wait: Duration::from_secs(30),
        })
        .await
        .unwrap();
    let durables = ["parser".to_owned()];
    let gate = Arc::new(Backlog::new(1, Duration::from_millis(2500)));
    let intake = Arc::new(f.another_intake().with_backlog(gate.clone()));

    // Within the bound (by the last reading) tickets are accepted, even past it.
    intake.submit(submission("第一张")).await.unwrap();
    intake.submit(submission("第二张")).await.unwrap();
    gate.read(f.bus.as_ref(), &durables).await.unwrap();

    let mut request = Request::post("/v1/tickets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"text": "第三张", "channel": "web"}).to_string(),
        ))
        .unwrap();
    request.extensions_mut().insert(caller(Role::Connector));
    let response = http_routes(intake.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "3", "rounded up");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "the pipeline is behind: 2 tickets wait for parser, over intake.max_backlog = 1; retry in 3 s"})
    );
    assert_eq!(f.submissions("http", "overloaded"), Some(1));

    let mut request = tonic::Request::new(SubmitRequest {
        text: "第四张".into(),
        channel: "web".into(),
        ..SubmitRequest::default()
    });
    request.extensions_mut().insert(caller(Role::Connector));
    let status = IntakeService::new(intake.clone())
        .submit(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.metadata().get("retry-after").unwrap(), "3");
    assert_eq!(f.submissions("grpc", "overloaded"), Some(1));

    // An inbound event already waits in a durable stream: refusing it would only spend its
    // deliveries, so that door is not gated.
    let event = json!({
        "specversion": "1.0",
        "id": "e-1",
        "source": "connector/chat",
        "type": "ticket.created",
        "data": {"text": "从队列来的"},
    })
    .to_string();
    let inbound = Inbound {
        subject: f.subjects.inbound("chat"),
        payload: event.into(),
        attempt: 1,
    };
    InboundHandler::new(intake.clone())
        .handle(&inbound)
        .await
        .expect("the NATS door takes the event");
    assert_eq!(f.submissions("nats", "accepted"), Some(1));

    // The parser works through its queue; at the next reading the gate opens.
    for _ in 0..3 {
        parser.next().await.unwrap().acker.ack().await.unwrap();
    }
    gate.read(f.bus.as_ref(), &durables).await.unwrap();
    let accepted = intake.submit(submission("第五张")).await.unwrap();
    assert!(!accepted.duplicate);
    let texts: Vec<String> = f.received().await.into_iter().map(|t| t.text).collect();
    assert_eq!(
        texts,
        ["第一张", "第二张", "从队列来的", "第五张"],
        "exactly the accepted tickets are on the bus"
    );
    f.clean_up().await;
}
