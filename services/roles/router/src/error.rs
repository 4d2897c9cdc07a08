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
            RouterError::Bus(_) => tonic::Status::unavailable(msg),
        }
    }
}
