//! Rule suggestions mined from a knowledge base, through the real auth layer: listed with their
//! precision and support, accepted by an admin only, the accepted one an ordinary rule that decides
//! tickets (seen in the preview) and is suggested no more; the hot keywords per department; bad
//! parameters named; and a process without a knowledge base saying so.

#[macro_use]
mod common;

use bytes::Bytes;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_knowledge::KnowledgeBase;
use switchboard_proto::{Decision, KnowledgeRecord, Matches, Outcome, Ticket};
use switchboard_runtime::now_ms;

/// 13 tickets with 验证码, 12 of them to auth; 10 refunds to billing; 4 with "password" split 2–2.
async fn history() -> common::History {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = KnowledgeBase::open(dir.path(), None, 0.3).expect("open the knowledge base");
    let mut records = Vec::new();
    let mut add = |n: usize, text: &str, department: &str| {
        for _ in 0..n {
            records.push(KnowledgeRecord {
                id: format!("h-{}", records.len()),
                text: text.to_owned(),
                department: department.to_owned(),
                ..KnowledgeRecord::default()
            });
        }
    };
    add(12, "手机收不到验证码", "auth");
    add(1, "支付验证码问题", "billing");
    add(10, "refund not received", "billing");
    add(2, "password expired", "auth");
    add(2, "password for the invoice portal", "billing");
    kb.upsert(records).await.expect("upsert the history");
    common::History { kb, dir }
}

fn suggestion<'a>(page: &'a Value, keyword: &str) -> Option<&'a Value> {
    page["suggestions"]
        .as_array()
        .expect("suggestions")
        .iter()
        .find(|s| s["keyword"] == keyword)
}

/// A ticket in review with nothing similar: only a rule can route it.
async fn seed_review(s: &common::Served, id: &str, text: &str) {
    let mut decision = Decision {
        decided_at_ms: now_ms() - 60_000,
        ..Decision::default()
    };
    decision.set_outcome(Outcome::Review);
    let ticket = Ticket {
        id: id.to_owned(),
        text: text.to_owned(),
        matches: Some(Matches::default()),
        decision: Some(decision),
        ..Ticket::default()
    };
    s.decisions
        .put(id, Bytes::from(ticket.encode_to_vec()))
        .await
        .expect("seed a decision");
}

