//! The console's one error type and its kind for the HTTP door.

use switchboard_accounts::AuthError;
use switchboard_bus::BusError;
use switchboard_desk::DeskError;
use switchboard_errors::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no ticket {0}")]
    UnknownTicket(String),
    #[error("the stored decision of ticket {ticket} cannot be decoded")]
    Decode {
        ticket: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// The work state moved, but the event feedback learns from was not published.
    #[error(
        "ticket {ticket} is {done}, but the event the knowledge base learns from was not published; send the request again"
    )]
    Unpublished {
        ticket: String,
        done: &'static str,
        #[source]
        source: BusError,
    },
    #[error("the desk's store failed")]
    Bus(#[from] BusError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl ConsoleError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl ServiceError for ConsoleError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::UnknownTicket(_) => ErrorKind::NotFound,
            Self::Decode { .. } => ErrorKind::DataLoss,
            Self::Desk(e) => match e {
                DeskError::Unknown { .. } => ErrorKind::NotFound,
                // Another reviewer holds it, the ticket moved on, or others kept writing: read again.
                DeskError::Claimed { .. }
                | DeskError::NotInReview { .. }
                | DeskError::Refused { .. }
                | DeskError::Moved { .. }
                | DeskError::Contended { .. } => ErrorKind::Aborted,
                DeskError::NoAssignee { .. } => ErrorKind::InvalidArgument,
                DeskError::Decode { .. } => ErrorKind::DataLoss,
                DeskError::Bus(_) => ErrorKind::Unavailable,
            },
            Self::Unpublished { .. } | Self::Bus(_) => ErrorKind::Unavailable,
            Self::Auth(e) => e.kind(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Auth(e) => e.field(),
            _ => None,
        }
    }
}

impl axum::response::IntoResponse for ConsoleError {
    fn into_response(self) -> axum::response::Response {
        switchboard_errors::http_response(&self)
    }
}
