//! CloudEvents 1.0, the envelope connectors wrap tickets in: structured mode (the JSON event format),
//! and HTTP binary mode (context attributes in `ce-*` headers, `data` as the body), which is assembled
//! into the structured form so that both take one path and an event gets one idempotency key whichever
//! way it was sent. Intake reads what it needs and no more: the required context attributes, the
//! `channel` extension attribute, and `data`, whose fields are those of a plain ticket body.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::error::IntakeError;
use crate::json::{self, Object, kind};
use crate::validate::Submission;

/// The context attributes intake reads, in the order their problems are reported.
pub(crate) const ATTRIBUTES: [&str; 5] = ["specversion", "id", "source", "type", "channel"];

/// The ticket a CloudEvent carries. The channel is `data.channel`, else the event's `channel` extension,
/// else `fallback_channel` (the subject token on NATS). The idempotency key is `data.idempotency_key`, else
/// `source/id`: CloudEvents makes that pair unique per event, so a connector resending an event is
/// recognised as a duplicate.
pub(crate) fn submission(
    mut event: Object,
    fallback_channel: Option<&str>,
) -> Result<Submission, IntakeError> {
    let specversion = required(&mut event, "specversion")?;
    if specversion != "1.0" {
        return Err(IntakeError::invalid(
            "specversion",
            format!("{specversion:?} is not supported; only \"1.0\" is"),
        ));
    }
    let id = required(&mut event, "id")?;
    let source = required(&mut event, "source")?;
    required(&mut event, "type")?;
    let extension_channel = json::string(&mut event, "channel")?;
    if event.contains_key("data_base64") {
        return Err(IntakeError::invalid(
            "data",
            "data_base64 is not supported; send the ticket fields as a JSON object in data",
        ));
    }
    let data = match event.remove("data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => {
            return Err(IntakeError::invalid(
                "data",
                "missing; the ticket fields travel in data, a JSON object",
            ));
        }
        Some(other) => {
            return Err(IntakeError::invalid(
                "data",
                format!("must be a JSON object, not {}", kind(&other)),
            ));
        }
    };
    let mut submission = json::ticket_fields(data)?;
    if submission.channel.trim().is_empty() {
        submission.channel = if extension_channel.trim().is_empty() {
            fallback_channel.unwrap_or_default().to_owned()
        } else {
            extension_channel
        };
    }
    if submission.idempotency_key.trim().is_empty() {
        submission.idempotency_key = format!("{source}/{id}");
    }
    Ok(submission)
}

/// The context attributes of a CloudEvent in HTTP binary content mode: the `ce-<name>` header of each
/// attribute intake reads, percent-decoded as the HTTP binding requires (the SDKs encode spaces,
/// quotes, `%` and non-ASCII text that way).
pub(crate) fn binary_attributes(headers: &HeaderMap) -> Result<Object, IntakeError> {
    let mut event = Object::new();
    for attribute in ATTRIBUTES {
        let Some(value) = headers.get(format!("ce-{attribute}")) else {
            continue;
        };
        let value = percent_decode(value.as_bytes()).ok_or_else(|| {
            IntakeError::invalid(
                attribute,
                format!("the ce-{attribute} header is not percent-encoded UTF-8"),
            )
        })?;
        event.insert(attribute.to_owned(), Value::String(value));
    }
    Ok(event)
}

/// Whether the headers carry a binary-mode CloudEvent: the binding says `ce-specversion` marks one.
pub(crate) fn is_binary(headers: &HeaderMap) -> bool {
    headers.contains_key("ce-specversion")
}

fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let [high, low] = tail.get(..2)? else {
                return None;
            };
            let digit = |d: u8| char::from(d).to_digit(16);
            out.push(u8::try_from(digit(*high)? * 16 + digit(*low)?).ok()?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

fn required(event: &mut Object, attribute: &'static str) -> Result<String, IntakeError> {
    let value = json::string(event, attribute)?;
    if value.is_empty() {
        return Err(IntakeError::invalid(
            attribute,
            "missing; CloudEvents 1.0 requires it",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(value: Value) -> Object {
        match value {
            Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    fn valid() -> Value {
        json!({
            "specversion": "1.0",
            "id": "evt-1",
            "source": "https://connectors.example/wecom",
            "type": "com.example.ticket.created",
            "time": "2024-03-15T10:30:00Z",
            "datacontenttype": "application/json",
            "data": {"text": "宽带断网", "customer_id": "c-1"}
        })
    }

    fn rejection(value: Value, fallback: Option<&str>) -> (&'static str, String) {
        let e = submission(event(value), fallback).unwrap_err();
        (e.field().unwrap_or_default(), e.to_string())
    }

    #[test]
    fn ticket_fields_come_from_data() {
        let mut value = valid();
        value["data"]["channel"] = json!("wecom");
        let s = submission(event(value), None).unwrap();
        assert_eq!(s.text, "宽带断网".as_bytes());
        assert_eq!(s.customer_id, "c-1");
        assert_eq!(s.channel, "wecom");
        assert_eq!(s.idempotency_key, "https://connectors.example/wecom/evt-1");
    }

    #[test]
    fn channel_falls_back_to_the_extension_then_the_subject() {
        let mut value = valid();
        value["channel"] = json!("dingtalk");
        assert_eq!(
            submission(event(value), Some("chat")).unwrap().channel,
            "dingtalk"
        );
        assert_eq!(
            submission(event(valid()), Some("chat")).unwrap().channel,
            "chat"
        );
        assert_eq!(submission(event(valid()), None).unwrap().channel, "");
        let mut value = valid();
        value["data"]["channel"] = json!("email");
        value["channel"] = json!("dingtalk");
        assert_eq!(
            submission(event(value), Some("chat")).unwrap().channel,
            "email"
        );
    }

    #[test]
    fn an_explicit_idempotency_key_wins() {
        let mut value = valid();
        value["data"]["idempotency_key"] = json!("order-7");
        assert_eq!(
            submission(event(value), None).unwrap().idempotency_key,
            "order-7"
        );
    }

    #[test]
    fn required_attributes_are_named() {
        for attribute in ["specversion", "id", "source", "type"] {
            let mut value = valid();
            value.as_object_mut().unwrap().remove(attribute);
            let (field, msg) = rejection(value, None);
            assert_eq!(field, attribute);
            assert_eq!(
                msg,
                format!("invalid {attribute}: missing; CloudEvents 1.0 requires it")
            );
        }
        let mut value = valid();
        value["id"] = json!(7);
        assert_eq!(
            rejection(value, None),
            ("id", "invalid id: must be a string, not a number".into())
        );
    }

    #[test]
    fn only_version_1_0() {
        let mut value = valid();
        value["specversion"] = json!("0.3");
        assert_eq!(
            rejection(value, None),
            (
                "specversion",
                "invalid specversion: \"0.3\" is not supported; only \"1.0\" is".into()
            )
        );
    }

    #[test]
    fn data_must_be_an_object() {
        let mut value = valid();
        value.as_object_mut().unwrap().remove("data");
        assert_eq!(rejection(value, None).0, "data");
        let mut value = valid();
        value["data"] = json!("宽带断网");
        assert_eq!(
            rejection(value, None),
            (
                "data",
                "invalid data: must be a JSON object, not a string".into()
            )
        );
        let mut value = valid();
        value.as_object_mut().unwrap().remove("data");
        value["data_base64"] = json!("aGk=");
        assert!(
            rejection(value, None)
                .1
                .contains("data_base64 is not supported")
        );
    }

    #[test]
    fn binary_mode_attributes_are_percent_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", "1.0".parse().unwrap());
        headers.insert("ce-id", "evt-42%20/%20r%C3%A9sum%C3%A9".parse().unwrap());
        headers.insert(
            "ce-source",
            "https://connectors.example/wecom".parse().unwrap(),
        );
        headers.insert("ce-time", "2026-12-01T10:30:00Z".parse().unwrap());
        let event = binary_attributes(&headers).unwrap();
        assert_eq!(event["id"], "evt-42 / résumé");
        assert_eq!(event["source"], "https://connectors.example/wecom");
        assert!(
            !event.contains_key("time"),
            "only the attributes intake reads"
        );
        assert!(!event.contains_key("type"));
        for bad in ["100%", "%zz", "%+1", "%ff"] {
            headers.insert("ce-id", bad.parse().unwrap());
            let e = binary_attributes(&headers).unwrap_err();
            assert_eq!(
                (e.field(), e.to_string()),
                (
                    Some("id"),
                    "invalid id: the ce-id header is not percent-encoded UTF-8".into()
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn data_fields_are_checked_like_a_plain_body() {
        let mut value = valid();
        value["data"]["text"] = json!(["not", "text"]);
        assert_eq!(rejection(value, None).0, "text");
        let mut value = valid();
        value["channel"] = json!(1);
        assert_eq!(rejection(value, None).0, "channel");
    }
}
