use switchboard_bus::BusError;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("rule bucket failed")]
    Bus(#[from] BusError),
    #[error("rule {key} is not valid JSON")]
    RuleJson {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// Another writer changed or removed the rule between the delete's read and its write.
    #[error("rule {id:?} changed while it was being deleted, so it was left as it is")]
    Changed {
        id: String,
        #[source]
        source: BusError,
    },
    #[error("invalid rule: {field} {problem}")]
    InvalidRule {
        field: &'static str,
        problem: String,
    },
}

impl From<RouterError> for tonic::Status {
    fn from(e: RouterError) -> Self {
        let msg = switchboard_runtime::error_chain(&e);
        match e {
            RouterError::InvalidRule { .. } | RouterError::RuleJson { .. } => {
                tonic::Status::invalid_argument(msg)
            }
            // Retrying the whole read-then-delete may succeed, as gRPC means by ABORTED.
            RouterError::Changed { .. } => tonic::Status::aborted(msg),
            RouterError::Bus(_) => tonic::Status::unavailable(msg),
        }
    }
}
