//! The in-process twin of the JetStream bus, for the embedded default. It keeps the semantics
//! Switchboard relies on (one retained stream, de-duplication by message id, durable competing
//! consumers with ack-wait and nak delays, KV buckets with revisions and watches) so that code
//! tested here behaves the same on NATS.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::pin::pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::{self, BoxStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{
    Acker, Bus, BusError, Consumer, ConsumerSpec, Created, Delivery, Entry, Headers, Kv, KvChange,
    OutMessage, validate_key,
};

/// Retention when none is given: large enough for a busy day of tickets on one machine, small
/// enough to bound memory.
const DEFAULT_CAPACITY: usize = 100_000;
/// JetStream's default de-duplication window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The header JetStream stores the de-duplication id under; deliveries carry it, here as there.
const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// An in-process bus: one stream of every message, durable consumers and KV buckets, all lost
/// when the process exits.
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose stream keeps at most `max_messages`, dropping the oldest first (JetStream's
    /// limits retention).
    pub fn with_capacity(max_messages: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    log: Log::new(max_messages),
                    durables: HashMap::new(),
                }),
                buckets: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus").finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError> {
        check_headers(&msg)?;
        let mut state = lock(&self.shared.state);
        if state.log.append(msg) {
            state.wake_consumers_of_newest();
        }
        Ok(())
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        let mut state = lock(&self.shared.state);
        let first_seq = state.log.first_seq();
        let durable = state
            .durables
            .entry(spec.durable.clone())
            .or_insert_with(|| Durable::new(&spec, first_seq));
        Ok(Arc::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            durable: spec.durable,
            notify: Arc::clone(&durable.notify),
        }))
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        check_bucket_name(bucket)?;
        let mut buckets = lock(&self.shared.buckets);
        let kv = buckets
            .entry(bucket.to_owned())
            .or_insert_with(|| Arc::new(MemoryKv::new(bucket)));
        Ok(Arc::clone(kv) as Arc<dyn Kv>)
    }

    fn durable(&self) -> bool {
        false
    }

    /// In the process: it answers while the process does.
    async fn reachable(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the state
/// consistent before anything that could panic, so a panicked holder cannot have corrupted it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Rejects the headers NATS would reject, so a message that works embedded also works on NATS.
fn check_headers(msg: &OutMessage) -> Result<(), BusError> {
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| BusError::Publish {
        subject: msg.subject.clone(),
        source,
    };
    for (name, value) in &msg.headers {
        async_nats::HeaderName::from_str(name).map_err(|err| invalid(err.into()))?;
        async_nats::HeaderValue::from_str(value).map_err(|err| invalid(err.into()))?;
    }
    Ok(())
}

/// Rejects the bucket names NATS would reject, for the same reason as [`check_headers`].
fn check_bucket_name(bucket: &str) -> Result<(), BusError> {
    let valid = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(BusError::Kv {
            bucket: bucket.to_owned(),
            source: "bucket names may hold only letters, digits, _ and -".into(),
        })
    }
}

