//! The intake section of the configuration, embedded by the binary in its own config.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
// Unknown keys are errors: a misspelt limit silently left at its default is worse than failing to start.
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// Largest ticket text accepted, in UTF-8 bytes. Bounds what every later stage (and the LLM prompt) has
    /// to carry; a ticket is a request for help, not a document.
    pub max_text_bytes: usize,
    /// Channels a ticket may arrive on. Each is also the last token of `<prefix>.inbound.<channel>`, so the
    /// names must be subject-safe.
    pub channels: Vec<String>,
    /// HTTP and gRPC submissions are refused (503 with `Retry-After`) while a role every ticket passes
    /// before its decision has more tickets than this waiting or in hand; 0 never refuses. Bounds the
    /// queues, the memory they take and the time an accepted ticket waits, under overload.
    pub max_backlog: u64,
    /// How often the backlogs are read from the bus, in milliseconds.
    pub backlog_poll_ms: u64,
    /// The `Retry-After` of a refusal, in seconds.
    pub retry_after_secs: u64,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            max_text_bytes: 16 * 1024,
            channels: ["web", "email", "chat", "wecom", "dingtalk", "phone", "api"]
                .map(str::to_owned)
                .into(),
            // About ten seconds of work at the embedded default's throughput.
            max_backlog: 1000,
            backlog_poll_ms: 250,
            retry_after_secs: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("intake.{key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl IntakeConfig {
    /// Checks the values a file or the environment may have broken, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_text_bytes == 0 {
            return Err(ConfigError {
                key: "max_text_bytes",
                problem: "must be at least 1".into(),
            });
        }
        if self.backlog_poll_ms < 10 {
            return Err(ConfigError {
                key: "backlog_poll_ms",
                problem: "must be at least 10: each reading asks the bus about every role".into(),
            });
        }
        if self.retry_after_secs == 0 {
            return Err(ConfigError {
                key: "retry_after_secs",
                problem: "must be at least 1".into(),
            });
        }
        if self.channels.is_empty() {
            return Err(ConfigError {
                key: "channels",
                problem: "must name at least one channel".into(),
            });
        }
        // Submitted channels are matched lower-cased, and each name becomes a subject token.
        let bad = self.channels.iter().find(|c| {
            c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
        if let Some(bad) = bad {
            return Err(ConfigError {
                key: "channels",
                problem: format!("{bad:?} may hold only lower-case letters, digits, - and _"),
            });
        }
        Ok(())
    }

    /// The largest HTTP body accepted. JSON escaping can make the text several times its raw size
    /// (`\u00e9`-style escapes are six bytes for one), and the other fields need room too.
    pub fn max_body_bytes(&self) -> usize {
        self.max_text_bytes
            .saturating_mul(4)
            .saturating_add(64 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_keys() {
        let config: IntakeConfig = serde_json::from_str(r#"{"max_text_bytes": 100}"#).unwrap();
        assert_eq!(config.max_text_bytes, 100);
        assert_eq!(config.channels, IntakeConfig::default().channels);
        assert_eq!(IntakeConfig::default().max_text_bytes, 16384);
        assert!(IntakeConfig::default().validate().is_ok());
        let typo = serde_json::from_str::<IntakeConfig>(r#"{"max_text_byte": 100}"#).unwrap_err();
        assert!(typo.to_string().contains("max_text_byte"), "{typo}");
    }

    #[test]
    fn validation_names_the_key() {
        let config = IntakeConfig {
            max_text_bytes: 0,
            ..IntakeConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "max_text_bytes");
        let config = IntakeConfig {
            channels: vec!["Web Chat".into()],
            ..IntakeConfig::default()
        };
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, "channels");
        assert!(e.to_string().starts_with("intake.channels:"), "{e}");
    }
}
