//! Property tests of the decoding every door's bytes go through (plain JSON, CloudEvents in structured
//! and in binary mode): whatever a client sends, decoding returns, and a rejection names a field intake
//! reads with a message saying what is wrong with it; and one ticket reads the same in all three forms.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::cloudevents::{self, ATTRIBUTES};
use crate::error::IntakeError;
use crate::json::{self, TICKET_FIELDS};

/// Every field a decoding error may name.
fn known_field(field: &str) -> bool {
    ["body", "data"].contains(&field)
        || TICKET_FIELDS.contains(&field)
        || ATTRIBUTES.contains(&field)
}

/// The error names a known field and says more than its name.
fn names_the_problem(e: &IntakeError) -> Result<(), String> {
    let field = e.field().ok_or_else(|| format!("no field: {e}"))?;
    let prefix = format!("invalid {field}: ");
    let message = e.to_string();
    if !known_field(field) || !message.starts_with(&prefix) || message.len() <= prefix.len() + 3 {
        return Err(format!("{field:?}: {message}"));
    }
    Ok(())
}

/// Keys intake reads, mixed with others it ignores.
fn key() -> impl Strategy<Value = String> {
    let known: Vec<&str> = TICKET_FIELDS.iter().chain(&ATTRIBUTES).copied().collect();
    prop_oneof![
        3 => prop::sample::select(known).prop_map(str::to_owned),
        1 => Just("data".to_owned()),
        1 => "[a-z_]{1,8}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,16}".prop_map(Value::String),
        Just(Value::String("1.0".into())),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Percent-encodes as the CloudEvents HTTP binding (and its SDKs) do: everything but printable ASCII
/// other than space, `"` and `%`.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            0x21..=0x7e if b != b'"' && b != b'%' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn any_bytes_decode_or_name_the_problem(
        body in prop::collection::vec(any::<u8>(), 0..256),
        cloudevent: bool,
    ) {
        if let Err(e) = json::parse(&body, cloudevent, Some("web")) {
            prop_assert!(names_the_problem(&e).is_ok(), "{:?}", names_the_problem(&e));
        }
    }

    #[test]
    fn any_json_object_decodes_or_names_the_problem(
        object in prop::collection::btree_map(key(), value(), 0..8),
        cloudevent: bool,
    ) {
        let body = serde_json::to_vec(&object).unwrap();
        if let Err(e) = json::parse(&body, cloudevent, None) {
            prop_assert!(names_the_problem(&e).is_ok(), "{:?}", names_the_problem(&e));
        }
    }

    #[test]
    fn any_binary_mode_event_decodes_or_names_the_problem(
        attributes in prop::collection::btree_map(
            prop::sample::select(ATTRIBUTES.to_vec()),
            prop::collection::vec(0x20u8..0x7f, 0..24),
            0..6,
        ),
        data in value(),
    ) {
        let mut headers = HeaderMap::new();
        for (attribute, raw) in &attributes {
            headers.insert(
                axum::http::HeaderName::try_from(format!("ce-{attribute}")).unwrap(),
                HeaderValue::from_bytes(raw).unwrap(),
            );
        }
        let body = serde_json::to_vec(&data).unwrap();
        let decoded = cloudevents::binary_attributes(&headers)
            .and_then(|attributes| json::parse_binary_event(attributes, &body));
        if let Err(e) = decoded {
            prop_assert!(names_the_problem(&e).is_ok(), "{:?}", names_the_problem(&e));
        }
    }

    #[test]
    fn a_ticket_reads_the_same_plain_structured_and_binary(
        text in "\\PC{1,40}",
        channel in "[a-z]{1,8}",
        customer_id in "[a-zA-Z0-9-]{0,8}",
        id in "\\PC{1,16}",
        source in "\\PC{1,24}",
    ) {
        let ticket = json!({"text": text, "channel": channel, "customer_id": customer_id});
        let plain = json::parse(ticket.to_string().as_bytes(), false, None).unwrap();
        prop_assert_eq!(plain.text.as_slice(), text.as_bytes());

        let event = json!({"specversion": "1.0", "id": id, "source": source, "type": "t", "data": ticket});
        let structured = json::parse(event.to_string().as_bytes(), true, None).unwrap();
        let mut expected = plain.clone();
        expected.idempotency_key = format!("{source}/{id}");
        prop_assert_eq!(&structured, &expected);

        let mut headers = HeaderMap::new();
        for (name, value) in [("ce-specversion", "1.0"), ("ce-id", &id), ("ce-source", &source), ("ce-type", "t")] {
            headers.insert(name, HeaderValue::try_from(percent_encode(value)).unwrap());
        }
        let attributes = cloudevents::binary_attributes(&headers).unwrap();
        let binary = json::parse_binary_event(attributes, ticket.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&binary, &expected);
    }
}

#[test]
fn the_encoder_above_matches_the_sdk() {
    // The Python SDK's encoding of this id, from tests/cloudevents/binary.json.
    assert_eq!(
        percent_encode("evt-42 / résumé"),
        "evt-42%20/%20r%C3%A9sum%C3%A9"
    );
}
