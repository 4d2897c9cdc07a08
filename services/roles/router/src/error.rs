use switchboard_accounts::AuthError;
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
    /// Another writer changed or removed the rule between the caller's read (or the revision it
    /// expected) and this write.
    #[error("rule {id:?} changed while it was being {doing}, so it was left as it is")]
    Changed {
        id: String,
        doing: &'static str,
        #[source]
        source: BusError,
    },
    #[error("invalid rule: {field} {problem}")]
    InvalidRule { field: String, problem: String },
    #[error("invalid {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("no rule with id {0:?}")]
    UnknownRule(String),
    #[error("a rule with id {0:?} exists already")]
    RuleExists(String),
    /// The rule was written, but its version could not be added to the history.
    #[error(
        "rule {id:?} was written at revision {revision}, but that version could not be added to its history"
    )]
    History {
        id: String,
        revision: u64,
        #[source]
        source: Box<RouterError>,
    },
    /// Others kept appending to the rule's history between every read and write of ours.
    #[error("the history of rule {id:?} kept changing over {attempts} attempts")]
    HistoryContended { id: String, attempts: u32 },
    #[error("the history of rule {id:?} is not valid JSON")]
    HistoryJson {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// The body is not the JSON the endpoint takes; `field` is the path to what is wrong (`.` for the
    /// whole body).
    #[error("invalid request body at {field}")]
    BodyJson {
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the request body could not be read")]
    BodyUnread(#[source] axum::extract::rejection::BytesRejection),
    #[error("invalid query parameters")]
    Query(#[source] axum::extract::rejection::QueryRejection),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The suggestions and keywords are mined from the knowledge base, which a process opens only
    /// when it runs the retriever or feedback role too.
    #[error(
        "this process holds no knowledge base to mine: run the router in the process that runs the \
         retriever or feedback role (as `--roles all` does)"
    )]
    NoHistory,
    #[error("the knowledge base could not be mined")]
    Mining(#[source] switchboard_knowledge::KnowledgeError),
    #[error("no rule is suggested for keyword {keyword:?}: {reason}")]
    NoSuggestion { keyword: String, reason: String },
}

impl RouterError {
    /// The same rejection about a rule nested in a request, its field named by the path to it
    /// (`rules[2].weight`).
    pub(crate) fn within(self, path: &str) -> Self {
        match self {
            Self::InvalidRule { field, problem } => Self::InvalidRule {
                field: format!("{path}.{field}"),
                problem,
            },
            other => other,
        }
    }
}

impl ServiceError for RouterError {
    fn kind(&self) -> ErrorKind {
        match self {
            RouterError::InvalidRule { .. }
            | RouterError::Invalid { .. }
            | RouterError::BodyJson { .. }
            | RouterError::Query(_) => ErrorKind::InvalidArgument,
            RouterError::BodyUnread(e)
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ErrorKind::PayloadTooLarge
            }
            RouterError::BodyUnread(_) => ErrorKind::InvalidArgument,
            RouterError::UnknownRule(_) | RouterError::NoSuggestion { .. } => ErrorKind::NotFound,
            RouterError::NoHistory => ErrorKind::Unavailable,
            RouterError::Mining(e) => e.kind(),
            RouterError::RuleExists(_) => ErrorKind::AlreadyExists,
            // The bucket holds it but it does not parse: the caller's request is not at fault.
            RouterError::RuleJson { .. } | RouterError::HistoryJson { .. } => ErrorKind::DataLoss,
            // Retrying the whole read-then-write may succeed, as gRPC means by ABORTED.
            RouterError::Changed { .. } | RouterError::HistoryContended { .. } => {
                ErrorKind::Aborted
            }
            // The rule is written: the request is not at fault and is not to be retried as if it
            // had failed, so the failure is the service's, unless the history itself is damaged.
            RouterError::History { source, .. } => match source.kind() {
                ErrorKind::DataLoss => ErrorKind::DataLoss,
                _ => ErrorKind::Unavailable,
            },
            RouterError::Bus(_) => ErrorKind::Unavailable,
            RouterError::Auth(e) => e.kind(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            RouterError::InvalidRule { field, .. } => Some(field),
            RouterError::Invalid { field, .. } | RouterError::BodyJson { field, .. } => Some(field),
            RouterError::Auth(e) => e.field(),
            RouterError::Bus(_)
            | RouterError::RuleJson { .. }
            | RouterError::Changed { .. }
            | RouterError::UnknownRule(_)
            | RouterError::RuleExists(_)
            | RouterError::History { .. }
            | RouterError::HistoryContended { .. }
            | RouterError::HistoryJson { .. }
            | RouterError::BodyUnread(_)
            | RouterError::Query(_)
            | RouterError::NoHistory
            | RouterError::Mining(_)
            | RouterError::NoSuggestion { .. } => None,
        }
    }
}

impl axum::response::IntoResponse for RouterError {
    fn into_response(self) -> axum::response::Response {
        match self {
            // Its own answer carries the challenge header a 401 needs.
            RouterError::Auth(e) => e.into_response(),
            other => switchboard_errors::http_response(&other),
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
            field: "department".into(),
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
