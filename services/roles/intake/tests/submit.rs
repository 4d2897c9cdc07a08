//! The shared submission path over the in-memory bus, through each door that does not need a listener:
//! `Intake::submit`, the gRPC service and the NATS handler (alone and under the role runner).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use support::{caller, fixture, fixture_with};
use switchboard_accounts::Role;
use switchboard_bus::{ConsumerSpec, OutMessage};
use switchboard_intake::{
    FIELD_METADATA_KEY, InboundHandler, IntakeConfig, IntakeService, Submission,
};
use switchboard_proto::intake_server::Intake as _;
use switchboard_proto::{DeadLetter, Stage, SubmitRequest, TicketState};
use switchboard_runtime::{
    Handler, HandlerError, Inbound, Publisher, RoleRunner, RunnerOptions, Supervisor,
};
use tonic::{Code, Request};

fn submission(text: &str) -> Submission {
    Submission {
        text: text.as_bytes().to_vec(),
        channel: "web".into(),
        customer_id: "c-42".into(),
        customer_tier: "vip".into(),
        attributes: HashMap::from([("callback".to_owned(), "13987654321".to_owned())]),
        ..Submission::default()
    }
}

#[tokio::test]
async fn a_valid_submission_publishes_one_masked_ticket() {
    let f = fixture().await;
    let text = "  我的手机 13812345678 收不到验证码，\n\n 邮箱 zhang@example.com  ";
    let submitted = f.intake.submit(submission(text)).await.unwrap();
    assert!(!submitted.duplicate);
    assert!(uuid_v7(&submitted.ticket_id), "{}", submitted.ticket_id);

    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert_eq!(t.id, submitted.ticket_id);
    assert_eq!(t.stage(), Stage::Received);
    assert_eq!(t.text, "我的手机 <PHONE_1> 收不到验证码，\n邮箱 <EMAIL_1>");
    assert_eq!(t.language, "zh");
    assert_eq!(t.channel, "web");
    assert_eq!(t.customer_id, "c-42");
    assert_eq!(t.customer_tier, "vip");
    assert_eq!(
        t.thread_id, t.id,
        "a ticket without a thread starts its own"
    );
    assert!(t.received_at_ms > 0);
    // Attribute values are masked with the ticket's numbering.
    assert_eq!(
        t.attributes.get("callback").map(String::as_str),
        Some("<PHONE_2>")
    );
    assert_eq!(
        t.masked,
        HashMap::from([("PHONE".to_owned(), 2), ("EMAIL".to_owned(), 1)])
    );
    assert_eq!(
        f.published_anywhere().await,
        1,
        "nothing else was published"
    );
    // The desk sees it as received before anything decides it, and the move is an event.
    let state = f.work.get(&t.id).await.unwrap().expect("a work state");
    assert_eq!(state.state(), TicketState::Received);
    assert_eq!(
        (state.channel.as_str(), state.received_at_ms),
        ("web", t.received_at_ms)
    );
    assert_eq!(state.history[0].kind, "received");
    assert_eq!(f.transitions().await, 1);
}

#[tokio::test]
async fn a_resubmission_with_the_same_key_returns_the_first_id_and_publishes_nothing() {
    let f = fixture().await;
    let first = Submission {
        idempotency_key: "order-7".into(),
        ..submission("where is my order")
    };
    let a = f.intake.submit(first.clone()).await.unwrap();
    let b = f.intake.submit(first.clone()).await.unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.ticket_id, b.ticket_id);
    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].idempotency_key, "order-7");

    // The key is scoped to its channel.
    let other_channel = Submission {
        channel: "email".into(),
        ..first
    };
    let c = f.intake.submit(other_channel).await.unwrap();
    assert!(!c.duplicate);
    assert_ne!(c.ticket_id, a.ticket_id);
    assert_eq!(f.received().await.len(), 1);
}

#[tokio::test]
async fn an_invalid_submission_publishes_nothing_and_is_counted() {
    let f = fixture().await;
    let invalid = Submission {
        text: b"bad \xff".to_vec(),
        idempotency_key: "k".into(),
        ..submission("")
    };
    let e = f.intake.submit(invalid).await.unwrap_err();
    assert_eq!(e.field(), Some("text"));
    assert_eq!(
        e.to_string(),
        "invalid text: not valid UTF-8: invalid byte at offset 4"
    );
    assert!(f.rejected("text"));
    assert_eq!(f.published_anywhere().await, 0);
    // Nothing was claimed for the rejected submission's key.
    assert_eq!(f.idempotency.entries().await.unwrap().len(), 0);
}

/// A gRPC request from a connector, as the auth layer would identify one.
fn as_connector(request: SubmitRequest) -> Request<SubmitRequest> {
    let mut request = Request::new(request);
    request.extensions_mut().insert(caller(Role::Connector));
    request
}

