//! `/openapi.json`: the description of every HTTP route a process serves, generated from the code.
//! It needs a credential like every other route, parses as an OpenAPI 3.1 document, names every
//! route this binary serves, and every schema it refers to is in it.

use std::collections::BTreeSet;

use serde_json::Value;
use switchboard_accounts::Role;
use switchboard_tests::{Kind, bus, settings, start, token};

/// Every route a process with all roles serves, but the open operational ones.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/tickets"),
    ("get", "/v1/tickets"),
    ("get", "/v1/board"),
    ("get", "/v1/events"),
    ("get", "/v1/tickets/{id}"),
    ("get", "/v1/tickets/{id}/history"),
    ("post", "/v1/tickets/{id}/confirm"),
    ("post", "/v1/tickets/{id}/correction"),
    ("post", "/v1/tickets/{id}/resolution"),
    ("post", "/v1/tickets/{id}/reopen"),
    ("get", "/v1/reviews"),
    ("post", "/v1/reviews/{id}/claim"),
    ("post", "/v1/login"),
    ("post", "/v1/logout"),
    ("get", "/v1/me"),
    ("get", "/v1/sso"),
    ("get", "/v1/sso/start"),
    ("get", "/v1/sso/callback"),
    ("post", "/v1/sso/redeem"),
    ("get", "/v1/users"),
    ("post", "/v1/users"),
    ("get", "/v1/tokens"),
    ("post", "/v1/tokens"),
    ("get", "/v1/rules"),
    ("post", "/v1/rules"),
    ("get", "/v1/rules/{id}"),
    ("put", "/v1/rules/{id}"),
    ("delete", "/v1/rules/{id}"),
    ("get", "/v1/rules/{id}/history"),
    ("post", "/v1/rules/preview"),
    ("get", "/v1/departments"),
    ("put", "/v1/departments"),
    ("get", "/v1/stats"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{id}"),
    ("put", "/v1/agents/{id}"),
    ("delete", "/v1/agents/{id}"),
    ("post", "/v1/agents/{id}/status"),
    ("get", "/v1/queue"),
    ("post", "/v1/tickets/{id}/assign"),
    ("post", "/v1/tickets/{id}/accept"),
];

/// Every `$ref` anywhere under `value`.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_description_is_openapi_3_1_and_covers_every_route() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(Kind::Memory, &data);
    let bus = bus(&settings).await?;
    let running = start(&settings, "all", bus.clone()).await?;
    let url = format!("http://{}/openapi.json", running.http_addr);
    let http = reqwest::Client::new();

    let anonymous = http.get(&url).send().await?;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let viewer = token(&bus, Role::Viewer).await?;
    let text = http
        .get(&url)
        .bearer_auth(&viewer)
        .send()
        .await?
        .text()
        .await?;

    let parsed = oas3::from_json(&text);
    assert!(parsed.is_ok(), "not an OpenAPI 3.1 document: {parsed:?}");
    let doc: Value = serde_json::from_str(&text)?;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for (method, path) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not described");
        assert!(
            operation["responses"].is_object(),
            "{method} {path} has no responses"
        );
    }
    let mut seen = BTreeSet::new();
    refs(&doc, &mut seen);
    assert!(seen.len() > 10, "schemas are referred to: {seen:?}");
    for r in &seen {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is referred to but not described"
        );
    }
    // The credentials every route takes are described.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert!(schemes.contains_key("bearer"), "{schemes:?}");
    running.shutdown().await;
    Ok(())
}
