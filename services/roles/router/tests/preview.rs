//! The what-if preview over decided tickets in the `decisions` bucket, through the real auth layer: a
//! proposed rule moves the decisions it decides and no others, a threshold moves the unsure ones, the
//! window leaves old decisions out, and nothing is written.

#[macro_use]
mod common;

use bytes::Bytes;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_proto::{Decision, Matches, Outcome, SimilarTicket, Ticket};
use switchboard_runtime::now_ms;

const HOUR_MS: i64 = 3_600_000;

/// A ticket decided `ago_ms` before now, whose similar tickets are `(department, score)`, with the
/// decision the live rules (none) gave it.
fn decided(
    id: &str,
    text: &str,
    similar: &[(&str, f32)],
    routed_to: Option<&str>,
    ago_ms: i64,
) -> Ticket {
    let mut decision = Decision {
        department: routed_to.unwrap_or_default().to_owned(),
        decided_at_ms: now_ms() - ago_ms,
        ..Decision::default()
    };
    decision.set_outcome(if routed_to.is_some() {
        Outcome::Routed
    } else {
        Outcome::Review
    });
    Ticket {
        id: id.to_owned(),
        text: text.to_owned(),
        matches: Some(Matches {
            similar: similar
                .iter()
                .enumerate()
                .map(|(i, (department, score))| SimilarTicket {
                    id: format!("{id}-s{i}"),
                    department: (*department).to_owned(),
                    score: *score,
                    ..SimilarTicket::default()
                })
                .collect(),
            ..Matches::default()
        }),
        decision: Some(decision),
        ..Ticket::default()
    }
}

async fn seed(s: &common::Served) {
    let tickets = [
        // A rule on "refund" takes this one from billing.
        decided(
            "t-refund",
            "I want a refund for order <PHONE_1>",
            &[("billing", 1.0)],
            Some("billing"),
            HOUR_MS,
        ),
        // Nothing a proposed rule names: stays.
        decided(
            "t-login",
            "cannot log in",
            &[("billing", 1.0)],
            Some("billing"),
            HOUR_MS,
        ),
        // Nothing similar: review, unless a rule names a department.
        decided(
            "t-password",
            "password reset please",
            &[],
            None,
            2 * HOUR_MS,
        ),
        // Billing at 0.6: routed at the default threshold, not at 0.7.
        decided(
            "t-split",
            "invoice question",
            &[("billing", 0.6), ("refunds", 0.4)],
            Some("billing"),
            3 * HOUR_MS,
        ),
        // Decided 30 days ago: outside a 7-day window.
        decided(
            "t-old",
            "refund from last month",
            &[("billing", 1.0)],
            Some("billing"),
            30 * 24 * HOUR_MS,
        ),
    ];
    for ticket in tickets {
        s.decisions
            .put(&ticket.id, Bytes::from(ticket.encode_to_vec()))
            .await
            .expect("seed a decision");
    }
}

