//! The one path every ticket takes into the pipeline, whichever door it came through: validate, claim the
//! idempotency key, normalise and mask, build the RECEIVED envelope.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchboard_bus::{BusError, Created, Kv};
use switchboard_desk::WorkStates;
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::metrics::submission;
use switchboard_runtime::{Metrics, Outbound, Publisher, Subjects, error_chain, now_ms};
use uuid::Uuid;

use crate::backlog::Backlog;
use crate::claim::Record;
use crate::config::IntakeConfig;
use crate::error::IntakeError;
use crate::validate::{Submission, Valid, validate};
use switchboard_text::pii::Masker;

#[derive(Debug)]
pub struct Intake {
    publisher: Publisher,
    subjects: Subjects,
    /// Idempotency key hash -> the claim of the one ticket submitted with it ([`Record`]).
    idempotency: Arc<dyn Kv>,
    metrics: Metrics,
    config: IntakeConfig,
    /// Where an accepted ticket is recorded as received; `None` records nothing.
    work: Option<WorkStates>,
    /// The gate [`Intake::submit`] passes; `None` admits everything.
    backlog: Option<Arc<Backlog>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub ticket_id: String,
    /// The idempotency key was seen before: `ticket_id` is the ticket that key made, and no new ticket
    /// was made. (If the first submission's publish was never confirmed, this one published that same
    /// ticket again, which the stream stores once.)
    pub duplicate: bool,
}

/// What the idempotency bucket said about a submission's key.
enum Claim {
    /// The key is this submission's; the claim is at this revision.
    Fresh(u64),
    /// An earlier submission claimed the key for this ticket and its publish was never confirmed.
    Pending { ticket: Box<Ticket>, revision: u64 },
    /// An earlier submission's ticket, with this id, is on the bus.
    Published(String),
}

impl Intake {
    pub fn new(
        publisher: Publisher,
        subjects: Subjects,
        idempotency: Arc<dyn Kv>,
        metrics: Metrics,
        config: IntakeConfig,
    ) -> Self {
        metrics.submissions_started();
        Self {
            publisher,
            subjects,
            idempotency,
            metrics,
            config,
            work: None,
            backlog: None,
        }
    }

    /// Refuses [`Intake::submit`]s while the pipeline's backlog is over its bound.
    pub fn with_backlog(mut self, backlog: Arc<Backlog>) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// Records each accepted ticket's work state as received, so the desk sees it before it is decided.
    pub fn with_work(mut self, work: WorkStates) -> Self {
        self.work = Some(work);
        self
    }

