use switchboard_bus::BusError;
use switchboard_errors::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("rule bucket failed")]
    Bus(#[from] BusError),
    /// A stored rule that cannot be read back (or, never in practice, one that cannot be written).
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
    #[error("no rule with id {0:?}")]
    UnknownRule(String),
}

impl ServiceError for RouterError {
    fn kind(&self) -> ErrorKind {
        match self {
            RouterError::InvalidRule { .. } => ErrorKind::InvalidArgument,
            RouterError::UnknownRule(_) => ErrorKind::NotFound,
            // The bucket holds it but it does not parse: the caller's request is not at fault.
            RouterError::RuleJson { .. } => ErrorKind::DataLoss,
            // Retrying the whole read-then-delete may succeed, as gRPC means by ABORTED.
            RouterError::Changed { .. } => ErrorKind::Aborted,
            RouterError::Bus(_) => ErrorKind::Unavailable,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            RouterError::InvalidRule { field, .. } => Some(field),
            RouterError::Bus(_)
            | RouterError::RuleJson { .. }
            | RouterError::Changed { .. }
            | RouterError::UnknownRule(_) => None,
        }
    }
}

impl From<RouterError> for tonic::Status {
    fn from(e: RouterError) -> Self {
        switchboard_errors::grpc_status(e)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_errors::FIELD_METADATA_KEY;
    use tonic::{Code, Status};

    use super::*;

    #[test]
    fn an_invalid_rule_names_its_field() {
        let status = Status::from(RouterError::InvalidRule {
            field: "department",
            problem: "is required".into(),
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid rule: department is required");
        assert_eq!(
            status.metadata().get(FIELD_METADATA_KEY).unwrap(),
            "department"
        );
    }

    #[test]
    fn an_unknown_rule_is_not_found_and_a_corrupt_one_is_data_loss() {
        let status = Status::from(RouterError::UnknownRule("vip".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "no rule with id \"vip\"");

        let source = serde_json::from_slice::<serde_json::Value>(b"{").expect_err("not JSON");
        let status = Status::from(RouterError::RuleJson {
            key: "vip".into(),
            source,
        });
        assert_eq!(status.code(), Code::DataLoss);
        assert!(
            status.message().starts_with("rule vip is not valid JSON: "),
            "{}",
            status.message()
        );
        assert!(status.metadata().get(FIELD_METADATA_KEY).is_none());
    }
}
