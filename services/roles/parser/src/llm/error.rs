use std::time::Duration;

/// Why one call to the LLM gave no usable section. Messages never quote the ticket or the answer:
/// errors end up in logs and dead letters.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the request to the provider failed")]
    Transport(#[source] reqwest::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the provider is rate limiting")]
    RateLimited {
        /// What the provider's `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    #[error("the provider answered HTTP {status}")]
    Status { status: u16 },
    #[error("the provider's reply is not a chat completion")]
    Envelope(#[source] serde_json::Error),
    #[error("the model's answer is empty")]
    Empty,
    #[error("the model's answer is not the requested JSON")]
    Json(#[source] serde_json::Error),
    #[error("the model's answer breaks the schema: {0}")]
    Schema(&'static str),
    #[error("the circuit breaker is open after repeated failures")]
    BreakerOpen,
    #[error("the ticket's LLM budget of {0:?} ran out")]
    Deadline(Duration),
}

impl LlmError {
    /// A short fixed code: the `outcome` metric label and the reason a fallback records in the
    /// decision. Fixed strings keep label cardinality bounded and untrusted text out of labels.
    /// Every [`Self::reason`], so each outcome's series exists from the start.
    pub(crate) const REASONS: [&'static str; 11] = [
        "transport",
        "timeout",
        "rate_limited",
        "server_error",
        "client_error",
        "bad_reply",
        "empty",
        "invalid_json",
        "invalid_schema",
        "breaker_open",
        "deadline",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::Timeout(_) => "timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Status { status } if *status >= 500 => "server_error",
            Self::Status { .. } => "client_error",
            Self::Envelope(_) => "bad_reply",
            Self::Empty => "empty",
            Self::Json(_) => "invalid_json",
            Self::Schema(_) => "invalid_schema",
            Self::BreakerOpen => "breaker_open",
            Self::Deadline(_) => "deadline",
        }
    }

    /// Whether asking again may help. A 4xx other than 408 and 429 is a configuration problem (bad key,
    /// unknown model): retrying only spends the ticket's budget.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Self::Status { status } => *status >= 500 || *status == 408,
            Self::BreakerOpen | Self::Deadline(_) => false,
            _ => true,
        }
    }

    /// The provider answered, but not with a section that fits the schema.
    pub(crate) fn is_invalid_output(&self) -> bool {
        matches!(
            self,
            Self::Envelope(_) | Self::Empty | Self::Json(_) | Self::Schema(_)
        )
    }
}

#[cfg(test)]
mod reason_tests {
    use super::*;

    #[test]
    fn every_reason_is_listed() {
        let not_json = || serde_json::from_str::<u8>("x").unwrap_err();
        let errors = [
            LlmError::Timeout(Duration::ZERO),
            LlmError::RateLimited { retry_after: None },
            LlmError::Status { status: 503 },
            LlmError::Status { status: 400 },
            LlmError::Envelope(not_json()),
            LlmError::Empty,
            LlmError::Json(not_json()),
            LlmError::Schema("x"),
            LlmError::BreakerOpen,
            LlmError::Deadline(Duration::ZERO),
        ];
        for e in errors {
            assert!(LlmError::REASONS.contains(&e.reason()), "{}", e.reason());
        }
    }
}