/// Whether `subject` matches `filter` with NATS wildcards: `*` is one token, a final `>` is one
/// or more tokens. An empty filter matches everything, as an unfiltered JetStream consumer does.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut tokens = subject.split('.');
    for pattern in filter.split('.') {
        match (pattern, tokens.next()) {
            (_, None) => return false,
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (pattern, Some(token)) if pattern == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

struct Shared {
    /// The stream and every durable consumer under one lock, so choosing the next delivery for
    /// one consumer handle is atomic against its competitors and against publishers.
    state: Mutex<State>,
    buckets: Mutex<HashMap<String, Arc<MemoryKv>>>,
}

struct State {
    log: Log,
    durables: HashMap<String, Durable>,
}

impl State {
    fn wake_consumers_of_newest(&self) {
        let Some(newest) = self.log.messages.back() else {
            return;
        };
        for durable in self.durables.values() {
            if subject_matches(&durable.filter, &newest.subject) {
                durable.notify.notify_waiters();
            }
        }
    }

    fn durable_mut(&mut self, name: &str) -> Result<&mut Durable, BusError> {
        self.durables
            .get_mut(name)
            .ok_or_else(|| durable_gone(name))
    }
}

/// Durables are never removed, so a handle's durable always exists; this only guards against
/// that changing.
fn durable_gone(name: &str) -> BusError {
    BusError::Consumer {
        durable: name.to_owned(),
        source: "durable consumer no longer exists".into(),
    }
}

struct Stored {
    seq: u64,
    subject: String,
    headers: Headers,
    payload: Bytes,
}

/// The stream: messages in sequence order, bounded by count, plus the de-duplication window.
struct Log {
    messages: VecDeque<Stored>,
    next_seq: u64,
    capacity: usize,
    seen_ids: HashMap<String, Instant>,
    /// Ids in arrival order, so expiring the window is a pop from the front.
    id_order: VecDeque<(Instant, String)>,
}

impl Log {
    fn new(capacity: usize) -> Self {
        Self {
            messages: VecDeque::new(),
            next_seq: 1,
            capacity,
            seen_ids: HashMap::new(),
            id_order: VecDeque::new(),
        }
    }

    /// Stores the message unless its id is a duplicate; returns whether it was stored.
    fn append(&mut self, msg: OutMessage) -> bool {
        let now = Instant::now();
        self.expire_ids(now);
        let mut headers = msg.headers;
        if let Some(id) = msg.msg_id {
            if self.seen_ids.contains_key(&id) {
                return false;
            }
            self.seen_ids.insert(id.clone(), now);
            self.id_order.push_back((now, id.clone()));
            headers.insert(MSG_ID_HEADER.to_owned(), id);
        }
        self.messages.push_back(Stored {
            seq: self.next_seq,
            subject: msg.subject,
            headers,
            payload: msg.payload,
        });
        self.next_seq += 1;
        while self.messages.len() > self.capacity {
            self.messages.pop_front();
        }
        true
    }

    fn expire_ids(&mut self, now: Instant) {
        while let Some((at, _)) = self.id_order.front() {
            if now.duration_since(*at) < DUPLICATE_WINDOW {
                break;
            }
            if let Some((_, id)) = self.id_order.pop_front() {
                self.seen_ids.remove(&id);
            }
        }
    }

    /// The oldest sequence still stored (or the next one, when the stream is empty).
    fn first_seq(&self) -> u64 {
        self.messages.front().map_or(self.next_seq, |m| m.seq)
    }

    fn get(&self, seq: u64) -> Option<&Stored> {
        let index = seq.checked_sub(self.first_seq())?;
        self.messages.get(usize::try_from(index).ok()?)
    }

    fn matching_from(&self, seq: u64, filter: &str) -> usize {
        let skip = seq.saturating_sub(self.first_seq());
        self.messages
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .filter(|m| subject_matches(filter, &m.subject))
            .count()
    }
}

/// A delivered message not yet acknowledged.
struct Unacked {
    /// How many times it has been delivered.
    deliveries: u64,
    /// When it becomes deliverable again: the ack-wait deadline while in flight, or the end of
    /// a nak delay.
    due: Instant,
}

struct Durable {
    filter: String,
    ack_wait: Duration,
    /// The next stream sequence to consider for a first delivery.
    cursor: u64,
    unacked: BTreeMap<u64, Unacked>,
    /// Woken when something may have become deliverable; shared by every handle.
    notify: Arc<Notify>,
}

enum Next<'a> {
    Ready(&'a Stored, u64),
    /// Nothing deliverable; retry at this deadline if one is set, or when notified.
    Wait(Option<Instant>),
}

impl Durable {
    fn new(spec: &ConsumerSpec, first_seq: u64) -> Self {
        Self {
            filter: spec.filter.clone(),
            ack_wait: spec.ack_wait,
            cursor: first_seq,
            unacked: BTreeMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Forgets deliveries whose message the stream has since dropped, as JetStream does.
    fn prune(&mut self, log: &Log) {
        self.unacked = self.unacked.split_off(&log.first_seq());
    }

    /// Picks the next delivery and its attempt number: first whatever redelivery has been due
    /// longest, then the next new matching message.
    fn take_next<'a>(&mut self, log: &'a Log, now: Instant) -> Next<'a> {
        self.prune(log);
        if let Some(redelivery) = self.take_due(log, now) {
            return Next::Ready(redelivery.0, redelivery.1);
        }
        self.cursor = self.cursor.max(log.first_seq());
        while let Some(msg) = log.get(self.cursor) {
            self.cursor += 1;
            if subject_matches(&self.filter, &msg.subject) {
                let due = now + self.ack_wait;
                self.unacked.insert(msg.seq, Unacked { deliveries: 1, due });
                return Next::Ready(msg, 1);
            }
        }
        Next::Wait(self.unacked.values().map(|u| u.due).min())
    }

    fn take_due<'a>(&mut self, log: &'a Log, now: Instant) -> Option<(&'a Stored, u64)> {
        let (&seq, unacked) = self
            .unacked
            .iter_mut()
            .filter(|(_, u)| u.due <= now)
            .min_by_key(|(_, u)| u.due)?;
        // After prune, every unacked sequence is still in the log.
        let msg = log.get(seq)?;
        unacked.deliveries += 1;
        unacked.due = now + self.ack_wait;
        Some((msg, unacked.deliveries))
    }

    fn pending(&mut self, log: &Log) -> u64 {
        self.prune(log);
        let waiting = log.matching_from(self.cursor, &self.filter);
        (self.unacked.len() + waiting) as u64
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    durable: String,
    notify: Arc<Notify>,
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl MemoryConsumer {
    /// Claims the next delivery, or says until when to wait. Claiming happens entirely under the
    /// lock with no await, which is what makes `next` cancel-safe.
    fn try_take(&self) -> Result<Result<Delivery, Option<Instant>>, BusError> {
        let mut state = lock(&self.shared.state);
        let State { log, durables } = &mut *state;
        let durable = durables
            .get_mut(&self.durable)
            .ok_or_else(|| durable_gone(&self.durable))?;
        Ok(match durable.take_next(log, Instant::now()) {
            Next::Wait(deadline) => Err(deadline),
            Next::Ready(msg, attempt) => Ok(Delivery {
                subject: msg.subject.clone(),
                headers: msg.headers.clone(),
                payload: msg.payload.clone(),
                attempt,
                acker: Box::new(MemoryAcker {
                    shared: Arc::clone(&self.shared),
                    durable: self.durable.clone(),
                    seq: msg.seq,
                }),
            }),
        })
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&self) -> Result<Delivery, BusError> {
        loop {
            // Registered before looking, so a publish between the look and the wait still wakes us.
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            match self.try_take()? {
                Ok(delivery) => return Ok(delivery),
                Err(Some(deadline)) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                Err(None) => notified.await,
            }
        }
    }

    async fn pending(&self) -> Result<u64, BusError> {
        let mut state = lock(&self.shared.state);
        let State { log, durables } = &mut *state;
        let durable = durables
            .get_mut(&self.durable)
            .ok_or_else(|| durable_gone(&self.durable))?;
        Ok(durable.pending(log))
    }
}

/// Acknowledges by stream sequence, as JetStream does: a late ack from an earlier delivery of the
/// same message still settles it.
struct MemoryAcker {
    shared: Arc<Shared>,
    durable: String,
    seq: u64,
}

impl fmt::Debug for MemoryAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAcker")
            .field("durable", &self.durable)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl MemoryAcker {
    /// Moves the message's redelivery time, if it is still unacknowledged.
    fn reschedule(&self, due: impl FnOnce(&Durable) -> Instant) -> Result<(), BusError> {
        let mut state = lock(&self.shared.state);
        let durable = state.durable_mut(&self.durable)?;
        let due = due(durable);
        if let Some(unacked) = durable.unacked.get_mut(&self.seq) {
            unacked.due = due;
            durable.notify.notify_waiters();
        }
        Ok(())
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let mut state = lock(&self.shared.state);
        state.durable_mut(&self.durable)?.unacked.remove(&self.seq);
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.reschedule(|_| Instant::now() + delay)
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.reschedule(|durable| Instant::now() + durable.ack_wait)
    }
}

struct MemoryKv {
    bucket: String,
    state: Mutex<KvState>,
}

#[derive(Default)]
struct KvState {
    revision: u64,
    entries: BTreeMap<String, Entry>,
    watchers: Vec<mpsc::UnboundedSender<KvChange>>,
}

impl KvState {
    /// Applies a put (`Some`) or delete (`None`) and tells every watcher. Deletes take a revision
    /// too, as NATS KV tombstones do.
    fn write(&mut self, key: &str, value: Option<Bytes>) -> u64 {
        self.revision += 1;
        let revision = self.revision;
        match &value {
            Some(value) => {
                let entry = Entry {
                    value: value.clone(),
                    revision,
                };
                self.entries.insert(key.to_owned(), entry);
            }
            None => {
                self.entries.remove(key);
            }
        }
        let change = KvChange {
            key: key.to_owned(),
            value,
            revision,
        };
        self.watchers
            .retain(|watcher| watcher.unbounded_send(change.clone()).is_ok());
        revision
    }
}

impl MemoryKv {
    fn new(bucket: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            state: Mutex::new(KvState::default()),
        }
    }
}

impl fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKv")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
        validate_key(key)?;
        Ok(lock(&self.state).entries.get(key).cloned())
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        validate_key(key)?;
        Ok(lock(&self.state).write(key, Some(value)))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError> {
        validate_key(key)?;
        let mut state = lock(&self.state);
        if let Some(existing) = state.entries.get(key) {
            return Ok(Created::Exists(existing.clone()));
        }
        let revision = state.write(key, Some(value));
        Ok(Created::Created { revision })
    }

    async fn delete(&self, key: &str) -> Result<(), BusError> {
        validate_key(key)?;
        lock(&self.state).write(key, None);
        Ok(())
    }

    async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError> {
        validate_key(key)?;
        // Compared and deleted under one lock: no write can land in between.
        let mut state = lock(&self.state);
        let current = state.entries.get(key).map(|entry| entry.revision);
        if current != Some(revision) {
            return Err(BusError::WrongRevision {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                expected: revision,
                current,
            });
        }
        Ok(state.write(key, None))
    }

    async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError> {
        let state = lock(&self.state);
        Ok(state
            .entries
            .iter()
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect())
    }

    async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError> {
        // Snapshot and subscription under one lock: no change can fall between them.
        let mut state = lock(&self.state);
        let snapshot: Vec<KvChange> = state
            .entries
            .iter()
            .map(|(key, entry)| KvChange {
                key: key.clone(),
                value: Some(entry.value.clone()),
                revision: entry.revision,
            })
            .collect();
        let (sender, receiver) = mpsc::unbounded();
        state.watchers.push(sender);
        Ok(stream::iter(snapshot).chain(receiver).map(Ok).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn wildcards_match_like_nats() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.b", "a.b.c", false),
            ("a.*.c", "a.x.c", true),
            ("a.*.c", "a.x.y.c", false),
            ("a.*", "a", false),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c.d", true),
            ("a.>", "a", false),
            ("*.>", "a.b", true),
            (">", "a", true),
            ("", "anything.at.all", true),
            ("a.b", "a.bc", false),
        ];
        for (filter, subject, expected) in cases {
            assert_eq!(
                subject_matches(filter, subject),
                expected,
                "{filter} vs {subject}"
            );
        }
    }
}
