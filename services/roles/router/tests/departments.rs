//! The department catalog over HTTP through the real auth layer: admins' descriptions survive the
//! retriever announcing the knowledge base's departments again (the same `announce` it runs at start),
//! departments only rules name are listed beside the catalog, and bad descriptions are refused by field.

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_runtime::departments::announce;

fn listed(page: &Value) -> Vec<(String, String, bool)> {
    page["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["description"].as_str().unwrap().to_owned(),
                d["in_catalog"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn descriptions_survive_the_retrievers_announcements(bus: common::OnBus) {
    let s = common::serve(bus).await;
    announce(
        s.departments.as_ref(),
        ["billing".to_owned(), "refunds".to_owned()],
    )
    .await;
    let (status, page) = s.get("/v1/departments", &s.viewer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        listed(&page),
        [
            ("billing".into(), String::new(), true),
            ("refunds".into(), String::new(), true)
        ]
    );

    // Billing described, and it_desk before the knowledge base knows it.
    let body = json!({"departments": [
        {"id": "billing", "description": " Charges, invoices and payment plans "},
        {"id": "it_desk", "description": "Passwords and accounts"},
    ]});
    let (status, page) = s.send(Method::PUT, "/v1/departments", &s.admin, body).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(listed(&page).len(), 3);

    // The retriever starts again with a knowledge base that knows all three.
    announce(
        s.departments.as_ref(),
        [
            "billing".to_owned(),
            "it_desk".to_owned(),
            "refunds".to_owned(),
        ],
    )
    .await;
    let rule = json!({"keywords": ["loan"], "department": "loans", "weight": 3, "enabled": true});
    let (status, _) = s.send(Method::PUT, "/v1/rules/loan", &s.admin, rule).await;
    assert_eq!(status, StatusCode::OK);

    let (_, page) = s.get("/v1/departments", &s.viewer).await;
    assert_eq!(
        listed(&page),
        [
            (
                "billing".into(),
                "Charges, invoices and payment plans".into(),
                true
            ),
            ("it_desk".into(), "Passwords and accounts".into(), true),
            ("loans".into(), String::new(), false),
            ("refunds".into(), String::new(), true),
        ]
    );
    assert_eq!(page["departments"][2]["rules"], json!(["loan"]));
    // The parser reads the bucket's value as the description: it holds the admin's text.
    let stored = s
        .departments
        .get("billing")
        .await
        .expect("get")
        .expect("billing");
    assert_eq!(&stored.value[..], b"Charges, invoices and payment plans");

    // Paged.
    let (_, first) = s.get("/v1/departments?limit=3", &s.viewer).await;
    assert_eq!(first["next"], "loans");
    let (_, rest) = s
        .get("/v1/departments?limit=3&after=loans", &s.viewer)
        .await;
    assert_eq!(listed(&rest), [("refunds".into(), String::new(), true)]);
}
on_both_buses!(descriptions_survive_the_retrievers_announcements);

async fn a_bad_description_is_refused_naming_its_field(bus: common::OnBus) {
    let s = common::serve(bus).await;
    let cases = [
        (
            json!({"departments": [{"id": "ok", "description": "x"}, {"id": "no spaces", "description": "x"}]}),
            "departments[1].id",
        ),
        (
            json!({"departments": [{"id": "long", "description": "x".repeat(4_001)}]}),
            "departments[0].description",
        ),
        (
            json!({"departments": [{"id": "ok", "text": "x"}]}),
            "departments[0].text",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = s
            .send(Method::PUT, "/v1/departments", &s.admin, body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    assert!(
        s.departments.entries().await.expect("entries").is_empty(),
        "nothing written"
    );
}
on_both_buses!(a_bad_description_is_refused_naming_its_field);