async fn an_admin_accepts_a_mined_rule_and_it_decides(bus: common::OnBus) {
    let s = common::serve_with_history(bus, Some(history().await)).await;

    let (status, page) = s.get("/v1/rules/suggestions", &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["tickets"], 27);
    let code = suggestion(&page, "验证码").expect("验证码 is suggested");
    assert_eq!(code["department"], "auth");
    assert_eq!(
        (code["support"].as_u64(), code["tickets"].as_u64()),
        (Some(13), Some(12))
    );
    // serde_json reads floats to within a unit in the last place.
    assert!(
        (code["precision"].as_f64().unwrap() - 12.0 / 13.0).abs() < 1e-12,
        "{code}"
    );
    assert_eq!(code["summary"], "验证码 → auth: 92% of 13 tickets");
    assert_eq!(
        code["elsewhere"],
        json!([{"department": "billing", "tickets": 1}])
    );
    assert_eq!(code["examples"][0]["text"], "手机收不到验证码");
    assert_eq!(code["examples"][3]["department"], "billing");
    assert!(suggestion(&page, "refund").is_some(), "{page}");
    // 2 of 4 tickets, and too few of them.
    assert!(suggestion(&page, "password").is_none(), "{page}");

    let (status, billing) = s
        .get("/v1/rules/suggestions?department=billing", &s.viewer)
        .await;
    assert_eq!(status, StatusCode::OK, "{billing}");
    assert!(
        billing["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["department"] == "billing")
    );
    assert!(suggestion(&billing, "refund").is_some(), "{billing}");

    let accept = "/v1/rules/suggestions/%E9%AA%8C%E8%AF%81%E7%A0%81/accept";
    for who in [&s.viewer, &s.agent] {
        let (status, body) = s.call(Method::POST, accept, Some(who), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = s.call(Method::POST, accept, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, rules) = s.get("/v1/rules", &s.viewer).await;
    assert_eq!(rules["rules"], json!([]), "a refused accept wrote nothing");

    let (status, saved) = s.call(Method::POST, accept, Some(&s.admin), None).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let rule = &saved["rule"];
    let id = rule["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (&rule["keywords"], &rule["department"]),
        (&json!(["验证码"]), &json!("auth"))
    );
    assert_eq!(
        (rule["weight"].as_f64(), &rule["enabled"]),
        (Some(1.0), &json!(true))
    );
    // An ordinary rule: listed, with its version kept by the admin who accepted it.
    let (status, history) = s.get(&format!("/v1/rules/{id}/history"), &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["versions"][0]["by"], "alice");

    // Covered now, the keyword and the longer ones containing it are suggested no more.
    let (_, page) = s.get("/v1/rules/suggestions", &s.viewer).await;
    assert!(suggestion(&page, "验证码").is_none(), "{page}");
    assert!(suggestion(&page, "收不到验证码").is_none(), "{page}");
    let (status, body) = s.call(Method::POST, accept, Some(&s.admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(&format!("rule {id:?} already fires")),
        "{body}"
    );

    // The live rule decides: a ticket in review goes to auth with it, back to review without it.
    seed_review(&s, "t-code", "验证码一直收不到怎么办").await;
    let (status, report) = s
        .send(
            Method::POST,
            "/v1/rules/preview",
            &s.admin,
            json!({"delete": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let example = &report["examples"][0];
    assert_eq!(example["ticket_id"], "t-code", "{report}");
    assert_eq!(example["before"]["to"], "auth", "{report}");
    assert_eq!(example["before"]["rules"], json!([id]), "{report}");
    assert_eq!(example["after"]["to"], "review", "{report}");
}
on_both_buses!(an_admin_accepts_a_mined_rule_and_it_decides);

async fn hot_keywords_and_bad_parameters(bus: common::OnBus) {
    let s = common::serve_with_history(bus, Some(history().await)).await;

    let (status, hot) = s
        .get("/v1/stats/keywords?department=auth&limit=3", &s.agent)
        .await;
    assert_eq!(status, StatusCode::OK, "{hot}");
    let auth = &hot["departments"][0];
    assert_eq!(auth["department"], "auth");
    let keywords = auth["keywords"].as_array().expect("keywords");
    assert_eq!(keywords.len(), 3, "{hot}");
    // 12 of 12 for 手机, 收不到 and their pairs, above 验证码's 12 of 13.
    assert!(
        keywords
            .iter()
            .all(|k| k["tickets"] == 12 && k["share"] == 1.0),
        "{hot}"
    );
    let (_, all) = s.get("/v1/stats/keywords", &s.viewer).await;
    let departments: Vec<&str> = all["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .map(|d| d["department"].as_str().unwrap())
        .collect();
    assert_eq!(departments, ["auth", "billing"]);

    for (path, field) in [
        ("/v1/rules/suggestions?limit=0", "limit"),
        ("/v1/rules/suggestions?department=nobody", "department"),
        ("/v1/stats/keywords?limit=1000", "limit"),
        ("/v1/stats/keywords?department=nobody", "department"),
    ] {
        let (status, body) = s.get(path, &s.viewer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/rules/suggestions/nothing/accept",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a recurring word"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/rules/suggestions/password/accept",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("min_support"),
        "{body}"
    );
}
on_both_buses!(hot_keywords_and_bad_parameters);

async fn without_a_knowledge_base_it_says_so(bus: common::OnBus) {
    let s = common::serve(bus).await;
    for path in ["/v1/rules/suggestions", "/v1/stats/keywords"] {
        let (status, body) = s.get(path, &s.viewer).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("no knowledge base"),
            "{body}"
        );
    }
}
on_both_buses!(without_a_knowledge_base_it_says_so);
