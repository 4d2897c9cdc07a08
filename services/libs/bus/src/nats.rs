//! The bus on NATS JetStream, for distributed deployments. Written against nats-server 2.9 (the
//! Debian package): one `filter_subject` per consumer, no multi-filter consumers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::message::{AckKind, Acker as NatsMessageAcker};
use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, future};
use tokio::sync::Mutex;

mod puller;

use puller::Puller;

use crate::{
    Acker, Bus, BusError, Consumer, ConsumerSpec, Created, Delivery, Entry, Headers, Kv, KvChange,
    OutMessage, validate_key,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many times `create` retries when the key it found existing is gone before it can read it.
const CREATE_ATTEMPTS: usize = 3;
/// The KV wildcard for every key in a bucket.
const ALL_KEYS: &str = ">";
/// The header and value that mark a KV record as a delete (a tombstone), as async-nats writes them.
const KV_OPERATION: &str = "KV-Operation";
const KV_OPERATION_DELETE: &str = "DEL";

/// Where Switchboard's processes receive replies (request answers, publish acknowledgements): a
/// prefix of their own rather than NATS's `_INBOX`, so a server can let connectors subscribe to their
/// own replies under `_INBOX.>` without letting them read the roles' (KV reads of accounts and rules).
pub const INBOX_PREFIX: &str = "_SWITCHBOARD_INBOX";

/// A NATS user and password; the password is never printed.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where the bus lives and how its stream is shaped.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// Who to connect as; `None` for a server without authorization.
    pub credentials: Option<Credentials>,
    /// The JetStream stream holding every Switchboard subject.
    pub stream: String,
    pub subjects: Vec<String>,
    /// KV buckets are named `<kv_prefix>_<bucket>`, so deployments sharing a server stay apart.
    pub kv_prefix: String,
    pub replicas: usize,
    /// How long the stream keeps messages; it is the audit log of every decision.
    pub max_age: Duration,
    /// A publish repeating a `Nats-Msg-Id` seen this recently is not stored again.
    pub duplicate_window: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            credentials: None,
            stream: "SWITCHBOARD".to_owned(),
            subjects: vec!["tickets.>".to_owned()],
            kv_prefix: "switchboard".to_owned(),
            replicas: 1,
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Why setting the bus up failed after the connection was made; the source of
/// [`BusError::Connect`].
#[derive(Debug, thiserror::Error)]
#[error("cannot create or update stream {stream}")]
struct StreamSetupError {
    stream: String,
    #[source]
    source: jetstream::context::CreateStreamError,
}

#[derive(Debug, Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    stream: String,
    kv_prefix: String,
    replicas: usize,
}

impl NatsBus {
    /// Connects and creates or updates the stream, so every role can start in any order.
    pub async fn connect(config: NatsConfig) -> Result<Self, BusError> {
        let connect_error = |source: BoxError| BusError::Connect {
            url: config.url.clone(),
            source,
        };
        let mut options = async_nats::ConnectOptions::new().custom_inbox_prefix(INBOX_PREFIX);
        if let Some(Credentials { user, password }) = config.credentials.clone() {
            options = options.user_and_password(user, password);
        }
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|err| connect_error(err.into()))?;
        let js = jetstream::new(client);
        js.create_or_update_stream(stream::Config {
            name: config.stream.clone(),
            subjects: config.subjects.clone(),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: config.max_age,
            duplicate_window: config.duplicate_window,
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|source| {
            let stream = config.stream.clone();
            connect_error(StreamSetupError { stream, source }.into())
        })?;
        Ok(Self {
            js,
            stream: config.stream,
            kv_prefix: config.kv_prefix,
            replicas: config.replicas,
        })
    }

