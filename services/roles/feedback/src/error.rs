use switchboard_bus::BusError;
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
}

impl From<FeedbackError> for tonic::Status {
    fn from(e: FeedbackError) -> Self {
        let msg = switchboard_runtime::error_chain(&e);
        match e {
            FeedbackError::UnknownTicket(_) => tonic::Status::not_found(msg),
            FeedbackError::Invalid { .. } => tonic::Status::invalid_argument(msg),
            FeedbackError::Decode { .. } => tonic::Status::data_loss(msg),
            // Only the bus handler meets a subject, so reaching a caller would be a bug here.
            FeedbackError::UnexpectedSubject { .. } => tonic::Status::internal(msg),
            FeedbackError::Bus(_) | FeedbackError::KnowledgeBase(_) => {
                tonic::Status::unavailable(msg)
            }
        }
    }
}

/// Reads the latest decision of a ticket from the `decisions` bucket.
pub(crate) async fn load_ticket(
    decisions: &dyn switchboard_bus::Kv,
    ticket_id: &str,
) -> Result<switchboard_proto::Ticket, FeedbackError> {
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
    switchboard_proto::Ticket::decode(entry.value).map_err(|source| FeedbackError::Decode {
        ticket: ticket_id.to_owned(),
        source,
    })
}
