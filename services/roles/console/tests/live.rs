//! The console's own surface over real HTTP behind the real auth layer: its files open to anyone
//! with the Content-Security-Policy, and the live feed, which needs a credential that may read, is
//! opened with the session cookie alone (as a browser's EventSource does) and streams the row of a
//! ticket as soon as its work state changes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use switchboard_accounts::{Auth, AuthConfig, Role};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_console::{ConsoleConfig, Desk, Events, public_paths, routes};
use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_runtime::{Publisher, Subjects, buckets, now_ms};

const WAIT: Duration = Duration::from_secs(10);

struct Served {
    base: String,
    work: WorkStates,
    connector: String,
}

async fn serve(bus: Arc<dyn Bus>) -> Served {
    let subjects = Subjects::default();
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    auth.accounts()
        .add_user("ana", Role::Agent, Some("ana-password-1234"))
        .await
        .expect("user");
    let connector = auth
        .accounts()
        .create_token("form", Role::Connector)
        .await
        .expect("token")
        .token;
    let work_kv = bus.kv(WORK_BUCKET).await.expect("work bucket");
    let decisions = bus.kv(buckets::DECISIONS).await.expect("decisions");
    let work = WorkStates::open(&bus, subjects.clone())
        .await
        .expect("work");
    let desk = Desk::new(
        work.clone(),
        work_kv.clone(),
        decisions.clone(),
        Publisher::new(bus.clone()),
        subjects,
        ConsoleConfig::default(),
    );
    let events = Events::default();
    tokio::spawn(events.clone().feed(desk.clone(), work_kv, decisions));
    let app = routes(desk, events)
        .merge(auth.router())
        .layer(auth.layer().with_open(public_paths()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Served {
        base: format!("http://{addr}"),
        work,
        connector,
    }
}

#[tokio::test]
async fn the_files_are_open_and_carry_the_policy_and_the_data_is_not() {
    let s = serve(Arc::new(MemoryBus::new())).await;
    let http = reqwest::Client::new();
    for path in ["/console/", "/console/js/main.js", "/console/console.css"] {
        let r = http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let policy = r.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{policy}"
        );
    }
    let html = http
        .get(format!("{}/console/", s.base))
        .send()
        .await
        .expect("answer");
    assert!(
        html.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    for path in ["/v1/board", "/v1/events", "/console/missing.js"] {
        let r = http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = http
        .get(format!("{}/v1/events", s.base))
        .bearer_auth(&s.connector)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a connector only submits"
    );
}

/// Reads the stream until an event named `event` arrives, returning its data.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String, event: &str) -> Value {
    let wanted = format!("event: {event}\n");
    loop {
        if let Some(start) = buffer.find(&wanted)
            && let Some(end) = buffer[start..].find("\n\n")
        {
            let block = buffer[start..start + end].to_owned();
            buffer.replace_range(..start + end + 2, "");
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data");
            return serde_json::from_str(data).expect("JSON data");
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {event} event within {WAIT:?}; got {buffer:?}"))
            .expect("stream")
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test]
async fn the_live_feed_opens_with_the_session_cookie_and_streams_each_change() {
    let s = serve(Arc::new(MemoryBus::new())).await;
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/v1/login", s.base))
        .json(&json!({"name": "ana", "password": "ana-password-1234"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    // No Authorization header: only what a browser's EventSource sends.
    let mut stream = http
        .get(format!("{}/v1/events", s.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer, "hello").await;

    let received_at = now_ms();
    s.work
        .receive("t-live-1", "wecom", received_at)
        .await
        .expect("received");
    let row = next_event(&mut stream, &mut buffer, "ticket").await;
    assert_eq!(
        (
            &row["ticket_id"],
            &row["state"],
            &row["channel"],
            &row["received_at_ms"]
        ),
        (
            &json!("t-live-1"),
            &json!("received"),
            &json!("wecom"),
            &json!(received_at)
        )
    );
    assert_eq!(row["outcome"], Value::Null, "not decided yet");
}
