//! The contract between the runner and a role: a handler turns one input message into the messages to
//! publish. The runner owns acks, retries, dead-letters, trace context and metrics.

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use switchboard_proto::{Stage, Ticket};

use crate::BoxError;
use crate::subjects::{Subjects, msg_id, next_stages, stage_name};

#[derive(Debug, Clone)]
pub struct Inbound {
    pub subject: String,
    pub payload: Bytes,
    pub attempt: u64,
}

#[derive(Debug, Clone)]
pub struct Outbound {
    pub subject: String,
    /// De-duplication id; `None` only for messages whose repetition is harmless.
    pub msg_id: Option<String>,
    pub payload: Bytes,
}

impl Outbound {
    /// A ticket envelope on the subject of its current stage, de-duplicated by `<ticket>.<stage>`.
    pub fn ticket(subjects: &Subjects, ticket: &Ticket) -> Self {
        let stage = ticket.stage();
        Self {
            subject: subjects.stage(stage),
            msg_id: Some(msg_id(&ticket.id, stage)),
            payload: Bytes::from(ticket.encode_to_vec()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retrying cannot help (undecodable payload, invalid content): dead-letter at once.
    #[error("the message cannot be processed")]
    Permanent(#[source] BoxError),
    /// Might succeed later: redeliver, up to the bound.
    #[error("processing failed, will retry")]
    Transient(#[source] BoxError),
    /// A dependency does not answer (a server is down or unreachable): not this message's fault, so
    /// it must not use up the message's deliveries. The runner keeps the delivery and tries it again
    /// in place, with a growing pause, for as long as the outage lasts.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
}

impl HandlerError {
    pub fn permanent(e: impl Into<BoxError>) -> Self {
        Self::Permanent(e.into())
    }

    pub fn transient(e: impl Into<BoxError>) -> Self {
        Self::Transient(e.into())
    }

    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError>;

    /// Whether the role only watches subjects other roles own (the metrics role): a message it
    /// rejects is then dropped, not dead-lettered, since the owning role keeps it already.
    fn observes(&self) -> bool {
        false
    }
}

/// A role that reads a ticket envelope, fills its section and passes it on: parser, sentiment, retriever
/// and router are all this shape.
#[async_trait]
pub trait TicketStage: Send + Sync + 'static {
    /// The stage of the tickets it takes; what it may give is the pipeline's next step
    /// ([`next_stages`]).
    const INPUT: Stage;

    /// Fills this stage's section and returns the stage the ticket has now reached.
    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError>;
}

#[derive(Debug, thiserror::Error)]
#[error("a stage taking {input} tickets gave a {given} one, which the pipeline does not allow")]
struct OutOfOrder {
    input: &'static str,
    given: &'static str,
}

/// Adapts a [`TicketStage`] to a [`Handler`].
#[derive(Debug)]
pub struct TicketHandler<S> {
    stage: S,
    subjects: Subjects,
}

impl<S> TicketHandler<S> {
    pub fn new(stage: S, subjects: Subjects) -> Self {
        Self { stage, subjects }
    }
}

#[async_trait]
impl<S: TicketStage> Handler for TicketHandler<S> {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        let mut ticket = Ticket::decode(msg.payload.clone()).map_err(HandlerError::permanent)?;
        let next = self.stage.process(&mut ticket).await?;
        if !next_stages(S::INPUT).contains(&next) {
            return Err(HandlerError::permanent(OutOfOrder {
                input: stage_name(S::INPUT),
                given: stage_name(next),
            }));
        }
        ticket.set_stage(next);
        Ok(vec![Outbound::ticket(&self.subjects, &ticket)])
    }
}