fn moves(report: &Value) -> Vec<(String, String, u64)> {
    report["moves"]
        .as_array()
        .expect("moves")
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().into(),
                m["to"].as_str().unwrap().into(),
                m["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn a_proposed_rule_moves_only_the_decisions_it_decides(bus: common::OnBus) {
    let s = common::serve(bus).await;
    seed(&s).await;
    let proposal = json!({"put": [
        {"id": "refunds", "keywords": ["refund"], "department": "refunds", "weight": 3, "enabled": true},
        {"id": "passwords", "keywords": ["password"], "department": "it_desk", "weight": 3, "enabled": true},
    ]});
    let (status, report) = s
        .send(Method::POST, "/v1/rules/preview", &s.admin, proposal)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["days"], 7);
    assert_eq!(
        report["replayed"], 4,
        "t-old is outside the window: {report}"
    );
    assert_eq!(report["changed"], 2, "{report}");
    assert_eq!(
        (report["left_out"].as_u64(), report["unreadable"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        report["recorded_differs"], 0,
        "the live replay matches what was recorded: {report}"
    );
    let mut seen = moves(&report);
    seen.sort();
    assert_eq!(
        seen,
        [
            ("billing".into(), "refunds".into(), 1),
            ("review".into(), "it_desk".into(), 1)
        ]
    );
    let examples = report["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 2);
    let refund = examples
        .iter()
        .find(|e| e["ticket_id"] == "t-refund")
        .expect("t-refund");
    assert_eq!(refund["text"], "I want a refund for order <PHONE_1>");
    assert_eq!(
        (&refund["before"]["to"], &refund["after"]["to"]),
        (&json!("billing"), &json!("refunds"))
    );
    assert_eq!(refund["after"]["rules"], json!(["refunds"]));
    assert_eq!(refund["before"]["rules"], json!([]));

    // Nothing published: no rule was written.
    assert!(s.rules.entries().await.expect("rules").is_empty());

    // A threshold alone moves the unsure decision to review and no other.
    let (status, report) = s
        .send(
            Method::POST,
            "/v1/rules/preview",
            &s.admin,
            json!({"threshold": 0.7}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["changed"], 1, "{report}");
    assert_eq!(moves(&report), [("billing".into(), "review".into(), 1)]);
    assert_eq!(report["examples"][0]["ticket_id"], "t-split");

    // A longer window reaches t-old, and `examples` bounds the examples, not the counts.
    let body = json!({"days": 60, "examples": 1, "put": [
        {"id": "refunds", "keywords": ["refund"], "department": "refunds", "weight": 3, "enabled": true}]});
    let (_, report) = s
        .send(Method::POST, "/v1/rules/preview", &s.admin, body)
        .await;
    assert_eq!(
        (report["replayed"].as_u64(), report["changed"].as_u64()),
        (Some(5), Some(2)),
        "{report}"
    );
    assert_eq!(report["examples"].as_array().unwrap().len(), 1);
}
on_both_buses!(a_proposed_rule_moves_only_the_decisions_it_decides);

async fn the_live_rules_are_the_before(bus: common::OnBus) {
    let s = common::serve(bus).await;
    seed(&s).await;
    let live =
        json!({"keywords": ["refund"], "department": "refunds", "weight": 3, "enabled": true});
    let (status, _) = s
        .send(Method::PUT, "/v1/rules/refunds", &s.admin, live)
        .await;
    assert_eq!(status, StatusCode::OK);
    let version = s
        .rules
        .get("refunds")
        .await
        .expect("get")
        .expect("the rule")
        .revision;

    // Deleting the live rule would send t-refund back to billing; the recorded decisions predate it.
    let (status, report) = s
        .send(
            Method::POST,
            "/v1/rules/preview",
            &s.admin,
            json!({"delete": ["refunds"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(moves(&report), [("refunds".into(), "billing".into(), 1)]);
    assert_eq!(report["recorded_differs"], 1, "{report}");

    // The whole set given: empty is the same as deleting every rule.
    let (_, whole) = s
        .send(
            Method::POST,
            "/v1/rules/preview",
            &s.admin,
            json!({"rules": []}),
        )
        .await;
    assert_eq!(moves(&whole), moves(&report));

    let entry = s
        .rules
        .get("refunds")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(entry.revision, version, "the preview changed nothing");
}
on_both_buses!(the_live_rules_are_the_before);

async fn a_bad_proposal_is_refused_naming_its_field(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let weightless = json!({"id": "r", "keywords": ["x"], "department": "d", "weight": 0});
    let cases = [
        (json!({"days": 0}), "days"),
        (json!({"days": 365}), "days"),
        (json!({"threshold": 1.5}), "threshold"),
        (json!({"examples": 1000}), "examples"),
        (
            json!({"put": [{"id": "ok", "keywords": ["x"], "department": "d", "weight": 1}, weightless]}),
            "put[1].weight",
        ),
        (json!({"rules": [], "delete": ["a"]}), "rules"),
        (
            json!({"rules": [{"id": "r", "keywords": [], "department": "d", "weight": 1}]}),
            "rules[0].keywords",
        ),
        (json!({"dayz": 3}), "dayz"),
    ];
    for (body, field) in cases {
        let (status, answer) = s
            .send(Method::POST, "/v1/rules/preview", &s.admin, body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, answer) = s
        .send(
            Method::POST,
            "/v1/rules/preview",
            &s.admin,
            json!({"delete": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}
on_both_buses!(a_bad_proposal_is_refused_naming_its_field);
