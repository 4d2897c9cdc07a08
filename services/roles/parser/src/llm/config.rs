//! The `llm` configuration section. Everything about the provider is configuration, the model name
//! included: providers rename and retire models (DeepSeek retired `deepseek-chat` in 2026), so a name in
//! code would break a deployment on the provider's schedule.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Off by default: the local parser needs no network, no key and no budget.
    pub enabled: bool,
    /// Names the provider in metric labels and in each decision's `parser` field.
    pub provider: String,
    /// Root of the OpenAI-compatible API, without the path.
    pub base_url: String,
    /// Path of chat completions under `base_url`: DeepSeek serves `/chat/completions`, most
    /// self-hosted servers (vLLM, Ollama) `/v1/chat/completions`.
    pub path: String,
    /// Required when enabled; there is deliberately no default.
    pub model: String,
    /// The key itself. Prefer `api_key_env` so the key stays out of files.
    pub api_key: Option<String>,
    /// Name of an environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Longest wait for one answer, in seconds.
    pub timeout_secs: u64,
    /// Attempts after the first when the answer is missing, late, empty or off-schema.
    pub max_retries: u32,
    /// First delay between attempts, in milliseconds; doubles per attempt.
    pub backoff_ms: u64,
    /// Requests in flight at once, per process: providers cap concurrency per key.
    pub max_concurrency: usize,
    /// Requests started per second, per process; 0 for no limit.
    pub requests_per_second: f64,
    /// Consecutive failed attempts that open the circuit breaker, sending tickets to the local parser.
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before one trial request may close it again.
    pub breaker_cooldown_secs: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            provider: "deepseek".into(),
            base_url: "https://api.deepseek.com".into(),
            path: "/chat/completions".into(),
            model: String::new(),
            api_key: None,
            api_key_env: None,
            timeout_secs: 20,
            max_retries: 2,
            backoff_ms: 500,
            max_concurrency: 8,
            requests_per_second: 5.0,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
        }
    }
}

/// Hand-written so the key never reaches a log line through `{:?}` of the settings.
impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("enabled", &self.enabled)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("path", &self.path)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_env", &self.api_key_env)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("backoff_ms", &self.backoff_ms)
            .field("max_concurrency", &self.max_concurrency)
            .field("requests_per_second", &self.requests_per_second)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown_secs", &self.breaker_cooldown_secs)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("llm.{key}: {problem}")]
pub struct LlmConfigError {
    pub key: &'static str,
    pub problem: String,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> LlmConfigError {
    LlmConfigError {
        key,
        problem: problem.into(),
    }
}

impl LlmConfig {
    /// Checks what a file or the environment may have broken, naming the key at fault. A disabled section
    /// is not checked: nothing reads it.
    pub fn validate(&self) -> Result<(), LlmConfigError> {
        if self.enabled { self.check() } else { Ok(()) }
    }

    /// The checks themselves, whether enabled or not: for building a parser from the section.
    pub(crate) fn check(&self) -> Result<(), LlmConfigError> {
        if self.model.trim().is_empty() {
            return Err(invalid(
                "model",
                "is required when llm.enabled = true (the provider's model name)",
            ));
        }
        if self.provider.is_empty()
            || !self
                .provider
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid("provider", "must be letters, digits, _ or -"));
        }
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(invalid("base_url", "must start with https:// or http://"));
        }
        if !self.path.starts_with('/') {
            return Err(invalid("path", "must start with /"));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", "must be at least 1"));
        }
        if self.max_concurrency == 0 {
            return Err(invalid("max_concurrency", "must be at least 1"));
        }
        // Written so NaN fails too.
        if !(self.requests_per_second >= 0.0 && self.requests_per_second.is_finite()) {
            return Err(invalid(
                "requests_per_second",
                "must be a finite number, 0 (no limit) or more",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(invalid("breaker_failures", "must be at least 1"));
        }
        self.api_key().map(|_| ())
    }

    /// The API key, from `api_key` or the variable `api_key_env` names; `None` for servers that take
    /// none (a self-hosted model).
    pub fn api_key(&self) -> Result<Option<String>, LlmConfigError> {
        match (&self.api_key, &self.api_key_env) {
            (Some(_), Some(_)) => Err(invalid(
                "api_key_env",
                "set api_key or api_key_env, not both",
            )),
            (Some(key), None) => Ok(Some(key.clone())),
            (None, Some(var)) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => Ok(Some(key)),
                _ => Err(invalid(
                    "api_key_env",
                    format!("the environment variable {var} is not set"),
                )),
            },
            (None, None) => Ok(None),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The longest one ticket can spend on the LLM if every attempt times out: each attempt's timeout
    /// plus the doubling delays between them. Callers cap it with the message's ack deadline.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.max_retries.saturating_add(1);
        let backoff: u64 = (0..self.max_retries.min(16))
            .map(|i| self.backoff_ms.saturating_mul(1 << i))
            .fold(0, u64::saturating_add);
        self.timeout().saturating_mul(attempts) + Duration::from_millis(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> LlmConfig {
        LlmConfig {
            enabled: true,
            model: "some-model".into(),
            ..LlmConfig::default()
        }
    }

    #[test]
    fn disabled_by_default_and_valid() {
        let config = LlmConfig::default();
        assert!(!config.enabled);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_model_is_required_when_enabled() {
        let err = LlmConfig {
            enabled: true,
            ..LlmConfig::default()
        }
        .validate()
        .expect_err("no model");
        assert!(err.to_string().contains("llm.model"), "{err}");
        assert!(enabled().validate().is_ok());
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let config = LlmConfig {
            api_key: Some("sk-secret-123".into()),
            ..enabled()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert_eq!(
            config.api_key().ok().flatten().as_deref(),
            Some("sk-secret-123")
        );
    }

    #[test]
    fn a_missing_key_variable_is_named() {
        let config = LlmConfig {
            api_key_env: Some("SWITCHBOARD_TEST_SURELY_UNSET_KEY".into()),
            ..enabled()
        };
        let err = config.validate().expect_err("unset variable");
        assert_eq!(err.key, "api_key_env");
    }

    #[test]
    fn worst_case_adds_timeouts_and_backoff() {
        let config = LlmConfig {
            timeout_secs: 10,
            max_retries: 2,
            backoff_ms: 500,
            ..enabled()
        };
        assert_eq!(config.worst_case(), Duration::from_millis(31_500));
    }
}
