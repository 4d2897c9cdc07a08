//! Who may publish on the pipeline's internal subjects. Every message a Switchboard process publishes
//! carries an HMAC-SHA256 of its subject and payload under a key only the roles hold ([`SigningBus`]),
//! and every role checks it before handling a message ([`Signer::verify`], in the runner), so a message
//! that something else put on an internal subject (a connector, a stray client, a copy of the binary
//! without the key) is rejected and counted instead of handled.
//!
//! NATS permissions (the chart's `nats.auth`) keep other clients off those subjects in the first place;
//! the signature is what a role can check for itself, and it holds on a server without permissions too.
//! Connectors publish unsigned CloudEvents on `<prefix>.inbound.<channel>`: those subjects are open.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use switchboard_bus::{Bus, BusError, Consumer, ConsumerSpec, Headers, Kv, OutMessage};

/// The header holding a message's signature: `v1=` and the URL-safe base64 of the HMAC.
pub const SIGNATURE_HEADER: &str = "Switchboard-Signature";
const VERSION: &str = "v1=";
/// The shortest key accepted: 32 bytes, the strength of the HMAC-SHA256 it keys.
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("a bus signing key must be at least {MIN_KEY_LEN} bytes; this one is {len}")]
pub struct KeyTooShort {
    pub len: usize,
}

/// Why a message on an internal subject was not taken, as its dead letter and log line say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the message is not signed: it did not come from a Switchboard role")]
    Unsigned,
    #[error(
        "the message's signature does not match its subject and payload under the roles' key: it did not come from a Switchboard role, or was changed on the way"
    )]
    BadSignature,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature => "bad_signature",
        }
    }
}

/// The roles' signing key, and during a key change the one before it, still accepted so that messages
/// signed before every process had the new key are not rejected.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
    previous: Option<hmac::Key>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(key: &[u8], previous: Option<&[u8]>) -> Result<Self, KeyTooShort> {
        let key_of = |bytes: &[u8]| {
            if bytes.len() < MIN_KEY_LEN {
                return Err(KeyTooShort { len: bytes.len() });
            }
            Ok(hmac::Key::new(hmac::HMAC_SHA256, bytes))
        };
        Ok(Self {
            key: key_of(key)?,
            previous: previous.map(key_of).transpose()?,
        })
    }

    /// The value of [`SIGNATURE_HEADER`] for `payload` on `subject`.
    pub fn sign(&self, subject: &str, payload: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_bytes(subject, payload));
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `headers` carry a signature of `payload` on `subject` under the key or the previous one.
    pub fn verify(
        &self,
        subject: &str,
        headers: &Headers,
        payload: &[u8],
    ) -> Result<(), Rejection> {
        let signature = headers.get(SIGNATURE_HEADER).ok_or(Rejection::Unsigned)?;
        let tag = signature
            .strip_prefix(VERSION)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .ok_or(Rejection::BadSignature)?;
        let signed = signed_bytes(subject, payload);
        std::iter::once(&self.key)
            .chain(self.previous.as_ref())
            .any(|key| hmac::verify(key, &signed, &tag).is_ok())
            .then_some(())
            .ok_or(Rejection::BadSignature)
    }
}

/// What the HMAC covers: the subject's length, the subject, the payload. The length keeps the two
/// apart, so no subject and payload sign the same bytes as another split of them.
fn signed_bytes(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + subject.len() + payload.len());
    bytes.extend_from_slice(&(subject.len() as u64).to_be_bytes());
    bytes.extend_from_slice(subject.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A bus that signs every message published through it; everything else goes to the bus it wraps.
/// Wrapping the bus, not each publisher, means nothing a process publishes can leave unsigned.
#[derive(Debug)]
pub struct SigningBus {
    inner: Arc<dyn Bus>,
    signer: Signer,
}

impl SigningBus {
    pub fn new(inner: Arc<dyn Bus>, signer: Signer) -> Self {
        Self { inner, signer }
    }
}

#[async_trait]
impl Bus for SigningBus {
    async fn publish(&self, mut msg: OutMessage) -> Result<(), BusError> {
        let signature = self.signer.sign(&msg.subject, &msg.payload);
        msg.headers.insert(SIGNATURE_HEADER.to_owned(), signature);
        self.inner.publish(msg).await
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        self.inner.consumer(spec).await
    }

    async fn replica_consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        self.inner.replica_consumer(spec).await
    }

    async fn backlog(&self, durable: &str) -> Result<Option<u64>, BusError> {
        self.inner.backlog(durable).await
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        self.inner.kv(bucket).await
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    async fn reachable(&self) -> Result<(), BusError> {
        self.inner.reachable().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn signed(signer: &Signer, subject: &str, payload: &[u8]) -> Headers {
        Headers::from([(SIGNATURE_HEADER.to_owned(), signer.sign(subject, payload))])
    }

    #[test]
    fn a_signature_holds_for_its_subject_and_payload_only() {
        let signer = Signer::new(KEY, None).unwrap();
        let headers = signed(&signer, "t.received", b"ticket");
        assert_eq!(signer.verify("t.received", &headers, b"ticket"), Ok(()));
        assert_eq!(
            signer.verify("t.received", &headers, b"ticket!"),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            signer.verify("t.routed", &headers, b"ticket"),
            Err(Rejection::BadSignature),
            "a signed message moved to another subject"
        );
        // The length prefix: "t.r" + "eceivedticket" is another message than "t.received" + "ticket".
        assert_eq!(
            signer.verify("t.r", &headers, b"eceivedticket"),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn unsigned_garbled_and_foreign_signatures_are_told_apart() {
        let signer = Signer::new(KEY, None).unwrap();
        let stranger = Signer::new(OTHER, None).unwrap();
        assert_eq!(
            signer.verify("t.received", &Headers::new(), b"x"),
            Err(Rejection::Unsigned)
        );
        for garbled in ["", "v1=", "v1=***", "v2=abc", "abc"] {
            let headers = Headers::from([(SIGNATURE_HEADER.to_owned(), garbled.to_owned())]);
            assert_eq!(
                signer.verify("t.received", &headers, b"x"),
                Err(Rejection::BadSignature),
                "{garbled:?}"
            );
        }
        let foreign = signed(&stranger, "t.received", b"x");
        assert_eq!(
            signer.verify("t.received", &foreign, b"x"),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn during_a_key_change_the_previous_key_is_still_accepted() {
        let old = Signer::new(OTHER, None).unwrap();
        let new = Signer::new(KEY, Some(OTHER)).unwrap();
        let by_old = signed(&old, "t.parsed", b"p");
        assert_eq!(new.verify("t.parsed", &by_old, b"p"), Ok(()));
        let by_new = signed(&new, "t.parsed", b"p");
        assert_eq!(
            old.verify("t.parsed", &by_new, b"p"),
            Err(Rejection::BadSignature),
            "new signatures are made with the new key"
        );
    }

    #[test]
    fn short_keys_are_refused_with_their_length() {
        let err = Signer::new(b"short", None).unwrap_err();
        assert_eq!(err.len, 5);
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        assert!(Signer::new(KEY, Some(b"short")).is_err());
    }
}
