//! What a run did, from the events a deployment's stream holds: which tickets each idempotency key
//! made, how many decisions each ticket got, which tickets a role gave up on; and the classes every
//! ticket a client was told was accepted falls in. Shared by the chaos run (on NATS) and the embedded
//! default's crash test (on its stored bus).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use prost::Message;
use serde::Serialize;
use switchboard_proto::{DeadLetter, Ticket};

#[derive(Default)]
pub struct Observed {
    /// Idempotency key → the ids of the tickets intake published for it.
    pub tickets_by_key: HashMap<String, BTreeSet<String>>,
    /// Ticket id → how many decisions (`routed` or `review` events) the stream holds for it.
    pub decisions: HashMap<String, u32>,
    /// Ticket id → when this reader first saw a decision for it.
    pub decided_at: HashMap<String, Instant>,
    /// Ticket id → the parser its decision names (`Parsed.parser`).
    pub parsers: HashMap<String, String>,
    pub dead_lettered: HashSet<String>,
    /// The stream sequence read next.
    pub next_sequence: u64,
}

impl Observed {
    /// Takes one event, published on `subject` under the deployment's subject `prefix`.
    pub fn take(&mut self, prefix: &str, subject: &str, payload: &[u8]) {
        let Some(event) = subject
            .strip_prefix(prefix)
            .and_then(|s| s.strip_prefix('.'))
        else {
            return;
        };
        match event {
            "received" => {
                if let Ok(ticket) = Ticket::decode(payload) {
                    self.tickets_by_key
                        .entry(ticket.idempotency_key)
                        .or_default()
                        .insert(ticket.id);
                }
            }
            "routed" | "review" => {
                if let Ok(ticket) = Ticket::decode(payload) {
                    if let Some(parsed) = &ticket.parsed {
                        self.parsers
                            .entry(ticket.id.clone())
                            .or_insert_with(|| parsed.parser.clone());
                    }
                    self.decided_at
                        .entry(ticket.id.clone())
                        .or_insert_with(Instant::now);
                    *self.decisions.entry(ticket.id).or_default() += 1;
                }
            }
            _ if event.starts_with("deadletter.") => {
                let letter = DeadLetter::decode(payload).ok();
                if let Some(ticket) = letter.and_then(|l| Ticket::decode(l.payload.as_slice()).ok())
                {
                    self.dead_lettered.insert(ticket.id);
                }
            }
            _ => {}
        }
    }
}

/// What became of the tickets clients were told were accepted.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Classes {
    pub decided_once: usize,
    pub decided_more_than_once: usize,
    pub never_decided: usize,
    pub dead_lettered: usize,
    /// Accepted with a ticket id the stream never received.
    pub answered_with_unknown_id: usize,
    pub keys_with_two_tickets: usize,
}

impl Observed {
    /// Classifies every accepted (idempotency key, ticket id).
    pub fn classify(&self, accepted: &[(String, String)]) -> Classes {
        let mut c = Classes::default();
        for (key, ticket_id) in accepted {
            let made = self.tickets_by_key.get(key);
            if made.is_some_and(|ids| ids.len() > 1) {
                c.keys_with_two_tickets += 1;
            }
            if !made.is_some_and(|ids| ids.contains(ticket_id)) {
                c.answered_with_unknown_id += 1;
            }
            match self.decisions.get(ticket_id).copied().unwrap_or(0) {
                0 if self.dead_lettered.contains(ticket_id) => c.dead_lettered += 1,
                0 => c.never_decided += 1,
                1 => c.decided_once += 1,
                _ => c.decided_more_than_once += 1,
            }
        }
        c
    }
}
