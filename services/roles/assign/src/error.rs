//! The assign role's one error type and its kind for the HTTP door.

use switchboard_accounts::AuthError;
use switchboard_agents::StoreError;
use switchboard_bus::BusError;
use switchboard_desk::DeskError;
use switchboard_errors::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("invalid {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("no agent {0}")]
    UnknownAgent(String),
    #[error("no ticket {0}")]
    UnknownTicket(String),
    #[error("agent {agent} holds {open} of {capacity} tickets")]
    Full {
        agent: String,
        open: u32,
        capacity: u32,
    },
    #[error("ticket {ticket} is assigned to {assignee}, not {caller}")]
    NotAssignee {
        ticket: String,
        assignee: String,
        caller: String,
    },
    #[error("ticket {ticket} cannot be assigned while it is {state}")]
    NotAssignable { ticket: String, state: &'static str },
    #[error("the stored decision of ticket {ticket} cannot be decoded")]
    Decode {
        ticket: String,
        #[source]
        source: prost::DecodeError,
    },
    /// Other replicas kept filling the chosen agents between every read and reservation.
    #[error("ticket {0}: every agent chosen was filled by another assignment first")]
    Contended(String),
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error(transparent)]
    Agents(#[from] StoreError),
    #[error("the assignment store failed")]
    Bus(#[from] BusError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl AssignError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Whether handling the same event again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Desk(e) => e.is_transient(),
            Self::Agents(e) => e.is_transient(),
            Self::Bus(_) | Self::Contended(_) => true,
            _ => false,
        }
    }
}

impl ServiceError for AssignError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::UnknownAgent(_) | Self::UnknownTicket(_) => ErrorKind::NotFound,
            Self::Full { .. } | Self::NotAssignable { .. } | Self::Contended(_) => {
                ErrorKind::Aborted
            }
            Self::NotAssignee { .. } => ErrorKind::PermissionDenied,
            Self::Decode { .. } => ErrorKind::DataLoss,
            Self::Desk(e) => match e {
                DeskError::Unknown { .. } => ErrorKind::NotFound,
                DeskError::Claimed { .. }
                | DeskError::NotInReview { .. }
                | DeskError::Refused { .. }
                | DeskError::Moved { .. }
                | DeskError::Contended { .. } => ErrorKind::Aborted,
                DeskError::NoAssignee { .. } => ErrorKind::InvalidArgument,
                DeskError::Decode { .. } => ErrorKind::DataLoss,
                DeskError::Bus(_) => ErrorKind::Unavailable,
            },
            Self::Agents(e) => match e {
                StoreError::Invalid(_) => ErrorKind::InvalidArgument,
                StoreError::Decode { .. } => ErrorKind::DataLoss,
                StoreError::Contended { .. } => ErrorKind::Aborted,
                StoreError::Bus(_) => ErrorKind::Unavailable,
            },
            Self::Bus(_) => ErrorKind::Unavailable,
            Self::Auth(e) => e.kind(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Agents(StoreError::Invalid(e)) => Some(&e.field),
            Self::Full { .. } => Some("agent"),
            Self::Auth(e) => e.field(),
            _ => None,
        }
    }
}

impl axum::response::IntoResponse for AssignError {
    fn into_response(self) -> axum::response::Response {
        switchboard_errors::http_response(&self)
    }
}
