//! JSON bodies, from HTTP and from NATS: a plain ticket object or a CloudEvent wrapping one. Parsing errors
//! name the field at fault, as validation errors do, so a connector author can fix the right thing.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::cloudevents;
use crate::error::IntakeError;
use crate::validate::Submission;

pub(crate) type Object = Map<String, Value>;

/// The fields of a plain ticket body, which are also the fields of a CloudEvent's `data`.
pub(crate) const TICKET_FIELDS: [&str; 7] = [
    "text",
    "channel",
    "customer_id",
    "thread_id",
    "idempotency_key",
    "customer_tier",
    "attributes",
];

/// Parses a body into a submission. `cloudevent` forces CloudEvents parsing; otherwise a body is one when
/// it carries `specversion`. `channel` is the fallback channel for events that name none.
pub(crate) fn parse(
    body: &[u8],
    cloudevent: bool,
    channel: Option<&str>,
) -> Result<Submission, IntakeError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => return Err(not_utf8(body, cloudevent, e.valid_up_to())),
    };
    let object = object(text)?;
    if cloudevent || object.contains_key("specversion") {
        cloudevents::submission(object, channel)
    } else {
        ticket_fields(object)
    }
}

/// A CloudEvent in HTTP binary content mode: `attributes` from its `ce-*` headers, and the body, which
/// is its `data` (a ticket object), put together as the structured form and parsed as one.
pub(crate) fn parse_binary_event(
    mut attributes: Object,
    body: &[u8],
) -> Result<Submission, IntakeError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // The body holds the ticket fields, as a plain body does.
        Err(e) => return Err(not_utf8(body, false, e.valid_up_to())),
    };
    attributes.insert("data".to_owned(), Value::Object(object(text)?));
    cloudevents::submission(attributes, None)
}

fn object(text: &str) -> Result<Object, IntakeError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(IntakeError::invalid(
            "body",
            format!("must be a JSON object, not {}", kind(&other)),
        )),
        Err(e) => Err(IntakeError::invalid("body", format!("not valid JSON: {e}"))),
    }
}

/// JSON must be UTF-8, so such a body is rejected; but the field holding the bad bytes is the useful
/// answer. Decoded lossily, the bad bytes become U+FFFD, and the field containing one is named.
fn not_utf8(body: &[u8], cloudevent: bool, offset: usize) -> IntakeError {
    let lossy = String::from_utf8_lossy(body);
    let field = match serde_json::from_str::<Value>(&lossy) {
        Ok(Value::Object(object)) => {
            let cloudevent = cloudevent || object.contains_key("specversion");
            field_with_replacement(&object, cloudevent)
        }
        _ => "body",
    };
    IntakeError::invalid(
        field,
        format!("not valid UTF-8: invalid byte at offset {offset} of the body"),
    )
}

fn field_with_replacement(object: &Object, cloudevent: bool) -> &'static str {
    let find = |o: &Object, fields: &[&'static str]| {
        fields
            .iter()
            .copied()
            .find(|f| o.get(*f).is_some_and(has_replacement))
    };
    if !cloudevent {
        return find(object, &TICKET_FIELDS).unwrap_or("body");
    }
    let data = object.get("data").and_then(Value::as_object);
    data.and_then(|d| find(d, &TICKET_FIELDS))
        .or_else(|| find(object, &cloudevents::ATTRIBUTES))
        .or_else(|| {
            object
                .get("data")
                .is_some_and(has_replacement)
                .then_some("data")
        })
        .unwrap_or("body")
}

fn has_replacement(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(char::REPLACEMENT_CHARACTER),
        Value::Array(items) => items.iter().any(has_replacement),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| k.contains(char::REPLACEMENT_CHARACTER) || has_replacement(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The ticket fields of a plain body or of a CloudEvent's `data`; absent and null fields are empty, and
/// unknown fields are ignored so connectors can send more than intake reads.
pub(crate) fn ticket_fields(mut o: Object) -> Result<Submission, IntakeError> {
    Ok(Submission {
        text: string(&mut o, "text")?.into_bytes(),
        channel: string(&mut o, "channel")?,
        customer_id: identifier(&mut o, "customer_id")?,
        thread_id: identifier(&mut o, "thread_id")?,
        idempotency_key: identifier(&mut o, "idempotency_key")?,
        customer_tier: identifier(&mut o, "customer_tier")?,
        attributes: attributes(&mut o)?,
    })
}

pub(crate) fn string(o: &mut Object, field: &'static str) -> Result<String, IntakeError> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(IntakeError::invalid(
            field,
            format!("must be a string, not {}", kind(&other)),
        )),
    }
}