    async fn get_or_create_consumer(&self, spec: &ConsumerSpec) -> Result<PullConsumer, BusError> {
        if let Ok(consumer) = self
            .js
            .get_consumer_from_stream(&spec.durable, &self.stream)
            .await
        {
            return Ok(consumer);
        }
        let config = pull::Config {
            durable_name: Some(spec.durable.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            filter_subject: spec.filter.clone(),
            // Unbounded: callers dead-letter after their own bound, so the server never drops one.
            max_deliver: -1,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        // Creating is create-or-update with the same config, so a replica racing us is harmless.
        self.js
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|err| BusError::Consumer {
                durable: spec.durable.clone(),
                source: err.into(),
            })
    }

    async fn open_bucket(&self, name: &str) -> Result<kv::Store, BusError> {
        if let Ok(store) = self.js.get_key_value(name).await {
            return Ok(store);
        }
        // Not through create_key_value: it first asks for the account info, which async-nats
        // 0.51 cannot parse from nats-server 2.9. A bucket is only a stream of a known shape, and
        // creating an identical stream twice succeeds, so a replica racing us is harmless.
        let created = self
            .js
            .create_stream(bucket_stream(name, self.replicas))
            .await;
        self.js
            .get_key_value(name)
            .await
            .map_err(|opened| BusError::Kv {
                bucket: name.to_owned(),
                source: match created {
                    Err(create) => create.into(),
                    Ok(_) => opened.into(),
                },
            })
    }
}

/// The stream behind a KV bucket, shaped as async-nats shapes it (history 1).
fn bucket_stream(name: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Whether a failed publish is the server not answering: no acknowledgement in time, the connection
/// gone, or no JetStream to store it (no responders, as while a restarted server recovers its streams).
pub(crate) fn is_publish_outage(source: &(dyn std::error::Error + 'static)) -> bool {
    source
        .downcast_ref::<jetstream::context::PublishError>()
        .is_some_and(|e| {
            matches!(
                e.kind(),
                PublishErrorKind::TimedOut
                    | PublishErrorKind::BrokenPipe
                    | PublishErrorKind::StreamNotFound
            )
        })
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError> {
        let headers = header_map(&msg.headers, msg.msg_id.as_deref());
        let OutMessage {
            subject, payload, ..
        } = msg;
        let fail = |source: BoxError| BusError::Publish {
            subject: subject.clone(),
            source,
        };
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers.map_err(fail)?, payload)
            .await
            .map_err(|err| fail(err.into()))?;
        ack.await.map_err(|err| fail(err.into()))?;
        Ok(())
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        let consumer = self.get_or_create_consumer(&spec).await?;
        Ok(Arc::new(NatsConsumer {
            durable: spec.durable,
            stream: self.stream.clone(),
            js: self.js.clone(),
            consumer,
            puller: Mutex::new(None),
        }))
    }

    async fn replica_consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        let name = format!("{}-{}", spec.durable, unique_suffix());
        let config = pull::Config {
            name: Some(name.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            filter_subject: spec.filter.clone(),
            max_deliver: -1,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: crate::REPLICA_CONSUMER_IDLE,
            ..Default::default()
        };
        let consumer = self
            .js
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|err| BusError::Consumer {
                durable: name.clone(),
                source: err.into(),
            })?;
        Ok(Arc::new(NatsConsumer {
            durable: name,
            stream: self.stream.clone(),
            js: self.js.clone(),
            consumer,
            puller: Mutex::new(None),
        }))
    }

    async fn backlog(&self, durable: &str) -> Result<Option<u64>, BusError> {
        let failed = |source: BoxError| BusError::Consumer {
            durable: durable.to_owned(),
            source,
        };
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| failed(e.into()))?;
        match stream.consumer_info(durable).await {
            Ok(info) => Ok(Some(info.num_pending + info.num_ack_pending as u64)),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e.into())),
        }
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        let name = format!("{}_{}", self.kv_prefix, bucket);
        let store = self.open_bucket(&name).await?;
        Ok(Arc::new(NatsKv {
            name,
            store,
            js: self.js.clone(),
        }))
    }

    fn durable(&self) -> bool {
        true
    }

    async fn reachable(&self) -> Result<(), BusError> {
        self.js
            .get_stream(&self.stream)
            .await
            .map(|_| ())
            .map_err(|e| BusError::Unreachable(e.into()))
    }
}

/// Builds NATS headers, rejecting names and values NATS cannot carry instead of panicking on them.
fn header_map(headers: &Headers, msg_id: Option<&str>) -> Result<HeaderMap, BoxError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(HeaderName::from_str(name)?, HeaderValue::from_str(value)?);
    }
    if let Some(id) = msg_id {
        map.insert(
            async_nats::header::NATS_MESSAGE_ID,
            HeaderValue::from_str(id)?,
        );
    }
    Ok(map)
}

fn headers_of(message: &async_nats::Message) -> Headers {
    let Some(headers) = &message.headers else {
        return Headers::new();
    };
    headers
        .iter()
        .filter_map(|(name, values)| {
            let value = values.last()?;
            Some((name.to_string(), value.as_str().to_owned()))
        })
        .collect()
}

/// A name part no other replica picks: the clock and the process's random hash keys, in hex (consumer
/// names may not hold `.`, `*` or `>`).
fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

struct NatsConsumer {
    durable: String,
    stream: String,
    js: jetstream::Context,
    consumer: PullConsumer,
    /// One puller per handle, opened on first use. Behind an async mutex so that a cancelled
    /// `next` leaves a message that arrives later in its subscription for the next call.
    puller: Mutex<Option<Puller>>,
}

