//! The assign role's routes over real HTTP behind the real auth layer, on each bus: who may do what
//! (an agent reads their own record and sets their own status; supervisors see all and assign by hand;
//! admins manage agents), bad input answered with the field named, and a hand assignment within
//! capacity recorded with who and why.

mod support;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_accounts::{Auth, AuthConfig, Role};
use switchboard_assign::{AssignConfig, routes};
use switchboard_bus::Bus;
use switchboard_runtime::{Subjects, now_ms};

use support::*;

struct Served {
    base: String,
    http: reqwest::Client,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Served {
    async fn call(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        }
        .bearer_auth(&self.tokens[who]);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn agent_json(id: &str, capacity: u32) -> Value {
    json!({
        "id": id, "name": id.to_uppercase(), "departments": ["hr"], "skills": {"leave": 3},
        "tier": "L2", "capacity": capacity, "status": "online",
        "shift": {"time_zone": "+08:00", "hours": "mon-sun 00:00-24:00"}
    })
}

async fn every_route_checks_who_asks(bus: Arc<dyn Bus>, subjects: Subjects) {
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    let assigner = assigner(&bus, &subjects, AssignConfig::default()).await;
    let app = routes(assigner.clone())
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
        ("sam", Role::Supervisor),
        ("root", Role::Admin),
    ] {
        let token = auth
            .accounts()
            .create_token(name, role)
            .await
            .expect("token")
            .token;
        tokens.insert(name, token);
    }
    let s = Served {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        tokens,
    };

    // Managing agents is an admin's.
    let (status, _) = s
        .call("sam", "PUT", "/v1/agents/ana", Some(agent_json("ana", 1)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for id in ["ana", "ben"] {
        let (status, body) = s
            .call(
                "root",
                "PUT",
                &format!("/v1/agents/{id}"),
                Some(agent_json(id, 1)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Bad input names its field.
    let mut bad = agent_json("ana", 1);
    bad["skills"]["leave"] = json!(7);
    let (status, body) = s.call("root", "PUT", "/v1/agents/ana", Some(bad)).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("skills.leave")),
        "{body}"
    );
    let mut bad = agent_json("ana", 1);
    bad["tier"] = json!("L9");
    let (status, body) = s.call("root", "PUT", "/v1/agents/ana", Some(bad)).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("tier")),
        "{body}"
    );
    let (status, body) = s
        .call("root", "PUT", "/v1/agents/ana", Some(agent_json("ben", 1)))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id")),
        "{body}"
    );

    // An agent reads and sets their own, not another's; a supervisor reads all.
    let (status, body) = s.call("ana", "GET", "/v1/agents/ana", None).await;
    assert_eq!(
        (status, body["agent"]["capacity"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    assert_eq!(
        s.call("ana", "GET", "/v1/agents/ben", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call("ana", "GET", "/v1/agents", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = s.call("sam", "GET", "/v1/agents", None).await;
    assert_eq!(
        (status, body["agents"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let away = Some(json!({"status": "away"}));
    assert_eq!(
        s.call("ana", "POST", "/v1/agents/ben/status", away.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = s.call("ana", "POST", "/v1/agents/ana/status", away).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("away")),
        "{body}"
    );
    let (status, body) = s
        .call(
            "ana",
            "POST",
            "/v1/agents/ana/status",
            Some(json!({"status": "gone"})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status")),
        "{body}"
    );

    // Assigning by hand is a supervisor's, within the agent's capacity, recorded with who and why.
    let work = work_states(&bus, &subjects).await;
    // t-1 came in through the intake ten minutes ago.
    let received = now_ms() - 10 * 60_000;
    work.receive("t-1", "web", received)
        .await
        .expect("received");
    decide(&bus, &work, "t-1", "hr", "leave", "").await;
    decide(&bus, &work, "t-2", "hr", "leave", "").await;
    let by_hand = |agent: &str| Some(json!({"agent": agent, "reason": "knows this customer"}));
    assert_eq!(
        s.call("ana", "POST", "/v1/tickets/t-1/assign", by_hand("ben"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = s
        .call("sam", "POST", "/v1/tickets/t-1/assign", by_hand("ben"))
        .await;
    assert_eq!(
        (status, body["assignee"].as_str()),
        (StatusCode::OK, Some("ben")),
        "{body}"
    );
    let last = &body["history"]
        .as_array()
        .expect("history")
        .last()
        .cloned()
        .expect("a move");
    assert_eq!(
        (last["actor"].as_str(), last["reason"].as_str()),
        (Some("sam"), Some("by sam: knows this customer"))
    );
    // The agent's record says which ticket to start first and by when: a normal ticket within the
    // default 60 minutes of its arrival.
    let (status, agent) = s.call("sam", "GET", "/v1/agents/ben", None).await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    assert_eq!(agent["work_order"], json!(["t-1"]), "{agent}");
    assert_eq!(
        agent["load"]["tickets"]["t-1"]["start_by_ms"].as_i64(),
        Some(received + 60 * 60_000),
        "{agent}"
    );
    let (status, body) = s
        .call("sam", "POST", "/v1/tickets/t-2/assign", by_hand("ben"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"].as_str(),
        Some("agent ben holds 1 of 1 tickets")
    );
    let (status, body) = s
        .call(
            "sam",
            "POST",
            "/v1/tickets/t-2/assign",
            Some(json!({"agent": "ben"})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason")),
        "{body}"
    );
    let (status, body) = s
        .call(
            "sam",
            "POST",
            "/v1/tickets/t-2/assign",
            Some(json!({"agent": "ben", "reason": " "})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason")),
        "{body}"
    );
    assert_eq!(
        s.call("sam", "POST", "/v1/tickets/t-2/assign", by_hand("zed"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Only the assignee picks a ticket up.
    assert_eq!(
        s.call("ana", "POST", "/v1/tickets/t-1/accept", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call("root", "DELETE", "/v1/agents/ana", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call("root", "DELETE", "/v1/agents/ana", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = s.call("sam", "GET", "/v1/queue", None).await;
    assert_eq!(
        (status, body["waiting"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_process_bus() {
    every_route_checks_who_asks(memory_pair().remove(0), Subjects::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats() {
    let run = unique("assignhttp");
    let bus = nats_pair(&run).await.remove(0);
    let outcome = AssertUnwindSafe(every_route_checks_who_asks(bus, Subjects::new(run.clone())))
        .catch_unwind()
        .await;
    clean_up(&run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
