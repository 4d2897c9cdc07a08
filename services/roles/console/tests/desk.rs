//! The desk API over real HTTP, behind the real auth layer, on the in-process bus and on a real
//! nats-server (`SWITCHBOARD_TEST_NATS_URL`, default nats://127.0.0.1:4222): each role's boundary, the
//! review queue's order and filters, one reviewer per claim (also when two claim at once), confirm,
//! correct and resolve in one request each with their events and history, and errors that name the
//! field.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_accounts::{Auth, AuthConfig, Role};
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, Consumer, ConsumerSpec};
use switchboard_console::{ConsoleConfig, Desk, Events, routes};
use switchboard_desk::{Change, WORK_BUCKET, WorkStates};
use switchboard_proto::{Corrected, CorrectionReason, Priority, Resolved, TicketState};
use switchboard_runtime::{Publisher, Subjects, buckets, now_ms};

const WAIT: Duration = Duration::from_secs(10);

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

struct Served {
    base: String,
    http: reqwest::Client,
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    work: WorkStates,
    tokens: std::collections::HashMap<&'static str, String>,
}

/// The desk's routes and the accounts API behind the auth layer, as the binary serves them, with a
/// token for each caller the tests play.
async fn serve(bus: Arc<dyn Bus>, subjects: Subjects) -> Served {
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    let work = WorkStates::open(&bus, subjects.clone())
        .await
        .expect("work");
    let desk = Desk::new(
        work.clone(),
        bus.kv(WORK_BUCKET).await.expect("work bucket"),
        bus.kv(buckets::DECISIONS).await.expect("decisions"),
        Publisher::new(bus.clone()),
        subjects.clone(),
        ConsoleConfig::default(),
    );
    let app = routes(desk, Events::default())
        .merge(auth.router())
        .layer(auth.layer());
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
    let mut tokens = std::collections::HashMap::new();
    for (name, role) in [
        ("ana", Role::Agent),
        ("ben", Role::Agent),
        ("vera", Role::Viewer),
        ("conn", Role::Connector),
    ] {
        let token = auth
            .accounts()
            .create_token(name, role)
            .await
            .expect("token")
            .token;
        tokens.insert(name, token);
    }
    Served {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        bus,
        subjects,
        work,
        tokens,
    }
}

