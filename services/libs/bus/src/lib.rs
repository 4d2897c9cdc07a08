//! The event bus and key-value store every role talks to, behind traits with two implementations:
//! NATS JetStream ([`nats::NatsBus`]) for distributed deployments and an in-process twin
//! ([`memory::MemoryBus`]) for the embedded default, which keeps its state in a store under the data
//! directory. Both must pass [`conformance`].

pub mod conformance;
pub mod memory;
pub mod nats;
mod store;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// Message headers. Trace context (`traceparent`) travels here.
pub type Headers = BTreeMap<String, String>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the bus at {url}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("publishing to {subject} failed")]
    Publish {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("consumer {durable} failed")]
    Consumer {
        durable: String,
        #[source]
        source: BoxError,
    },
    #[error("acknowledging a message failed")]
    Ack(#[source] BoxError),
    #[error("key-value bucket {bucket} failed")]
    Kv {
        bucket: String,
        #[source]
        source: BoxError,
    },
    #[error("invalid key {key:?}: keys may hold only letters, digits and - / _ = .")]
    InvalidKey { key: String },
    /// A conditional write found the key changed since the caller read it: another writer was first.
    #[error(
        "key {key:?} in bucket {bucket} is no longer at revision {expected}: {}",
        now_at(.current)
    )]
    WrongRevision {
        bucket: String,
        key: String,
        expected: u64,
        /// The revision the key holds now, `None` when it holds no value.
        current: Option<u64>,
    },
    /// The embedded bus cannot open or read its store.
    #[error("cannot open the bus store in {path}")]
    Store {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("the bus is closed")]
    Closed,
    #[error("the bus does not answer")]
    Unreachable(#[source] BoxError),
}

impl BusError {
    /// Whether the bus did not answer (it is down, restarting or out of reach) rather than refused:
    /// trying again once it is back can succeed.
    pub fn is_outage(&self) -> bool {
        match self {
            BusError::Unreachable(_) => true,
            BusError::Publish { source, .. } => nats::is_publish_outage(source.as_ref()),
            _ => false,
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub subject: String,
    /// De-duplication id (`Nats-Msg-Id`): a second publish with the same id inside the
    /// de-duplication window is accepted but not stored again. Switchboard uses `<ticket>.<stage>`.
    pub msg_id: Option<String>,
    pub headers: Headers,
    pub payload: Bytes,
}

/// How long JetStream keeps a replica's own consumer ([`Bus::replica_consumer`]) that nobody pulls
/// from: a replica pulls continuously while it runs, so only a stopped one's consumer goes idle.
pub const REPLICA_CONSUMER_IDLE: Duration = Duration::from_secs(300);

/// What a durable consumer reads and how.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, shared by every replica of a role so they split the work.
    pub durable: String,
    /// Subject filter, NATS wildcards allowed (`tickets.feedback.>`).
    pub filter: String,
    /// An unacknowledged delivery is redelivered after this long.
    pub ack_wait: Duration,
}

/// Acknowledgement of one delivery; implemented by each bus.
#[async_trait]
pub trait Acker: Send + Sync + Debug {
    async fn ack(&self) -> Result<(), BusError>;
    /// Negative acknowledgement: redeliver after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BusError>;
    /// Still working: restart the ack-wait timer.
    async fn in_progress(&self) -> Result<(), BusError>;
}

/// One delivery of one message to a consumer.
#[derive(Debug)]
pub struct Delivery {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// 1 on the first delivery, 2 on the first redelivery, and so on.
    pub attempt: u64,
    pub acker: Box<dyn Acker>,
}

#[async_trait]
pub trait Consumer: Send + Sync + Debug {
    /// Waits for the next delivery. Cancel-safe: dropping the future loses no message.
    async fn next(&self) -> Result<Delivery, BusError>;
    /// Messages matching the filter not yet acknowledged (waiting or in flight).
    async fn pending(&self) -> Result<u64, BusError>;
}

#[async_trait]
pub trait Bus: Send + Sync + Debug {
    /// Publishes and waits until the bus has stored the message.
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError>;
    /// Creates the durable consumer if missing, or binds to it.
    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError>;
    /// A consumer of this replica's own, named after `spec.durable` but shared with nobody: it reads
    /// every retained message matching the filter from the stream's start, and the bus forgets it
    /// once the replica stops (JetStream deletes it after [`REPLICA_CONSUMER_IDLE`] without pulls;
    /// the embedded bus neither stores it nor keeps it past the handle). For state derived from the
    /// stream, which every replica must hold whole and rebuild on start.
    async fn replica_consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError>;
    /// Messages the named durable consumer has not yet acknowledged (waiting or in flight), read
    /// without creating it: `None` while no such consumer exists.
    async fn backlog(&self, durable: &str) -> Result<Option<u64>, BusError>;
    /// Opens (creating if missing) a key-value bucket.
    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError>;
    /// Whether messages outlive this process. A volatile embedded bus is not, so shutdown must
    /// drain every consumer before exiting.
    fn durable(&self) -> bool;
    /// Whether the bus answers now, with a round trip: what `/readyz` asks.
    async fn reachable(&self) -> Result<(), BusError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Bytes,
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created {
        revision: u64,
    },
    /// The key already held a value; here it is.
    Exists(Entry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvChange {
    pub key: String,
    /// `None` when the key was deleted.
    pub value: Option<Bytes>,
    pub revision: u64,
}

#[async_trait]
pub trait Kv: Send + Sync + Debug {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BusError>;
    async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError>;
    /// Stores the value only if the key holds none; atomic across replicas.
    async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError>;
    /// Stores the value only while the key still holds the value stored at `expected_revision`,
    /// atomically across replicas: the compare-and-set of a read-modify-write, so of two writers
    /// that read the same revision exactly one succeeds. Returns the new revision;
    /// [`BusError::WrongRevision`] when the key holds another revision or none (a deleted key
    /// included: create it instead).
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_revision: u64,
    ) -> Result<u64, BusError>;
    async fn delete(&self, key: &str) -> Result<(), BusError>;
    /// Deletes the key only while it still holds the value stored at `revision`, atomically across
    /// replicas, so a writer racing the caller is never silently undone. Returns the revision of the
    /// delete itself (the one a watch reports for it); [`BusError::WrongRevision`] when the key holds
    /// another revision or none.
    async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError>;
    /// Every live key with its value.
    async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError>;
    /// The current value of every live key, then every change from then on.
    async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError>;
}

fn now_at(current: &Option<u64>) -> String {
    match current {
        Some(revision) => format!("it is at revision {revision}"),
        None => "it holds no value".to_owned(),
    }
}

/// Checks a key against the characters NATS KV accepts, so both implementations reject the same keys.
pub fn validate_key(key: &str) -> Result<(), BusError> {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidKey {
            key: key.to_owned(),
        })
    }
}
