//! What the idempotency bucket holds for one key: the ticket the key made, and whether that ticket is
//! known to be on the bus.
//!
//! A key is claimed before its ticket is published, with the whole ticket in the claim. Whatever happens
//! between the claim and the publish's acknowledgement (intake dies, the acknowledgement is lost), a retry
//! with the same key then publishes that same ticket again (same id, same body, same `Nats-Msg-Id`, which
//! the stream stores once) instead of answering with an id that exists nowhere or making a second ticket.

use bytes::Bytes;
use prost::Message;
use switchboard_proto::Ticket;

use crate::error::IntakeError;

/// Marks a pending claim. Ticket ids are UUIDs, which never start with it, so a published record stays
/// the bare ticket id: the format keys had before pending claims existed, which stored keys keep.
const PENDING: &[u8] = b"pending:";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// Claimed, and the publish of this ticket not confirmed: a retry publishes it again.
    Pending(Box<Ticket>),
    /// The ticket with this id is on the bus: a retry gets the id and publishes nothing.
    Published(String),
}

impl Record {
    pub(crate) fn encode(&self) -> Bytes {
        match self {
            Self::Pending(ticket) => {
                let mut value = PENDING.to_vec();
                ticket.encode(&mut value).unwrap_or_else(|_| {
                    unreachable!("a Vec grows, so encoding into it cannot run out of room")
                });
                Bytes::from(value)
            }
            Self::Published(ticket_id) => Bytes::from(ticket_id.clone()),
        }
    }

    /// `key` names the record in the error when it cannot be read.
    pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Self, IntakeError> {
        let corrupt = |source: Box<dyn std::error::Error + Send + Sync>| IntakeError::Claim {
            key: key.to_owned(),
            source,
        };
        match value.strip_prefix(PENDING) {
            Some(ticket) => Ticket::decode(ticket)
                .map(|ticket| Self::Pending(Box::new(ticket)))
                .map_err(|e| corrupt(e.into())),
            None => std::str::from_utf8(value)
                .map(|id| Self::Published(id.to_owned()))
                .map_err(|e| corrupt(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let ticket = Ticket {
            id: "0193a3c4-7e1f-7000-8000-000000000001".into(),
            text: "宽带断网".into(),
            idempotency_key: "order-7".into(),
            ..Ticket::default()
        };
        for record in [
            Record::Pending(Box::new(ticket.clone())),
            Record::Published(ticket.id),
        ] {
            assert_eq!(Record::decode("k", &record.encode()).unwrap(), record);
        }
    }

    #[test]
    fn a_published_record_is_the_bare_ticket_id_as_stored_before() {
        let id = "0193a3c4-7e1f-7000-8000-000000000001";
        assert_eq!(Record::Published(id.into()).encode(), id.as_bytes());
        assert_eq!(
            Record::decode("k", id.as_bytes()).unwrap(),
            Record::Published(id.into())
        );
    }

    #[test]
    fn an_unreadable_record_names_its_key_and_cause() {
        let e = Record::decode("abc", b"pending:\xff\xff").unwrap_err();
        assert_eq!(
            switchboard_runtime::error_chain(&e),
            format!(
                "the idempotency record {:?} cannot be read: {}",
                "abc",
                Ticket::decode(&b"\xff\xff"[..]).unwrap_err()
            )
        );
        let e = Record::decode("abc", b"\xff").unwrap_err();
        assert!(
            switchboard_runtime::error_chain(&e).contains("invalid utf-8"),
            "{e}"
        );
    }
}
