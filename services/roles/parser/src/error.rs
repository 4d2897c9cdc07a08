use switchboard_runtime::BoxError;

use crate::LlmError;

/// Why a parser produced no section. Both kinds are worth a retry: backends recover, and a model asked again
/// often answers within the schema.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The backend could not be reached, refused, or did not answer in time.
    #[error("parser {parser} is unavailable")]
    Unavailable {
        parser: String,
        #[source]
        source: BoxError,
    },
    /// The backend answered, but not with a section that fits the schema.
    #[error("parser {parser} returned an invalid result")]
    InvalidOutput {
        parser: String,
        #[source]
        source: BoxError,
    },
}

impl ParseError {
    /// A short fixed code for why, fit for a decision's `parser` field and for metric labels: the LLM's
    /// own code when the cause is an [`LlmError`], else the kind of failure.
    pub fn reason(&self) -> &'static str {
        let (Self::Unavailable { source, .. } | Self::InvalidOutput { source, .. }) = self;
        match source.downcast_ref::<LlmError>() {
            Some(e) => e.reason(),
            None if matches!(self, Self::Unavailable { .. }) => "unavailable",
            None => "invalid_output",
        }
    }
}
