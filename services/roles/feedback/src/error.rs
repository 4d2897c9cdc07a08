use switchboard_bus::BusError;
use switchboard_errors::{ErrorKind, ServiceError};
use switchboard_knowledge::KnowledgeError;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no decision is stored for ticket {0:?}")]
    UnknownTicket(String),
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("stored decision of ticket {ticket} cannot be decoded")]
    Decode {
        ticket: String,
        #[source]
        source: prost::DecodeError,
    },
    /// A message under the feedback subjects that is neither a correction nor a resolution: from a newer
    /// publisher or a misconfigured one, and no retry will make it one.
    #[error("feedback subject {subject:?} is neither a correction nor a resolution")]
    UnexpectedSubject { subject: String },
    #[error("decision store failed")]
    Bus(#[from] BusError),
    #[error("knowledge base update failed")]
    KnowledgeBase(#[from] KnowledgeError),
    /// The stored decision changed under every attempt to correct it.
    #[error(
        "ticket {ticket}'s stored decision changed under each of {attempts} attempts to correct it"
    )]
    Contended { ticket: String, attempts: u32 },
    /// Moving the ticket's work state failed in a way worth retrying (the bus, or contention).
    #[error("work state update failed")]
    Work(#[source] switchboard_desk::DeskError),
}

impl ServiceError for FeedbackError {
    fn kind(&self) -> ErrorKind {
        match self {
            FeedbackError::UnknownTicket(_) => ErrorKind::NotFound,
            FeedbackError::Invalid { .. } => ErrorKind::InvalidArgument,
            FeedbackError::Decode { .. } => ErrorKind::DataLoss,
            // Only the bus handler meets a subject, so reaching a caller would be a bug here.
            FeedbackError::UnexpectedSubject { .. } => ErrorKind::Internal,
            FeedbackError::Bus(_) | FeedbackError::Work(_) | FeedbackError::Contended { .. } => {
                ErrorKind::Unavailable
            }
            // The knowledge base knows best what its failure is.
            FeedbackError::KnowledgeBase(e) => e.kind(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            FeedbackError::Invalid { field, .. } => Some(field),
            FeedbackError::UnknownTicket(_)
            | FeedbackError::Decode { .. }
            | FeedbackError::UnexpectedSubject { .. }
            | FeedbackError::Bus(_)
            | FeedbackError::Work(_)
            | FeedbackError::Contended { .. }
            | FeedbackError::KnowledgeBase(_) => None,
        }
    }
}

impl From<FeedbackError> for tonic::Status {
    fn from(e: FeedbackError) -> Self {
        switchboard_errors::grpc_status(e)
    }
}

/// Reads the latest decision of a ticket from the `decisions` bucket.
pub(crate) async fn load_ticket(
    decisions: &dyn switchboard_bus::Kv,
    ticket_id: &str,
) -> Result<switchboard_proto::Ticket, FeedbackError> {
    Ok(load_entry(decisions, ticket_id).await?.0)
}

/// [`load_ticket`] with the revision it was stored at, for a revision-checked update.
pub(crate) async fn load_entry(
    decisions: &dyn switchboard_bus::Kv,
    ticket_id: &str,
) -> Result<(switchboard_proto::Ticket, u64), FeedbackError> {
    use prost::Message;
    if switchboard_bus::validate_key(ticket_id).is_err() {
        return Err(FeedbackError::Invalid {
            field: "ticket_id",
            problem: format!("{ticket_id:?} is not a ticket id"),
        });
    }
    let entry = decisions
        .get(ticket_id)
        .await?
        .ok_or_else(|| FeedbackError::UnknownTicket(ticket_id.to_owned()))?;
    let ticket =
        switchboard_proto::Ticket::decode(entry.value).map_err(|source| FeedbackError::Decode {
            ticket: ticket_id.to_owned(),
            source,
        })?;
    Ok((ticket, entry.revision))
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use switchboard_errors::FIELD_METADATA_KEY;
    use tonic::{Code, Status};

    use super::*;

    #[test]
    fn each_failure_has_its_code_and_a_rejection_its_field() {
        let status = Status::from(FeedbackError::Invalid {
            field: "reason",
            problem: "is required".into(),
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid reason: is required");
        assert_eq!(status.metadata().get(FIELD_METADATA_KEY).unwrap(), "reason");

        let status = Status::from(FeedbackError::UnknownTicket("t-1".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "no decision is stored for ticket \"t-1\"");
        assert!(status.metadata().get(FIELD_METADATA_KEY).is_none());

        let source = switchboard_proto::Ticket::decode(&b"\xff"[..]).expect_err("garbage");
        let status = Status::from(FeedbackError::Decode {
            ticket: "t-1".into(),
            source,
        });
        assert_eq!(status.code(), Code::DataLoss);
        assert!(
            status
                .message()
                .starts_with("stored decision of ticket t-1 cannot be decoded: "),
            "{}",
            status.message()
        );

        let status = Status::from(FeedbackError::Bus(BusError::Closed));
        assert_eq!(status.code(), Code::Unavailable);
    }
}