impl fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl NatsConsumer {
    fn error(&self, source: BoxError) -> BusError {
        BusError::Consumer {
            durable: self.durable.clone(),
            source,
        }
    }

    fn delivery(&self, message: async_nats::Message) -> Result<Delivery, BusError> {
        let message = jetstream::Message {
            message,
            context: self.js.clone(),
        };
        let delivered = message.info().map_err(|err| self.error(err))?.delivered;
        let (message, acker) = message.split();
        Ok(Delivery {
            subject: message.subject.to_string(),
            headers: headers_of(&message),
            payload: message.payload,
            // The server counts from 1; a nonsensical count reads as a first delivery.
            attempt: u64::try_from(delivered).unwrap_or(1),
            acker: Box::new(NatsAcker(acker)),
        })
    }
}

#[async_trait]
impl Consumer for NatsConsumer {
    async fn next(&self) -> Result<Delivery, BusError> {
        let mut guard = self.puller.lock().await;
        let puller = match &mut *guard {
            Some(puller) => puller,
            slot @ None => slot.insert(
                Puller::open(self.js.client(), &self.stream, &self.durable)
                    .await
                    .map_err(|err| self.error(err))?,
            ),
        };
        match puller.next().await {
            Ok(message) => self.delivery(message),
            // Start afresh on the next call: the subscription may be unusable after an error.
            Err(err) => {
                *guard = None;
                Err(self.error(err))
            }
        }
    }

    async fn pending(&self) -> Result<u64, BusError> {
        let info = self
            .consumer
            .get_info()
            .await
            .map_err(|err| self.error(err.into()))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }
}

/// Each acknowledgement waits for the server's confirmation, so once it returns the server has
/// applied it (a stage acks only after its output is stored; an ack lost on the way would mean
/// a redelivery).
struct NatsAcker(NatsMessageAcker);

impl fmt::Debug for NatsAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAcker").finish_non_exhaustive()
    }
}

impl NatsAcker {
    async fn send(&self, kind: AckKind) -> Result<(), BusError> {
        self.0.double_ack_with(kind).await.map_err(BusError::Ack)
    }
}

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.send(AckKind::Ack).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.send(AckKind::Nak(Some(delay))).await
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.send(AckKind::Progress).await
    }
}

#[derive(Debug)]
struct NatsKv {
    /// The full bucket name, prefix included, for errors.
    name: String,
    store: kv::Store,
    /// For the conditional delete, which publishes to the bucket's stream itself.
    js: jetstream::Context,
}

impl NatsKv {
    fn error(&self, source: impl Into<BoxError>) -> BusError {
        BusError::Kv {
            bucket: self.name.clone(),
            source: source.into(),
        }
    }
}

fn change_of(entry: kv::Entry) -> KvChange {
    let value = match entry.operation {
        Operation::Put => Some(entry.value),
        Operation::Delete | Operation::Purge => None,
    };
    KvChange {
        key: entry.key,
        value,
        revision: entry.revision,
    }
}

