//! The one path every ticket takes into the pipeline, whichever door it came through: validate, claim the
//! idempotency key, normalise and mask, build the RECEIVED envelope.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use switchboard_bus::{Created, Kv};
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::{Metrics, Outbound, Publisher, Subjects, error_chain, now_ms};
use uuid::Uuid;

use crate::config::IntakeConfig;
use crate::error::IntakeError;
use crate::validate::{Submission, Valid, validate};
use switchboard_text::pii::Masker;

#[derive(Debug)]
pub struct Intake {
    publisher: Publisher,
    subjects: Subjects,
    /// Idempotency key hash -> the id of the first ticket submitted with it.
    idempotency: Arc<dyn Kv>,
    metrics: Metrics,
    config: IntakeConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub ticket_id: String,
    /// The idempotency key was seen before: `ticket_id` is the first submission's, and nothing new was
    /// published.
    pub duplicate: bool,
}

/// The outcome of [`Intake::admit`]: what to answer, and what the caller must publish.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub submitted: Submitted,
    pub outbound: Option<Outbound>,
}

/// What the idempotency store said about a submission.
enum Claim {
    /// A new ticket; holds the KV key claimed for it, to release if the ticket never gets published.
    Fresh(Option<String>),
    /// An earlier submission with the same key became this ticket.
    Taken(String),
}

impl Intake {
    pub fn new(
        publisher: Publisher,
        subjects: Subjects,
        idempotency: Arc<dyn Kv>,
        metrics: Metrics,
        config: IntakeConfig,
    ) -> Self {
        Self {
            publisher,
            subjects,
            idempotency,
            metrics,
            config,
        }
    }

    pub fn config(&self) -> &IntakeConfig {
        &self.config
    }

    /// Validates, masks and publishes one ticket on the RECEIVED subject. With an idempotency key, a
    /// resubmission returns the first ticket's id (`duplicate: true`) and publishes nothing.
    pub async fn submit(&self, req: Submission) -> Result<Submitted, IntakeError> {
        let valid = self.validate(req)?;
        let id = new_ticket_id();
        let key = match self.claim(&valid, &id).await? {
            Claim::Taken(first) => {
                return Ok(Submitted {
                    ticket_id: first,
                    duplicate: true,
                });
            }
            Claim::Fresh(key) => key,
        };
        let ticket = self.ticket(valid, id);
        if let Err(e) = self
            .publisher
            .publish(Outbound::ticket(&self.subjects, &ticket))
            .await
        {
            if let Some(key) = key {
                self.release(&key).await;
            }
            let e = IntakeError::Publish(e);
            tracing::warn!(error = %error_chain(&e), channel = %ticket.channel, "intake could not publish a ticket");
            return Err(e);
        }
        tracing::info!(ticket_id = %ticket.id, channel = %ticket.channel, "ticket received");
        Ok(Submitted {
            ticket_id: ticket.id,
            duplicate: false,
        })
    }

    /// [`Intake::submit`] for callers that publish themselves (the NATS runner publishes a handler's
    /// outputs, and acks the input only after).
    ///
    /// Such a caller cannot release the key when its publish fails; it redelivers instead. So on a
    /// redelivery a taken key is presumed to be this message's own claim from an attempt whose publish may
    /// have failed: the ticket is rebuilt under the first id and returned again. Its message id is the
    /// first one's, so if that publish did land, the stream drops this one as a duplicate.
    pub(crate) async fn admit(
        &self,
        req: Submission,
        redelivered: bool,
    ) -> Result<Admitted, IntakeError> {
        let valid = self.validate(req)?;
        let id = new_ticket_id();
        let (id, duplicate) = match self.claim(&valid, &id).await? {
            Claim::Fresh(_) => (id, false),
            Claim::Taken(first) if redelivered => (first, true),
            Claim::Taken(first) => {
                let submitted = Submitted {
                    ticket_id: first,
                    duplicate: true,
                };
                return Ok(Admitted {
                    submitted,
                    outbound: None,
                });
            }
        };
        let ticket = self.ticket(valid, id);
        let outbound = Some(Outbound::ticket(&self.subjects, &ticket));
        Ok(Admitted {
            submitted: Submitted {
                ticket_id: ticket.id,
                duplicate,
            },
            outbound,
        })
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

    async fn claim(&self, valid: &Valid, ticket_id: &str) -> Result<Claim, IntakeError> {
        let Some(key) = &valid.idempotency_key else {
            return Ok(Claim::Fresh(None));
        };
        let kv_key = idempotency_kv_key(&valid.channel, key);
        let created = self
            .idempotency
            .create(&kv_key, Bytes::from(ticket_id.to_owned()))
            .await
            .map_err(IntakeError::Idempotency)?;
        Ok(match created {
            Created::Created { .. } => Claim::Fresh(Some(kv_key)),
            Created::Exists(entry) => {
                Claim::Taken(String::from_utf8_lossy(&entry.value).into_owned())
            }
        })
    }

    /// Frees a key whose ticket was never published, so the client's retry is not taken for a duplicate.
    async fn release(&self, kv_key: &str) {
        if let Err(e) = self.idempotency.delete(kv_key).await {
            // The publish error is what the caller needs to see; this one only makes its retry look like
            // a duplicate of a ticket that does not exist, which an operator should hear about.
            tracing::warn!(
                error = %error_chain(&e),
                key = kv_key,
                "could not release an idempotency key after a failed publish"
            );
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
