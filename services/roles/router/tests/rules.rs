//! The rules over HTTP through the real auth layer: create, read, replace and delete, every version
//! kept with who and when, optimistic concurrency, concurrent saves, validation naming the field, and
//! the role each route needs.

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn rule(department: &str) -> Value {
    json!({"keywords": ["refund", "退款"], "department": department, "weight": 3, "enabled": true})
}

async fn rules_are_edited_with_every_version_kept(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let mut created = rule("billing");
    created["id"] = json!("refund");
    let (status, body) = s
        .send(Method::POST, "/v1/rules", &s.admin, created.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["revision"].as_u64().expect("revision");
    assert_eq!(body["rule"]["department"], "billing");

    let (status, body) = s.send(Method::POST, "/v1/rules", &s.admin, created).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("exists"), "{body}");

    let (status, body) = s.get("/v1/rules/refund", &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["revision"].as_u64(), &body["rule"]["department"]),
        (Some(first), &json!("billing"))
    );

    // Replaced as read: allowed; replaced again at the same, now stale, revision: refused and kept.
    let path = format!("/v1/rules/refund?expected_revision={first}");
    let (status, body) = s
        .send(Method::PUT, &path, &s.other_admin, rule("refunds"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["revision"].as_u64().expect("revision");
    let (status, body) = s.send(Method::PUT, &path, &s.admin, rule("payments")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, body) = s.get("/v1/rules/refund", &s.viewer).await;
    assert_eq!(
        body["rule"]["department"], "refunds",
        "the stale write changed nothing"
    );

    // Two admins saving at the same moment: both writes land, and both are in the history.
    let (a, b) = tokio::join!(
        s.send(Method::PUT, "/v1/rules/refund", &s.admin, rule("cards")),
        s.send(
            Method::PUT,
            "/v1/rules/refund",
            &s.other_admin,
            rule("loans")
        ),
    );
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.1,
        b.1
    );
    let (third, fourth) = (
        a.1["revision"].as_u64().unwrap(),
        b.1["revision"].as_u64().unwrap(),
    );

    let (status, body) = s
        .call(Method::DELETE, "/v1/rules/refund", Some(&s.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deleted = body["revision"].as_u64().expect("revision");
    let (status, _) = s.get("/v1/rules/refund", &s.viewer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The whole history outlives the rule, newest first.
    let (status, body) = s.get("/v1/rules/refund/history", &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Vec<(u64, String, String, String)> = body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["revision"].as_u64().unwrap(),
                v["action"].as_str().unwrap().to_owned(),
                v["by"].as_str().unwrap().to_owned(),
                v["rule"]["department"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut concurrent = vec![
        (
            third,
            "put".to_owned(),
            "alice".to_owned(),
            "cards".to_owned(),
        ),
        (
            fourth,
            "put".to_owned(),
            "bob".to_owned(),
            "loans".to_owned(),
        ),
    ];
    concurrent.sort_by_key(|v| std::cmp::Reverse(v.0));
    let last_standing = concurrent[0].3.clone();
    let mut expected = vec![(
        deleted,
        "delete".to_owned(),
        "alice".to_owned(),
        last_standing,
    )];
    expected.extend(concurrent);
    expected.push((second, "put".into(), "bob".into(), "refunds".into()));
    expected.push((first, "put".into(), "alice".into(), "billing".into()));
    assert_eq!(seen, expected);
    assert!(body["versions"][0]["at_ms"].as_i64().unwrap() > 0);

    // Paged: two at a time, continuing before the last revision seen.
    let (_, page) = s.get("/v1/rules/refund/history?limit=2", &s.viewer).await;
    assert_eq!(page["versions"].as_array().unwrap().len(), 2);
    let before = page["next"].as_u64().expect("a next page");
    let (_, rest) = s
        .get(
            &format!("/v1/rules/refund/history?limit=2&before={before}"),
            &s.viewer,
        )
        .await;
    let revisions = |page: &Value| -> Vec<u64> {
        page["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["revision"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(revisions(&rest), [expected[2].0, second]);
    let before = rest["next"].as_u64().expect("a last page");
    let (_, last) = s
        .get(
            &format!("/v1/rules/refund/history?limit=2&before={before}"),
            &s.viewer,
        )
        .await;
    assert_eq!(revisions(&last), [first]);
    assert!(last["next"].is_null(), "{last}");

    let (status, _) = s.get("/v1/rules/never/history", &s.viewer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_buses!(rules_are_edited_with_every_version_kept);

async fn many_concurrent_saves_lose_no_version(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let saves = (0..8).map(|i| {
        let token = if i % 2 == 0 { &s.admin } else { &s.other_admin };
        s.send(
            Method::PUT,
            "/v1/rules/vip",
            token,
            rule(&format!("desk{i}")),
        )
    });
    let answers = futures::future::join_all(saves).await;
    let mut revisions: Vec<u64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["revision"].as_u64().unwrap()
        })
        .collect();
    revisions.sort_unstable();
    let (_, body) = s.get("/v1/rules/vip/history", &s.viewer).await;
    let mut recorded: Vec<u64> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["revision"].as_u64().unwrap())
        .collect();
    recorded.reverse();
    assert_eq!(recorded, revisions, "every save once, in revision order");
}
on_both_buses!(many_concurrent_saves_lose_no_version);

async fn rules_are_listed_in_bounded_pages(bus: common::OnBus) {
    let s = common::serve(bus).await;
    for id in ["a", "b", "c"] {
        let (status, body) = s
            .send(
                Method::PUT,
                &format!("/v1/rules/{id}"),
                &s.admin,
                rule("billing"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, page) = s.get("/v1/rules?limit=2", &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids = |page: &Value| -> Vec<String> {
        page["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page), ["a", "b"]);
    assert_eq!(page["next"], "b");
    let (_, rest) = s.get("/v1/rules?limit=2&after=b", &s.viewer).await;
    assert_eq!(ids(&rest), ["c"]);
    assert!(rest["next"].is_null());
    assert!(rest["version"].as_u64().unwrap() >= 3);

    let (status, body) = s.get("/v1/rules?limit=5000", &s.viewer).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("limit")),
        "{body}"
    );
}
on_both_buses!(rules_are_listed_in_bounded_pages);

async fn a_bad_rule_is_refused_naming_its_field(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let mut weightless = rule("billing");
    weightless["weight"] = json!(0);
    let cases = [
        (Method::PUT, "/v1/rules/a", weightless, "weight"),
        (
            Method::PUT,
            "/v1/rules/a",
            json!({"keywords": [" "], "department": "billing", "weight": 1}),
            "keywords",
        ),
        (
            Method::PUT,
            "/v1/rules/a",
            json!({"keywords": ["x"], "department": "", "weight": 1}),
            "department",
        ),
        (
            Method::PUT,
            "/v1/rules/a",
            json!({"id": "b", "keywords": ["x"], "department": "d", "weight": 1}),
            "id",
        ),
        (
            Method::POST,
            "/v1/rules",
            json!({"id": "bad id", "keywords": ["x"], "department": "d", "weight": 1}),
            "id",
        ),
        (
            Method::PUT,
            "/v1/rules/a",
            json!({"keywords": ["x"], "department": "d", "weight": "heavy"}),
            "weight",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = s.send(method, path, &s.admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert!(
        s.rules.entries().await.expect("entries").is_empty(),
        "nothing written"
    );
}
on_both_buses!(a_bad_rule_is_refused_naming_its_field);

async fn every_route_needs_a_credential_and_its_role(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let (status, _) = s
        .send(Method::PUT, "/v1/rules/a", &s.admin, rule("billing"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let reads = [
        "/v1/rules",
        "/v1/rules/a",
        "/v1/rules/a/history",
        "/v1/departments",
    ];
    let writes: [(Method, &str, Value); 5] = [
        (
            Method::POST,
            "/v1/rules",
            json!({"id": "b", "keywords": ["x"], "department": "d", "weight": 1}),
        ),
        (Method::PUT, "/v1/rules/a", rule("refunds")),
        (Method::DELETE, "/v1/rules/a", json!(null)),
        (Method::POST, "/v1/rules/preview", json!({})),
        (
            Method::PUT,
            "/v1/departments",
            json!({"departments": [{"id": "billing", "description": "x"}]}),
        ),
    ];
    for path in reads {
        let (status, _) = s.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}");
        let (status, body) = s.get(path, &s.connector).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "GET {path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("viewer"),
            "names the roles: {body}"
        );
        assert_eq!(s.get(path, &s.viewer).await.0, StatusCode::OK, "GET {path}");
    }
    for (method, path, body) in writes {
        let (status, _) = s.call(method.clone(), path, None, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        for token in [&s.viewer, &s.agent] {
            let (status, answer) = s.send(method.clone(), path, token, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("needs role admin;"),
                "{answer}"
            );
        }
    }
    let (_, body) = s.get("/v1/rules/a", &s.viewer).await;
    assert_eq!(
        body["rule"]["department"], "billing",
        "no refused write changed it"
    );
}
on_both_buses!(every_route_needs_a_credential_and_its_role);
