//! The `[sentiment]` section of the configuration: how the role reads tone. What tone leads to
//! (escalation, priority) is the `[policy]` section's.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentimentConfig {
    /// A model written by `switchboard train-sentiment`. When set, the ticket's sentiment comes from it
    /// (anger and urgency still from the word lists, which the model does not know); when unset, from the
    /// word lists, so the role runs with no data at all.
    pub model_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("sentiment.{key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl SentimentConfig {
    /// Checks what a file or the environment may have broken, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self
            .model_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError {
                key: "model_path",
                problem: "must not be empty; leave it out to use the word lists".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_by_name() {
        // A key that moved to [policy] must not be silently ignored here.
        let err = serde_json::from_str::<SentimentConfig>(r#"{"anger_threshold": 0.7}"#)
            .expect_err("not a sentiment key");
        assert!(err.to_string().contains("anger_threshold"), "{err}");
        let empty: SentimentConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!(empty, SentimentConfig::default());
    }

    #[test]
    fn an_empty_model_path_names_the_key() {
        let err = SentimentConfig {
            model_path: Some(PathBuf::new()),
        }
        .validate()
        .expect_err("empty path");
        assert!(
            err.to_string().starts_with("sentiment.model_path: "),
            "{err}"
        );
    }
}
