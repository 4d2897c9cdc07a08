//! What a submission must satisfy before it becomes a ticket. Every front door (gRPC, HTTP, NATS) goes
//! through [`validate`], so a rejection reads the same wherever it came from.

use std::collections::HashMap;

use crate::config::IntakeConfig;
use crate::error::IntakeError;
use crate::normalise::normalise;

/// Identifiers travel on every event of the ticket and into KV keys; real ones are short.
pub const MAX_ID_BYTES: usize = 256;
/// Attributes are connector metadata, not a second text: bounded so they cannot outgrow the ticket.
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;

/// A ticket as a front door received it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    /// Raw bytes, so text that is not UTF-8 is rejected here with the offset, like every other problem.
    pub text: Vec<u8>,
    pub channel: String,
    pub customer_id: String,
    pub thread_id: String,
    /// Empty for none; otherwise a resubmission with the same key (on the same channel) returns the first
    /// ticket's id.
    pub idempotency_key: String,
    pub customer_tier: String,
    pub attributes: HashMap<String, String>,
}

/// A submission that passed validation, with its text and identifiers normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Valid {
    pub text: String,
    /// Lower-cased, and one of the configured channels.
    pub channel: String,
    pub customer_id: String,
    pub thread_id: String,
    pub idempotency_key: Option<String>,
    pub customer_tier: String,
    pub attributes: HashMap<String, String>,
}

pub(crate) fn validate(config: &IntakeConfig, s: Submission) -> Result<Valid, IntakeError> {
    let text = validate_text(config, &s.text)?;
    let channel = validate_channel(config, &s.channel)?;
    let customer_id = identifier("customer_id", &s.customer_id)?;
    let thread_id = identifier("thread_id", &s.thread_id)?;
    let idempotency_key = identifier("idempotency_key", &s.idempotency_key)?;
    let customer_tier = identifier("customer_tier", &s.customer_tier)?;
    validate_attributes(&s.attributes)?;
    Ok(Valid {
        text,
        channel,
        customer_id,
        thread_id,
        idempotency_key: (!idempotency_key.is_empty()).then_some(idempotency_key),
        customer_tier,
        attributes: s.attributes,
    })
}