    /// Records the ticket as received. After its publish (submit) the ticket is accepted whatever this
    /// does, so a failure is only logged: the router's decision creates the work state anyway.
    async fn record_received(&self, ticket: &Ticket) -> Result<(), IntakeError> {
        if let Some(work) = &self.work {
            work.receive(&ticket.id, &ticket.channel, ticket.received_at_ms)
                .await
                .map_err(IntakeError::Work)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &IntakeConfig {
        &self.config
    }

    /// Validates, masks and publishes one ticket on the RECEIVED subject. With an idempotency key, the key
    /// always stands for exactly one ticket: a resubmission returns that ticket's id (`duplicate: true`),
    /// publishing it again only when the first submission's publish was never confirmed.
    ///
    /// A failed publish leaves the key claimed, holding the ticket: the failure may be ambiguous (stored,
    /// but the acknowledgement lost), and the retry publishing the same ticket under the same message id
    /// is right either way, where releasing the key would make a second ticket.
    ///
    /// Refused with [`IntakeError::Overloaded`] while the pipeline is behind (after validation, so a
    /// bad submission still learns what is wrong with it).
    pub async fn submit(&self, req: Submission) -> Result<Submitted, IntakeError> {
        let valid = self.validate(req)?;
        if let Some(backlog) = &self.backlog {
            backlog.admit()?;
        }
        self.accept(valid).await
    }

    /// [`Intake::submit`] without the backlog gate, for the NATS door: an inbound event already waits
    /// in a durable stream, which bounds that door's queue, and refusing it would only spend its
    /// delivery budget until it became a dead letter.
    pub async fn submit_queued(&self, req: Submission) -> Result<Submitted, IntakeError> {
        let valid = self.validate(req)?;
        self.accept(valid).await
    }

    async fn accept(&self, valid: Valid) -> Result<Submitted, IntakeError> {
        let key = valid
            .idempotency_key
            .as_deref()
            .map(|key| idempotency_kv_key(&valid.channel, key));
        let ticket = self.ticket(valid, new_ticket_id());
        let Some(key) = key else {
            self.publish(&ticket).await?;
            return Ok(Submitted {
                ticket_id: ticket.id,
                duplicate: false,
            });
        };
        let (ticket, revision, duplicate) = match self.claim(&key, &ticket).await? {
            Claim::Published(ticket_id) => {
                return Ok(Submitted {
                    ticket_id,
                    duplicate: true,
                });
            }
            Claim::Fresh(revision) => (ticket, revision, false),
            Claim::Pending { ticket, revision } => {
                tracing::info!(ticket_id = %ticket.id, "publishing a claimed ticket again: its first publish was never confirmed");
                (*ticket, revision, true)
            }
        };
        self.publish(&ticket).await?;
        self.confirm(&key, &ticket.id, revision).await;
        Ok(Submitted {
            ticket_id: ticket.id,
            duplicate,
        })
    }

    /// Publishes the ticket and records it as received.
    async fn publish(&self, ticket: &Ticket) -> Result<(), IntakeError> {
        if let Err(e) = self
            .publisher
            .publish(Outbound::ticket(&self.subjects, ticket))
            .await
        {
            let e = IntakeError::Publish(e);
            tracing::warn!(error = %error_chain(&e), ticket_id = %ticket.id, channel = %ticket.channel, "intake could not publish a ticket");
            return Err(e);
        }
        if let Err(e) = self.record_received(ticket).await {
            tracing::warn!(ticket_id = %ticket.id, error = %error_chain(&e), "ticket accepted, but its work state not recorded");
        }
        tracing::info!(ticket_id = %ticket.id, channel = %ticket.channel, "ticket received");
        Ok(())
    }

    /// Counts what became of one submission at `door` (one of [`submission::DOORS`]); every door
    /// passes each submission's result through here once.
    pub(crate) fn count(&self, door: &str, result: &Result<Submitted, IntakeError>) {
        let outcome = match result {
            Ok(Submitted {
                duplicate: false, ..
            }) => submission::ACCEPTED,
            Ok(Submitted {
                duplicate: true, ..
            }) => submission::DUPLICATE,
            Err(e) if e.is_rejection() => submission::REJECTED,
            Err(IntakeError::Overloaded { .. }) => submission::OVERLOADED,
            Err(_) => submission::FAILED,
        };
        self.metrics.submission(door, outcome);
    }

    /// Counts a rejection by its field; every door passes its rejections through here.
    pub(crate) fn reject(&self, e: IntakeError) -> IntakeError {
        if let Some(field) = e.field() {
            self.metrics.rejected(field);
            tracing::debug!(field, error = %e, "submission rejected");
        }
        e
    }

    fn validate(&self, req: Submission) -> Result<Valid, IntakeError> {
        validate(&self.config, req).map_err(|e| self.reject(e))
    }

    async fn claim(&self, key: &str, ticket: &Ticket) -> Result<Claim, IntakeError> {
        let pending = Record::Pending(Box::new(ticket.clone())).encode();
        let created = self
            .idempotency
            .create(key, pending)
            .await
            .map_err(IntakeError::Idempotency)?;
        let entry = match created {
            Created::Created { revision } => return Ok(Claim::Fresh(revision)),
            Created::Exists(entry) => entry,
        };
        Ok(match Record::decode(key, &entry.value)? {
            Record::Published(ticket_id) => Claim::Published(ticket_id),
            Record::Pending(ticket) => Claim::Pending {
                ticket,
                revision: entry.revision,
            },
        })
    }

    /// Records that the key's ticket is on the bus, so later retries publish nothing. The ticket is
    /// accepted whatever this does: left pending, the next retry publishes it once more, which the
    /// stream drops as a duplicate inside its de-duplication window.
    async fn confirm(&self, key: &str, ticket_id: &str, revision: u64) {
        let published = Record::Published(ticket_id.to_owned()).encode();
        match self.idempotency.update(key, published, revision).await {
            Ok(_) => {}
            // A concurrent retry of the same pending claim confirmed it first.
            Err(BusError::WrongRevision { .. }) => {}
            Err(e) => tracing::warn!(
                ticket_id,
                key,
                error = %error_chain(&e),
                "ticket published, but its idempotency key not confirmed; a retry publishes it again"
            ),
        }
    }

    fn ticket(&self, valid: Valid, id: String) -> Ticket {
        // Detected before masking: placeholders are Latin words and would tilt Chinese text towards "en".
        let language = switchboard_text::language(&valid.text);
        let mut masker = Masker::default();
        let text = masker.mask(&valid.text);
        // Attribute values reach the bus too. Masked in key order so the numbering does not depend on
        // hash-map order.
        let attributes: BTreeMap<String, String> = valid.attributes.into_iter().collect();
        let attributes = attributes
            .into_iter()
            .map(|(k, v)| (k, masker.mask(&v)))
            .collect();
        let masked = masker
            .counts()
            .into_iter()
            .map(|(kind, n)| (kind.to_owned(), n))
            .collect();
        // A ticket without a thread starts its own, so later stages never group unrelated tickets under "".
        let thread_id = if valid.thread_id.is_empty() {
            id.clone()
        } else {
            valid.thread_id
        };
        let mut ticket = Ticket {
            id,
            channel: valid.channel,
            text,
            language: language.to_owned(),
            thread_id,
            customer_id: valid.customer_id,
            customer_tier: valid.customer_tier,
            received_at_ms: now_ms(),
            idempotency_key: valid.idempotency_key.unwrap_or_default(),
            attributes,
            masked,
            ..Ticket::default()
        };
        ticket.set_stage(Stage::Received);
        ticket
    }
}

/// UUID v7: time-ordered, so ticket ids sort by arrival and index well.
fn new_ticket_id() -> String {
    Uuid::now_v7().to_string()
}

/// Client keys are arbitrary text, KV keys are not: hashing makes any key NATS-safe and bounded. The
/// channel is part of it because connectors on different channels choose their keys independently.
fn idempotency_kv_key(channel: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{channel}\n{key}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_nats_safe_and_channel_scoped() {
        let key = idempotency_kv_key("web", "order 42 / retry ✓");
        assert_eq!(key.len(), 64);
        assert!(switchboard_bus::validate_key(&key).is_ok());
        assert_ne!(key, idempotency_kv_key("email", "order 42 / retry ✓"));
        // Pinned: changing the derivation would make every stored key miss after an upgrade.
        assert_eq!(
            idempotency_kv_key("web", "abc"),
            "9165344a8268fe0251e8f7c0fe9ecb8376955f0d9e8ac737faf223cdca1c3d3c"
        );
    }
}