#[tokio::test]
async fn grpc_needs_a_caller_who_may_submit() {
    let f = fixture().await;
    let service = IntakeService::new(f.intake.clone());
    let req = || SubmitRequest {
        text: "断网了".into(),
        channel: "web".into(),
        ..SubmitRequest::default()
    };
    let status = service.submit(Request::new(req())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut viewer = Request::new(req());
    viewer.extensions_mut().insert(caller(Role::Viewer));
    let status = service.submit(viewer).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(f.published_anywhere().await, 0);
}

#[tokio::test]
async fn grpc_maps_rejections_to_invalid_argument_naming_the_field() {
    let f = fixture().await;
    let service = IntakeService::new(f.intake.clone());
    let bad = SubmitRequest {
        text: b"hi".to_vec(),
        channel: "fax".into(),
        ..SubmitRequest::default()
    };
    let status = service.submit(as_connector(bad)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("invalid channel: \"fax\" is not configured; allowed: web")
    );
    assert_eq!(
        status.metadata().get(FIELD_METADATA_KEY).unwrap(),
        "channel"
    );
    assert!(f.rejected("channel"));

    let ok = SubmitRequest {
        text: "断网了".into(),
        channel: "phone".into(),
        ..SubmitRequest::default()
    };
    let reply = service.submit(as_connector(ok)).await.unwrap().into_inner();
    assert!(!reply.duplicate);
    assert_eq!(f.received().await[0].id, reply.ticket_id);
}

#[tokio::test]
async fn grpc_maps_bus_failures_to_unavailable_with_the_cause() {
    let f = fixture_with(IntakeConfig::default(), true).await;
    let service = IntakeService::new(f.intake.clone());
    let req = SubmitRequest {
        text: b"hi".to_vec(),
        channel: "web".into(),
        ..SubmitRequest::default()
    };
    let status = service.submit(as_connector(req)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().ends_with("stream unavailable"),
        "{}",
        status.message()
    );
}

fn event(id: &str, data: serde_json::Value) -> bytes::Bytes {
    let event = serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "connector/wecom",
        "type": "ticket.created",
        "data": data,
    });
    serde_json::to_vec(&event).unwrap().into()
}

fn inbound(subject: &str, payload: bytes::Bytes, attempt: u64) -> Inbound {
    Inbound {
        subject: subject.into(),
        payload,
        attempt,
    }
}

#[tokio::test]
async fn the_nats_handler_publishes_one_ticket_per_event() {
    let f = fixture().await;
    let handler = InboundHandler::new(f.intake.clone());
    let subject = f.subjects.inbound("wecom");
    let payload = event(
        "e-1",
        serde_json::json!({"text": "我的身份证号11010519491231002X"}),
    );

    let out = handler
        .handle(&inbound(&subject, payload.clone(), 1))
        .await
        .unwrap();
    assert!(out.is_empty(), "the handler publishes its ticket itself");
    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!(ticket.channel, "wecom", "from the subject");
    assert_eq!(ticket.text, "我的身份证号<ID_CARD_1>");
    assert_eq!(ticket.idempotency_key, "connector/wecom/e-1");
    assert_eq!(
        f.work.get(&ticket.id).await.unwrap().unwrap().state(),
        TicketState::Received
    );

    // The connector sends the same event again, and the runner redelivers it: the ticket is on the bus
    // already, so nothing more is published.
    for attempt in [1, 2] {
        let again = handler
            .handle(&inbound(&subject, payload.clone(), attempt))
            .await
            .unwrap();
        assert!(again.is_empty());
    }
    assert!(f.received().await.is_empty());
}

#[tokio::test]
async fn the_nats_handler_rejects_invalid_events_permanently() {
    let f = fixture().await;
    let handler = InboundHandler::new(f.intake.clone());
    let subject = f.subjects.inbound("fax");
    let unknown_channel = event("e-2", serde_json::json!({"text": "hi"}));
    let e = handler
        .handle(&inbound(&subject, unknown_channel, 1))
        .await
        .unwrap_err();
    let HandlerError::Permanent(cause) = e else {
        panic!("expected a permanent error, got {e:?}")
    };
    assert!(
        cause
            .to_string()
            .starts_with("invalid channel: \"fax\" is not configured"),
        "{cause}"
    );

    let not_an_event = bytes::Bytes::from_static(br#"{"text": "hi", "channel": "web"}"#);
    let e = handler
        .handle(&inbound(&f.subjects.inbound("web"), not_an_event, 1))
        .await
        .unwrap_err();
    assert!(matches!(e, HandlerError::Permanent(_)), "{e:?}");
    assert!(f.rejected("channel") && f.rejected("specversion"));
    assert_eq!(f.published_anywhere().await, 0);
}

#[tokio::test]
async fn under_the_runner_events_become_tickets_and_bad_events_dead_letters() {
    let f = fixture().await;
    let (supervisor, _failures) = Supervisor::new();
    let running = RoleRunner {
        role: "intake",
        filter: f.subjects.inbound_all(),
        each_replica_reads_all: false,
        handler: Arc::new(InboundHandler::new(f.intake.clone())),
        publisher: Publisher::new(f.bus.clone()),
        subjects: f.subjects.clone(),
        metrics: f.metrics.clone(),
        options: RunnerOptions::default(),
        signer: None,
    }
    .start(&supervisor)
    .await
    .unwrap();
    let publish = |subject: String, payload: bytes::Bytes| OutMessage {
        subject,
        msg_id: None,
        headers: Default::default(),
        payload,
    };
    let good = event(
        "e-3",
        serde_json::json!({"text": "网页打不开", "channel": "web"}),
    );
    f.bus
        .publish(publish(f.subjects.inbound("web"), good))
        .await
        .unwrap();
    let bad = event("e-4", serde_json::json!({"text": ""}));
    f.bus
        .publish(publish(f.subjects.inbound("chat"), bad))
        .await
        .unwrap();

    let deadletters = f
        .bus
        .consumer(ConsumerSpec {
            durable: "test-deadletters".into(),
            filter: f.subjects.deadletter("intake"),
            ack_wait: Duration::from_secs(30),
        })
        .await
        .unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(5), deadletters.next())
        .await
        .unwrap()
        .unwrap();
    let letter = DeadLetter::decode(letter.payload).unwrap();
    assert_eq!(letter.subject, "tickets.inbound.chat");
    assert!(
        letter.error.contains("invalid text: missing"),
        "{}",
        letter.error
    );

    let mut tickets = Vec::new();
    for _ in 0..50 {
        tickets.extend(f.received().await);
        if !tickets.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].text, "网页打不开");
    running.stop().await;
}

fn uuid_v7(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
}
