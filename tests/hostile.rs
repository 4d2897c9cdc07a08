//! The running process's listeners against hostile clients, as wired from the settings: a gRPC message
//! over the size limit gets RESOURCE_EXHAUSTED, a body not declared JSON 415, half-sent request heads
//! are closed after `http.header_read_timeout_secs` while others are answered, and a credential past
//! `auth.requests_per_second` is refused on both doors.

use std::time::{Duration, Instant};

use switchboard_accounts::Role;
use switchboard_proto::SubmitRequest;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_tests::{Kind, bus, grpc_at, settings, start, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listeners_hold_against_hostile_clients() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut settings = settings(Kind::Memory, &data);
    settings.http.header_read_timeout_secs = 2;
    settings.auth.requests_per_second = 1;
    settings.auth.request_burst = 4;
    let bus = bus(&settings).await?;
    let running = start(&settings, "intake", bus.clone()).await?;
    let connector = token(&bus, Role::Connector).await?;
    let mut intake = IntakeClient::new(grpc_at(running.grpc_addr, &connector).await?);

    // 1 of the credential's 4: a message over the limit is RESOURCE_EXHAUSTED, not OUT_OF_RANGE.
    let oversized = SubmitRequest {
        text: vec![b'x'; settings.intake.max_body_bytes() + 1],
        channel: "web".into(),
        ..SubmitRequest::default()
    };
    let status = intake.submit(oversized).await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("message length too large"),
        "{status:?}"
    );

    // 2 of 4: a ticket sent as text/plain is 415.
    let http = reqwest::Client::new();
    let tickets = format!("http://{}/v1/tickets", running.http_addr);
    let answer = http
        .post(&tickets)
        .bearer_auth(&connector)
        .header("content-type", "text/plain")
        .body(r#"{"text": "VPN drops", "channel": "web"}"#)
        .send()
        .await?;
    assert_eq!(answer.status(), reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 3 and 4 of 4, then refused on both doors.
    for text in ["VPN drops every hour", "Printer on floor 3 is offline"] {
        let ticket = SubmitRequest {
            text: text.into(),
            channel: "web".into(),
            ..SubmitRequest::default()
        };
        intake.submit(ticket).await?;
    }
    let ticket = SubmitRequest {
        text: "the fifth within a second".into(),
        channel: "web".into(),
        ..SubmitRequest::default()
    };
    let status = intake.submit(ticket).await.expect_err("over the rate");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("too many requests from \"e2e-tests\"")
    );
    let answer = http
        .post(&tickets)
        .bearer_auth(&connector)
        .json(&serde_json::json!({"text": "and over HTTP", "channel": "web"}))
        .send()
        .await?;
    assert_eq!(answer.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.headers().contains_key("retry-after"));

    // Half-sent heads hold no one up (an open path answers beside them) and are closed after the head
    // deadline.
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(running.http_addr).await?;
        stream
            .write_all(b"POST /v1/tickets HTTP/1.1\r\nHost: sb\r\n")
            .await?;
        slow.push(stream);
    }
    let health = http
        .get(format!("http://{}/healthz", running.http_addr))
        .timeout(Duration::from_secs(1))
        .send()
        .await?;
    assert!(health.status().is_success());
    for stream in &mut slow {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("closed by the server")
            .ok();
    }
    assert!(opened.elapsed() >= Duration::from_secs(2));

    running.shutdown().await;
    Ok(())
}