/// Identifiers may come as numbers: many systems number their customers and threads.
fn identifier(o: &mut Object, field: &'static str) -> Result<String, IntakeError> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(IntakeError::invalid(
            field,
            format!("must be a string or a number, not {}", kind(&other)),
        )),
    }
}

/// Attributes are a flat string map on the ticket; scalar values are accepted and written as text.
fn attributes(o: &mut Object) -> Result<HashMap<String, String>, IntakeError> {
    let entries = match o.remove("attributes") {
        None | Some(Value::Null) => return Ok(HashMap::new()),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            return Err(IntakeError::invalid(
                "attributes",
                format!("must be an object, not {}", kind(&other)),
            ));
        }
    };
    let mut out = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        let value = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(IntakeError::invalid(
                    "attributes",
                    format!(
                        "value of {key:?} must be a string, number or boolean, not {}",
                        kind(&other)
                    ),
                ));
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(body: &[u8]) -> (&'static str, String) {
        let e = parse(body, false, None).unwrap_err();
        (e.field().unwrap_or_default(), e.to_string())
    }

    #[test]
    fn plain_body() {
        let body = br#"{"text": "hi", "channel": "web", "customer_id": 42, "thread_id": "t",
            "idempotency_key": "k", "customer_tier": "vip", "attributes": {"a": "x", "n": 1, "b": true, "z": null},
            "unknown": [1, 2]}"#;
        let s = parse(body, false, Some("ignored")).unwrap();
        assert_eq!(s.text, b"hi");
        assert_eq!(s.channel, "web");
        assert_eq!(s.customer_id, "42");
        assert_eq!(s.thread_id, "t");
        assert_eq!(s.idempotency_key, "k");
        assert_eq!(s.customer_tier, "vip");
        let mut attributes: Vec<_> = s.attributes.into_iter().collect();
        attributes.sort();
        assert_eq!(
            attributes,
            [
                ("a".into(), "x".into()),
                ("b".into(), "true".into()),
                ("n".into(), "1".into())
            ]
        );
    }

    #[test]
    fn missing_fields_are_empty_for_validation_to_name() {
        assert_eq!(parse(b"{}", false, None).unwrap(), Submission::default());
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        assert_eq!(
            rejection(b"[1]"),
            (
                "body",
                "invalid body: must be a JSON object, not an array".into()
            )
        );
        let (field, msg) = rejection(b"{\"text\": ");
        assert_eq!(field, "body");
        assert!(msg.starts_with("invalid body: not valid JSON: "), "{msg}");
        assert_eq!(
            rejection(br#"{"text": 5}"#),
            (
                "text",
                "invalid text: must be a string, not a number".into()
            )
        );
        assert_eq!(rejection(br#"{"channel": ["web"]}"#).0, "channel");
        assert_eq!(rejection(br#"{"customer_id": {}}"#).0, "customer_id");
        assert_eq!(rejection(br#"{"attributes": "x"}"#).0, "attributes");
        assert_eq!(rejection(br#"{"attributes": {"a": [1]}}"#).0, "attributes");
    }

    #[test]
    fn invalid_utf8_names_the_field_holding_it() {
        assert_eq!(
            rejection(b"{\"channel\": \"web\", \"text\": \"caf\xe9\"}"),
            (
                "text",
                "invalid text: not valid UTF-8: invalid byte at offset 31 of the body".into()
            )
        );
        assert_eq!(
            rejection(b"{\"text\": \"ok\", \"customer_id\": \"\xff\"}").0,
            "customer_id"
        );
        assert_eq!(
            rejection(b"{\"text\": \"ok\", \"attributes\": {\"k\": \"\xff\"}}").0,
            "attributes"
        );
        // Not in any field we read, or not parseable at all: the body is at fault.
        assert_eq!(
            rejection(b"{\"text\": \"ok\", \"note\": \"\xff\"}").0,
            "body"
        );
        assert_eq!(rejection(b"{\"text\": \"ok\xff").0, "body");
    }

    #[test]
    fn invalid_utf8_in_a_cloudevent() {
        let body = b"{\"specversion\": \"1.0\", \"id\": \"1\", \"source\": \"s\", \"type\": \"t\", \"data\": {\"text\": \"\xff\"}}";
        assert_eq!(parse(body, false, None).unwrap_err().field(), Some("text"));
        let body = b"{\"specversion\": \"1.0\", \"id\": \"\xff\", \"source\": \"s\", \"type\": \"t\", \"data\": {}}";
        assert_eq!(parse(body, true, None).unwrap_err().field(), Some("id"));
    }
}
