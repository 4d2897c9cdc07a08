//! Rules over HTTP in the running process, on the embedded bus and on a real nats-server: a rule an
//! admin creates with `POST /v1/rules` decides the next ticket, its version is in the history under
//! the admin's name, a preview of deleting it shows that ticket moving back and publishes nothing, and
//! `/openapi.json` and `/v1/stats` serve the router's and metrics' parts, each behind a credential.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_accounts::Role;
use switchboard_proto::SubmitRequest;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_tests::{
    Kind, bus, clean_up, collect_decisions, eventually, grpc, settings, start, token,
};

const WAIT: Duration = Duration::from_secs(60);

async fn a_rule_made_over_http_decides_the_next_ticket(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let running = start(&settings, "all", bus.clone()).await?;
    let admin = token(&bus, Role::Admin).await?;
    let viewer = token(&bus, Role::Viewer).await?;
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    let call =
        |method: reqwest::Method, path: &str, credential: Option<&str>, body: Option<Value>| {
            let mut request = http.request(method, format!("{base}{path}"));
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.expect("send");
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body)
            }
        };

    let rule = json!({"id": "quantum", "keywords": ["quantum"], "department": "device_support",
        "weight": 3, "enabled": true});
    let (status, _) = call(reqwest::Method::POST, "/v1/rules", None, Some(rule.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/rules",
        Some(&viewer),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(reqwest::Method::POST, "/v1/rules", Some(&admin), Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let revision = body["revision"].as_u64().expect("revision");

    // The router replicas follow the bucket; the first ticket after the watch catches up is ruled.
    let mut intake = IntakeClient::new(grpc(&running).await?);
    let mut ruled = None;
    for attempt in 0..50 {
        let id = intake
            .submit(SubmitRequest {
                text: format!("The quantum terminal {attempt} will not print my invoice")
                    .into_bytes(),
                channel: "web".into(),
                ..SubmitRequest::default()
            })
            .await?
            .into_inner()
            .ticket_id;
        eventually(WAIT, "a decision", || {
            let (decisions, id) = (decisions.clone(), id.clone());
            async move { decisions.lock().await.by_ticket.contains_key(&id) }
        })
        .await?;
        let decided = decisions.lock().await.by_ticket[&id].clone();
        let decision = decided.decision.expect("decision");
        if decision.rules.iter().any(|r| r.id == "quantum") {
            assert_eq!(decision.department, "device_support");
            assert!(decision.rules_version >= revision);
            ruled = Some(id);
            break;
        }
    }
    let ruled = ruled.expect("the new rule fired without a restart");

    let (status, history) = call(
        reqwest::Method::GET,
        "/v1/rules/quantum/history",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["versions"][0]["by"], "e2e-tests");
    assert_eq!(history["versions"][0]["revision"].as_u64(), Some(revision));

    let (status, report) = call(
        reqwest::Method::POST,
        "/v1/rules/preview",
        Some(&admin),
        Some(json!({"delete": ["quantum"], "examples": 100})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let examples = report["examples"].as_array().expect("examples");
    let example = examples
        .iter()
        .find(|e| e["ticket_id"] == ruled.as_str())
        .expect("the ruled ticket moves");
    assert_eq!(example["before"]["to"], "device_support");
    assert_ne!(example["after"]["to"], "device_support");
    let (_, still) = call(
        reqwest::Method::GET,
        "/v1/rules/quantum",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(
        still["revision"].as_u64(),
        Some(revision),
        "the preview changed nothing"
    );

    let (status, doc) = call(reqwest::Method::GET, "/openapi.json", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/rules",
        "/v1/rules/preview",
        "/v1/rules/{id}/history",
        "/v1/departments",
        "/v1/stats",
    ] {
        assert!(doc["paths"][path].is_object(), "/openapi.json lacks {path}");
    }
    let (status, stats) = call(reqwest::Method::GET, "/v1/stats", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert!(stats["received"].as_u64().unwrap_or(0) >= 1, "{stats}");

    running.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_bus_rules_over_http() -> anyhow::Result<()> {
    a_rule_made_over_http_decides_the_next_ticket(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_rules_over_http() -> anyhow::Result<()> {
    a_rule_made_over_http_decides_the_next_ticket(Kind::Nats).await
}