#[async_trait]
impl Kv for NatsKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
        validate_key(key)?;
        let entry = self.store.entry(key).await.map_err(|err| self.error(err))?;
        Ok(entry
            .filter(|entry| entry.operation == Operation::Put)
            .map(|entry| Entry {
                value: entry.value,
                revision: entry.revision,
            }))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        validate_key(key)?;
        self.store
            .put(key, value)
            .await
            .map_err(|err| self.error(err))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError> {
        validate_key(key)?;
        let mut attempts = 0;
        loop {
            let err = match self.store.create(key, value.clone()).await {
                Ok(revision) => return Ok(Created::Created { revision }),
                Err(err) => err,
            };
            attempts += 1;
            if err.kind() != CreateErrorKind::AlreadyExists || attempts == CREATE_ATTEMPTS {
                return Err(self.error(err));
            }
            // A delete may land between the failed create and this read; then try again.
            if let Some(entry) = self.get(key).await? {
                return Ok(Created::Exists(entry));
            }
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_revision: u64,
    ) -> Result<u64, BusError> {
        validate_key(key)?;
        let wrong = |current: Option<u64>| BusError::WrongRevision {
            bucket: self.name.clone(),
            key: key.to_owned(),
            expected: expected_revision,
            current,
        };
        // The server compares the key's last record, tombstones included, and takes revision 0 for
        // "no record": it would write over a tombstone at the expected revision, or create a key
        // that never held one. The key holds no value either way, so both are refused here; had a
        // write followed this read, the server would refuse the update below anyway.
        let last = self.store.entry(key).await.map_err(|err| self.error(err))?;
        match last {
            None => return Err(wrong(None)),
            Some(last)
                if last.revision == expected_revision && last.operation != Operation::Put =>
            {
                return Err(wrong(None));
            }
            Some(_) => {}
        }
        match self.store.update(key, value, expected_revision).await {
            Ok(revision) => Ok(revision),
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                // Read after the refusal, so only to tell the caller what won.
                Err(wrong(self.get(key).await?.map(|entry| entry.revision)))
            }
            Err(err) => Err(self.error(err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BusError> {
        validate_key(key)?;
        self.store.delete(key).await.map_err(|err| self.error(err))
    }

    async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError> {
        validate_key(key)?;
        let wrong = |current: Option<u64>| BusError::WrongRevision {
            bucket: self.name.clone(),
            key: key.to_owned(),
            expected: revision,
            current,
        };
        // The server compares the key's last record, tombstones included, so a tombstone at
        // `revision` would be deleted again. Refused here instead, as a key holding no value: had a
        // write followed this read, the server would refuse the delete below anyway.
        let last = self.store.entry(key).await.map_err(|err| self.error(err))?;
        if let Some(last) = last.filter(|last| last.revision == revision)
            && last.operation != Operation::Put
        {
            return Err(wrong(None));
        }
        // The tombstone `Store::delete_expect_revision` writes, written here because that method
        // drops the server's ack, and with it the tombstone's revision. The bucket came from a
        // context on the default API prefix, so its subjects need no JetStream prefix.
        let mut headers = HeaderMap::new();
        headers.insert(KV_OPERATION, KV_OPERATION_DELETE);
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            HeaderValue::from(revision),
        );
        let prefix = self.store.put_prefix.as_ref().unwrap_or(&self.store.prefix);
        let ack = self
            .js
            .publish_with_headers(format!("{prefix}{key}"), headers, Bytes::new())
            .await
            .map_err(|err| self.error(err))?;
        match ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                // Read after the refusal, so only to tell the caller what won.
                Err(wrong(self.get(key).await?.map(|entry| entry.revision)))
            }
            Err(err) => Err(self.error(err)),
        }
    }

    async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError> {
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|err| self.error(err))?
            .try_collect()
            .await
            .map_err(|err| self.error(err))?;
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            // A key deleted since it was listed is simply no longer an entry.
            if let Some(entry) = self.get(&key).await? {
                entries.push((key, entry));
            }
        }
        Ok(entries)
    }

    async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError> {
        // The replay repeats the last record of every key, tombstones included, but the snapshot
        // promises live keys only. Every tombstone at or below the bucket's last revision before
        // the watch began is replay; a live delete always comes later, so none is dropped.
        let info = self
            .store
            .stream
            .get_info()
            .await
            .map_err(|err| self.error(err))?;
        let replayed_up_to = info.state.last_sequence;
        // watch_all would deliver new changes only; with history, it starts with current values.
        let watch = self
            .store
            .watch_with_history(ALL_KEYS)
            .await
            .map_err(|err| self.error(err))?;
        let bucket = self.name.clone();
        let changes = watch.filter_map(move |item| {
            let change = match item {
                Ok(entry) => {
                    let change = change_of(entry);
                    let replayed_tombstone =
                        change.value.is_none() && change.revision <= replayed_up_to;
                    (!replayed_tombstone).then_some(Ok(change))
                }
                Err(err) => Some(Err(BusError::Kv {
                    bucket: bucket.clone(),
                    source: err.into(),
                })),
            };
            future::ready(change)
        });
        Ok(changes.boxed())
    }
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::context::PublishError;

    use super::*;

    fn failed(kind: PublishErrorKind) -> BusError {
        BusError::Publish {
            subject: "t.parsed".into(),
            source: PublishError::new(kind).into(),
        }
    }

    #[test]
    fn a_publish_the_server_did_not_answer_is_an_outage_and_a_refused_one_is_not() {
        for kind in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::StreamNotFound,
        ] {
            assert!(failed(kind).is_outage(), "{kind:?}");
        }
        for kind in [
            PublishErrorKind::MaxPayloadExceeded,
            PublishErrorKind::WrongLastSequence,
            PublishErrorKind::Other,
        ] {
            assert!(!failed(kind).is_outage(), "{kind:?}");
        }
        assert!(BusError::Unreachable("gone".into()).is_outage());
        assert!(!BusError::Closed.is_outage());
    }
}