/// Returns the normalised text.
fn validate_text(config: &IntakeConfig, raw: &[u8]) -> Result<String, IntakeError> {
    if raw.is_empty() {
        return Err(IntakeError::invalid("text", "missing"));
    }
    // Checked on the raw bytes, before decoding, so an oversized body costs no more work than this.
    if raw.len() > config.max_text_bytes {
        return Err(IntakeError::invalid(
            "text",
            format!(
                "{} bytes, over the limit of {} bytes",
                raw.len(),
                config.max_text_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        let at = e.valid_up_to();
        let problem = match e.error_len() {
            Some(_) => format!("not valid UTF-8: invalid byte at offset {at}"),
            None => {
                format!("not valid UTF-8: incomplete character at offset {at}, the end of the text")
            }
        };
        IntakeError::invalid("text", problem)
    })?;
    let text = normalise(text);
    if text.is_empty() {
        return Err(IntakeError::invalid(
            "text",
            "blank (only whitespace or control characters)",
        ));
    }
    Ok(text)
}

fn validate_channel(config: &IntakeConfig, raw: &str) -> Result<String, IntakeError> {
    let channel = raw.trim().to_ascii_lowercase();
    let allowed = || config.channels.join(", ");
    if channel.is_empty() {
        return Err(IntakeError::invalid(
            "channel",
            format!("missing; allowed: {}", allowed()),
        ));
    }
    if !config.channels.contains(&channel) {
        return Err(IntakeError::invalid(
            "channel",
            format!("{raw:?} is not configured; allowed: {}", allowed()),
        ));
    }
    Ok(channel)
}

/// Trims an optional identifier and bounds its length.
fn identifier(field: &'static str, raw: &str) -> Result<String, IntakeError> {
    let value = raw.trim();
    if value.len() > MAX_ID_BYTES {
        return Err(IntakeError::invalid(
            field,
            format!(
                "{} bytes, over the limit of {MAX_ID_BYTES} bytes",
                value.len()
            ),
        ));
    }
    Ok(value.to_owned())
}

fn validate_attributes(attributes: &HashMap<String, String>) -> Result<(), IntakeError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(IntakeError::invalid(
            "attributes",
            format!(
                "{} entries, over the limit of {MAX_ATTRIBUTES}",
                attributes.len()
            ),
        ));
    }
    for (key, value) in attributes {
        if key.is_empty() || key.len() > MAX_ID_BYTES {
            return Err(IntakeError::invalid(
                "attributes",
                format!("key {key:?} must be 1 to {MAX_ID_BYTES} bytes long"),
            ));
        }
        if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(IntakeError::invalid(
                "attributes",
                format!(
                    "value of {key:?} is {} bytes, over the limit of {MAX_ATTRIBUTE_VALUE_BYTES} bytes",
                    value.len()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(text: &[u8]) -> Submission {
        Submission {
            text: text.to_vec(),
            channel: "web".into(),
            ..Submission::default()
        }
    }

    fn rejection(s: Submission) -> (&'static str, String) {
        match validate(&IntakeConfig::default(), s) {
            Err(e @ IntakeError::Invalid { .. }) => (e.field().unwrap_or_default(), e.to_string()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn valid_submission_is_normalised() {
        let s = Submission {
            channel: " Email ".into(),
            thread_id: " t-1 ".into(),
            idempotency_key: "  ".into(),
            ..submission("  my   order\n\n\nis late ".as_bytes())
        };
        let v = validate(&IntakeConfig::default(), s).unwrap();
        assert_eq!(v.text, "my order\nis late");
        assert_eq!(v.channel, "email");
        assert_eq!(v.thread_id, "t-1");
        assert_eq!(v.idempotency_key, None);
    }

    #[test]
    fn missing_and_blank_text() {
        assert_eq!(
            rejection(submission(b"")),
            ("text", "invalid text: missing".into())
        );
        let (field, msg) = rejection(submission(b" \t\n "));
        assert_eq!(field, "text");
        assert!(msg.starts_with("invalid text: blank"), "{msg}");
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        assert_eq!(
            rejection(submission(b"hello \xff world")),
            (
                "text",
                "invalid text: not valid UTF-8: invalid byte at offset 6".into()
            )
        );
        // A character cut off at the end: the first two bytes of a three-byte Chinese character.
        let (field, msg) = rejection(submission(b"ok \xe4\xbd"));
        assert_eq!(field, "text");
        assert!(msg.contains("incomplete character at offset 3"), "{msg}");
    }

    #[test]
    fn oversized_text_names_the_limit() {
        let config = IntakeConfig {
            max_text_bytes: 10,
            ..IntakeConfig::default()
        };
        let err = validate(&config, submission(b"hello world!")).unwrap_err();
        assert_eq!(err.field(), Some("text"));
        assert_eq!(
            err.to_string(),
            "invalid text: 12 bytes, over the limit of 10 bytes"
        );
        // Exactly at the limit is fine.
        assert!(validate(&config, submission(b"helloworld")).is_ok());
    }

    #[test]
    fn channel_must_be_configured() {
        let (field, msg) = rejection(Submission {
            channel: String::new(),
            ..submission(b"hi")
        });
        assert_eq!(field, "channel");
        assert!(
            msg.contains("missing; allowed: web, email, chat, wecom, dingtalk, phone, api"),
            "{msg}"
        );
        let (field, msg) = rejection(Submission {
            channel: "fax".into(),
            ..submission(b"hi")
        });
        assert_eq!(field, "channel");
        assert!(
            msg.contains("\"fax\" is not configured; allowed: web, email"),
            "{msg}"
        );
    }

    #[test]
    fn long_identifiers_name_their_field() {
        let long = "k".repeat(MAX_ID_BYTES + 1);
        for field in [
            "customer_id",
            "thread_id",
            "idempotency_key",
            "customer_tier",
        ] {
            let mut s = submission(b"hi");
            match field {
                "customer_id" => s.customer_id = long.clone(),
                "thread_id" => s.thread_id = long.clone(),
                "idempotency_key" => s.idempotency_key = long.clone(),
                _ => s.customer_tier = long.clone(),
            }
            let (got, msg) = rejection(s);
            assert_eq!(got, field);
            assert_eq!(
                msg,
                format!("invalid {field}: 257 bytes, over the limit of 256 bytes")
            );
        }
        let ok = Submission {
            idempotency_key: "k".repeat(MAX_ID_BYTES),
            ..submission(b"hi")
        };
        assert!(validate(&IntakeConfig::default(), ok).is_ok());
    }

    #[test]
    fn attributes_are_bounded() {
        let many = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        assert_eq!(
            rejection(Submission {
                attributes: many,
                ..submission(b"hi")
            })
            .0,
            "attributes"
        );
        let big = HashMap::from([("k".to_owned(), "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1))]);
        let (field, msg) = rejection(Submission {
            attributes: big,
            ..submission(b"hi")
        });
        assert_eq!(field, "attributes");
        assert!(msg.contains("value of \"k\""), "{msg}");
    }
}