impl Served {
    async fn call(
        &self,
        who: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if let Some(who) = who {
            request = request.bearer_auth(&self.tokens[who]);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A ticket the router sent to review (or routed) with a suggested department and priority.
    async fn decided(
        &self,
        id: &str,
        to: TicketState,
        department: &str,
        priority: Priority,
        received_at_ms: i64,
    ) {
        self.work
            .receive(id, "web", received_at_ms)
            .await
            .expect("received");
        self.work
            .apply(
                id,
                Change::new(to, "router", "router")
                    .kind("decided")
                    .department(department)
                    .priority(priority),
            )
            .await
            .expect("decided");
    }

    async fn events(&self, filter: String) -> Arc<dyn Consumer> {
        self.bus
            .consumer(ConsumerSpec {
                durable: unique("events"),
                filter,
                ack_wait: Duration::from_secs(60),
            })
            .await
            .expect("consumer")
    }
}

async fn next_payload(consumer: &dyn Consumer) -> bytes::Bytes {
    let delivery = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("an event in time")
        .expect("next");
    delivery.acker.ack().await.expect("ack");
    delivery.payload
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|s| s["ticket_id"].as_str().expect("ticket_id").to_owned())
        .collect()
}

async fn all_checks(d: Served) {
    let t0 = now_ms() - 3_600_000;
    d.decided(
        "t-1",
        TicketState::InReview,
        "billing",
        Priority::Normal,
        t0,
    )
    .await;
    d.decided(
        "t-2",
        TicketState::InReview,
        "network",
        Priority::Urgent,
        t0 + 60_000,
    )
    .await;
    d.decided(
        "t-3",
        TicketState::InReview,
        "billing",
        Priority::Normal,
        t0 - 60_000,
    )
    .await;
    d.decided("t-4", TicketState::Routed, "billing", Priority::High, t0)
        .await;

    // Who may do what: no credential is 401, a connector may not read, a viewer may read but not work.
    let (status, body) = d.call(None, "GET", "/v1/reviews", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = d.call(Some("conn"), "GET", "/v1/tickets", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("needs role"),
        "{body}"
    );
    let (status, _) = d.call(Some("vera"), "GET", "/v1/reviews", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = d
        .call(Some("vera"), "POST", "/v1/reviews/t-1/claim", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The queue: most urgent first, then longest waiting; filters narrow it.
    let (status, body) = d.call(Some("ana"), "GET", "/v1/reviews", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body["reviews"]), ["t-2", "t-3", "t-1"]);
    let (_, body) = d
        .call(
            Some("ana"),
            "GET",
            "/v1/reviews?department=billing&limit=1",
            None,
        )
        .await;
    assert_eq!(ids(&body["reviews"]), ["t-3"]);
    let (status, body) = d
        .call(Some("ana"), "GET", "/v1/reviews?priority=asap", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "priority", "{body}");

    // Two reviewers claim one ticket at once: exactly one holds it.
    let (a, b) = tokio::join!(
        d.call(Some("ana"), "POST", "/v1/reviews/t-3/claim", None),
        d.call(Some("ben"), "POST", "/v1/reviews/t-3/claim", None),
    );
    let statuses = [a.0, b.0];
    assert!(
        statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let (holder, other) = if a.0 == StatusCode::OK {
        ("ana", "ben")
    } else {
        ("ben", "ana")
    };
    let state = d.work.get("t-3").await.expect("get").expect("state");
    assert_eq!(state.claimed_by, holder);
    assert!(state.claim_expires_at_ms > now_ms());
    // The other cannot confirm it while the claim holds; the error names who holds it.
    let (status, body) = d
        .call(Some(other), "POST", "/v1/tickets/t-3/confirm", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains(holder),
        "{body}"
    );
    // The holder confirms in one request: routed to the suggestion, the claim released.
    let (status, body) = d
        .call(
            Some(holder),
            "POST",
            "/v1/tickets/t-3/confirm",
            Some(json!({"note": "looks right"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "TICKET_STATE_ROUTED");
    assert_eq!(body["department"], "billing");
    assert_eq!(body["claimed_by"], "");
    let (_, history) = d
        .call(Some("vera"), "GET", "/v1/tickets/t-3/history", None)
        .await;
    let kinds: Vec<&str> = history["transitions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["received", "decided", "claimed", "confirmed"]);
    assert_eq!(history["transitions"][3]["actor"], holder);
    assert_eq!(history["transitions"][3]["note"], "looks right");
    let (_, body) = d
        .call(Some("ana"), "GET", "/v1/reviews?available=true", None)
        .await;
    assert_eq!(ids(&body["reviews"]), ["t-2", "t-1"]);

    // A correction names its reason; a bad one is refused naming the field and the valid reasons.
    let (status, body) = d
        .call(
            Some("ana"),
            "POST",
            "/v1/tickets/t-1/correction",
            Some(json!({"department": "refunds", "reason": "because"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "reason");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("responsibility_changed"),
        "{body}"
    );
    let (status, body) = d
        .call(
            Some("ana"),
            "POST",
            "/v1/tickets/t-1/correction",
            Some(json!({"department": " ", "reason": "other"})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("department"))
    );
    let corrected = d.events(d.subjects.corrected()).await;
    let (status, body) = d.call(Some("ana"), "POST", "/v1/tickets/t-1/correction", Some(json!({"department": "refunds", "reason": "policy_updated", "note": "refunds moved"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["department"].as_str()),
        (Some("TICKET_STATE_ROUTED"), Some("refunds"))
    );
    let event = Corrected::decode(next_payload(corrected.as_ref()).await).expect("a correction");
    assert_eq!(
        (
            event.from_department.as_str(),
            event.to_department.as_str(),
            event.agent.as_str()
        ),
        ("billing", "refunds", "ana")
    );
    assert_eq!(event.reason(), CorrectionReason::PolicyUpdated);
    let last = d
        .work
        .get("t-1")
        .await
        .expect("get")
        .expect("state")
        .history
        .pop()
        .expect("a move");
    assert_eq!(
        (last.kind.as_str(), last.cause.clone()),
        ("policy_updated", format!("corrected.{}", event.at_ms))
    );

    // A resolution, once: the second request answers the same state and stores no second event.
    let resolved = d.events(d.subjects.resolved()).await;
    let (status, body) = d
        .call(Some("ben"), "POST", "/v1/tickets/t-1/resolution", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["department"].as_str()),
        (Some("TICKET_STATE_RESOLVED"), Some("refunds"))
    );
    let (status, again) = d
        .call(Some("ben"), "POST", "/v1/tickets/t-1/resolution", None)
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    let event = Resolved::decode(next_payload(resolved.as_ref()).await).expect("a resolution");
    assert_eq!(
        (event.ticket_id.as_str(), event.agent.as_str()),
        ("t-1", "ben")
    );
    assert_eq!(resolved.pending().await.expect("pending"), 0, "stored once");
    // A resolved ticket is not corrected (reopening is a person's act of its own).
    let (status, body) = d
        .call(
            Some("ana"),
            "POST",
            "/v1/tickets/t-1/correction",
            Some(json!({"department": "billing", "reason": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Reopening is the way back, with a reason; only a resolved ticket reopens.
    let (status, body) = d
        .call(
            Some("ben"),
            "POST",
            "/v1/tickets/t-1/reopen",
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    let (status, body) = d
        .call(
            Some("ben"),
            "POST",
            "/v1/tickets/t-1/reopen",
            Some(json!({"reason": "the refund never arrived"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["department"].as_str()),
        (Some("TICKET_STATE_REOPENED"), Some("refunds"))
    );
    let (status, _) = d
        .call(
            Some("ben"),
            "POST",
            "/v1/tickets/t-4/reopen",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a routed ticket is not reopened"
    );
    let (status, _) = d
        .call(
            Some("vera"),
            "POST",
            "/v1/tickets/t-1/reopen",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The ticket list: newest first a page at a time, filtered, and bad filters named.
    let (_, page) = d
        .call(Some("vera"), "GET", "/v1/tickets?limit=3", None)
        .await;
    assert_eq!(ids(&page["tickets"]), ["t-4", "t-3", "t-2"]);
    let cursor = page["next"].as_str().expect("a next page").to_owned();
    let (_, page) = d
        .call(
            Some("vera"),
            "GET",
            &format!("/v1/tickets?limit=3&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(ids(&page["tickets"]), ["t-1"]);
    assert!(page["next"].is_null());
    let (_, page) = d
        .call(
            Some("vera"),
            "GET",
            "/v1/tickets?state=routed&department=billing",
            None,
        )
        .await;
    assert_eq!(ids(&page["tickets"]), ["t-4", "t-3"]);
    let (status, body) = d
        .call(Some("vera"), "GET", "/v1/tickets?limit=100000", None)
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );

    // One ticket: its state (and, once decided, its decision); an unknown one is 404.
    let (status, body) = d.call(Some("vera"), "GET", "/v1/tickets/t-2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"]["priority"], "PRIORITY_URGENT");
    let (status, body) = d.call(Some("vera"), "GET", "/v1/tickets/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_on_the_in_process_bus() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    all_checks(serve(bus, Subjects::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_on_nats() {
    let url = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let run = unique("desk");
    let bus = NatsBus::connect(NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.clone(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.clone(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    })
    .await
    .unwrap_or_else(|err| {
        panic!("no NATS JetStream server at {url} ({err}): start one with scripts/ensure-nats.sh")
    });
    all_checks(serve(Arc::new(bus), Subjects::new(&run)).await).await;
}
