//! The in-process twin of the JetStream bus, for the embedded default. It keeps the semantics
//! Switchboard relies on (one retained stream, de-duplication by message id, durable competing
//! consumers with ack-wait and nak delays, KV buckets with revisions and watches) so that code
//! tested here behaves the same on NATS.
//!
//! Opened on a directory ([`MemoryBus::open`]) it records every change in a [`Store`] and returns
//! from a call only once the store holds what the call changed or saw, and reads the store back when
//! opened again: the embedded default keeps its tickets, positions and buckets across a restart or
//! a crash. Built with [`MemoryBus::new`] it keeps nothing, for tests. Either way the state the bus
//! works from is the one in memory; the store is only written, and read on open.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::pin::pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::{self, BoxStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::{Loaded, Op, Stopped, Store};
use crate::{
    Acker, BoxError, Bus, BusError, Consumer, ConsumerSpec, Created, Delivery, Entry, Headers, Kv,
    KvChange, OutMessage, validate_key,
};

/// Retention when none is given: large enough for a busy day of tickets on one machine, small
/// enough to bound memory.
const DEFAULT_CAPACITY: usize = 100_000;
/// JetStream's default de-duplication window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The header JetStream stores the de-duplication id under; deliveries carry it, here as there.
const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// An in-process bus: one stream of every message, durable consumers and KV buckets, kept in a
/// store when opened on a directory and lost with the process otherwise.
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A volatile bus whose stream keeps at most `max_messages`, dropping the oldest first
    /// (JetStream's limits retention).
    pub fn with_capacity(max_messages: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    log: Log::new(max_messages),
                    durables: HashMap::new(),
                }),
                buckets: Mutex::new(HashMap::new()),
                journal: Journal(None),
                replicas: AtomicU64::new(0),
            }),
        }
    }

    /// A persistent bus in `dir` (created if missing), holding what the last bus there stored:
    /// unacknowledged messages, consumer positions, the de-duplication window and every KV bucket.
    /// One bus at a time may have a directory open.
    pub fn open(dir: &Path) -> Result<Self, BusError> {
        Self::open_with_capacity(dir, DEFAULT_CAPACITY)
    }

    /// [`MemoryBus::open`] with the retention of [`MemoryBus::with_capacity`]; messages beyond it
    /// leave the store too.
    pub fn open_with_capacity(dir: &Path, max_messages: usize) -> Result<Self, BusError> {
        let failed = |source: BoxError| BusError::Store {
            path: dir.display().to_string(),
            source,
        };
        let (store, loaded) = Store::open(dir).map_err(|err| failed(err.into()))?;
        tracing::debug!(path = %store.path().display(), "opened the bus store");
        let journal = Journal(Some(Arc::new(store)));
        let state =
            State::restore(&loaded, max_messages, &journal).map_err(|err| failed(err.into()))?;
        let buckets = loaded
            .buckets
            .into_iter()
            .map(|bucket| {
                let kv = MemoryKv {
                    bucket: bucket.name.clone(),
                    journal: journal.clone(),
                    state: Mutex::new(KvState {
                        revision: bucket.revision,
                        entries: bucket.entries.into_iter().collect(),
                        watchers: Vec::new(),
                        written: 0,
                    }),
                };
                (bucket.name, Arc::new(kv))
            })
            .collect();
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                buckets: Mutex::new(buckets),
                journal,
                replicas: AtomicU64::new(0),
            }),
        })
    }
}

/// The bus's store, when it has one. Every change is recorded under the lock that guards what it
/// changes, before the change is made in memory, so a refused write changes nothing; and every
/// call waits, after releasing the lock, until the store holds what the call changed or saw, so
/// the store never runs behind what callers have been told.
#[derive(Clone)]
struct Journal(Option<Arc<Store>>);

impl Journal {
    /// Records the changes `ops` builds (built only when there is a store); returns the ticket to
    /// wait for.
    fn record(&self, ops: impl FnOnce() -> Vec<Op>) -> Result<u64, Stopped> {
        match &self.0 {
            Some(store) => store.record(ops()),
            None => Ok(0),
        }
    }

    /// Whether the store already holds the recording with this ticket.
    fn holds(&self, ticket: u64) -> bool {
        self.0.as_ref().is_none_or(|store| store.holds(ticket))
    }

    /// The ticket of everything recorded so far.
    fn latest(&self) -> u64 {
        self.0.as_ref().map_or(0, |store| store.latest())
    }

    async fn settled(&self, ticket: u64) -> Result<(), BoxError> {
        match &self.0 {
            Some(store) => Ok(store.settled(ticket).await?),
            None => Ok(()),
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
        let subject = msg.subject.clone();
        let failed = |source| BusError::Publish {
            subject: subject.clone(),
            source,
        };
        let ticket = {
            let mut state = lock(&self.shared.state);
            let journal = &self.shared.journal;
            match state.append(msg, journal).map_err(|e| failed(e.into()))? {
                Appended::Stored(ticket) => {
                    state.wake_consumers_of_newest();
                    ticket
                }
                // The first copy may still be on its way to the store: a duplicate is acknowledged
                // no sooner than it.
                Appended::Duplicate => journal.latest(),
            }
        };
        self.shared.journal.settled(ticket).await.map_err(failed)
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        let failed = |source| BusError::Consumer {
            durable: spec.durable.clone(),
            source,
        };
        let journal = &self.shared.journal;
        let (notify, ticket) = {
            let mut state = lock(&self.shared.state);
            match state.durables.get(&spec.durable) {
                Some(durable) => (Arc::clone(&durable.notify), journal.latest()),
                None => {
                    let durable = Durable::new(&spec, state.log.first_seq(), true);
                    let ticket = journal
                        .record(|| vec![durable.op(&spec.durable)])
                        .map_err(|e| failed(e.into()))?;
                    let notify = Arc::clone(&durable.notify);
                    state.durables.insert(spec.durable.clone(), durable);
                    (notify, ticket)
                }
            }
        };
        journal.settled(ticket).await.map_err(failed)?;
        Ok(Arc::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            durable: spec.durable,
            notify,
            replica: false,
        }))
    }

    async fn replica_consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        let mut state = lock(&self.shared.state);
        // `#` is no part of a durable name on NATS, so this name is no durable's.
        let name = format!(
            "{}#{}",
            spec.durable,
            self.shared.replicas.fetch_add(1, Ordering::Relaxed)
        );
        let durable = Durable::new(&spec, state.log.first_seq(), false);
        let notify = Arc::clone(&durable.notify);
        state.durables.insert(name.clone(), durable);
        Ok(Arc::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            durable: name,
            notify,
            replica: true,
        }))
    }

    async fn backlog(&self, durable: &str) -> Result<Option<u64>, BusError> {
        let mut state = lock(&self.shared.state);
        let State { log, durables } = &mut *state;
        Ok(durables
            .get_mut(durable)
            .map(|durable| durable.pending(log)))
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        check_bucket_name(bucket)?;
        let mut buckets = lock(&self.shared.buckets);
        let journal = &self.shared.journal;
        let kv = buckets
            .entry(bucket.to_owned())
            .or_insert_with(|| Arc::new(MemoryKv::new(bucket, journal.clone())));
        Ok(Arc::clone(kv) as Arc<dyn Kv>)
    }

    /// Durable when it has a store: what it acknowledged survives the process.
    fn durable(&self) -> bool {
        self.shared.journal.0.is_some()
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
    /// Where every change is recorded, for a bus opened on a directory.
    journal: Journal,
    /// Replica consumers made so far, for their names.
    replicas: AtomicU64,
}

struct State {
    log: Log,
    durables: HashMap<String, Durable>,
}

impl State {
    /// The state the store held, with retention applied (the capacity may have shrunk since).
    fn restore(loaded: &Loaded, capacity: usize, journal: &Journal) -> Result<Self, Stopped> {
        let now = Instant::now();
        let mut log = Log::new(capacity);
        log.next_seq = loaded.next_seq;
        for msg in &loaded.messages {
            log.next_seq = log.next_seq.max(msg.seq + 1);
            log.messages.push_back(Stored {
                seq: msg.seq,
                subject: msg.subject.clone(),
                headers: msg.headers.clone(),
                payload: msg.payload.clone(),
                ticket: 0,
            });
        }
        let excess = log.messages.len().saturating_sub(capacity);
        let dropped: Vec<u64> = log.messages.drain(..excess).map(|m| m.seq).collect();
        let mut expired = Vec::new();
        for (id, age) in &loaded.msg_ids {
            // The window kept running while the bus was closed.
            match now.checked_sub(*age) {
                Some(seen) if *age < DUPLICATE_WINDOW => {
                    log.seen_ids.insert(id.clone(), seen);
                    log.id_order.push_back((seen, id.clone()));
                }
                // Too young to place on this clock (the machine just booted): counts from now.
                None if *age < DUPLICATE_WINDOW => {
                    log.seen_ids.insert(id.clone(), now);
                    log.id_order.push_back((now, id.clone()));
                }
                _ => expired.push(id.clone()),
            }
        }
        let first_seq = log.first_seq();
        let mut durables = HashMap::new();
        let mut stale = Vec::new();
        for loaded in &loaded.durables {
            let mut durable = Durable {
                filter: loaded.filter.clone(),
                ack_wait: loaded.ack_wait,
                kept: true,
                cursor: loaded.cursor,
                unacked: BTreeMap::new(),
                notify: Arc::new(Notify::new()),
            };
            for &(seq, deliveries) in &loaded.unacked {
                if seq < first_seq {
                    stale.push((loaded.name.clone(), seq));
                } else {
                    // Whoever held the delivery went with the last process: due again now.
                    durable.unacked.insert(
                        seq,
                        Unacked {
                            deliveries,
                            due: now,
                        },
                    );
                }
            }
            durables.insert(loaded.name.clone(), durable);
        }
        let mut ops: Vec<Op> = dropped.iter().map(|&seq| Op::DeleteMessage(seq)).collect();
        ops.extend(expired.into_iter().map(Op::DeleteMsgId));
        ops.extend(
            stale
                .into_iter()
                .map(|(durable, seq)| Op::DeleteUnacked { durable, seq }),
        );
        // Not waited for: these only tidy what the store already ignores, and the next open
        // would tidy them again.
        if !ops.is_empty() {
            journal.record(|| ops)?;
        }
        Ok(Self { log, durables })
    }

    /// Stores the message unless its id is a duplicate. With a store, the message is on disk once
    /// the returned ticket has settled.
    fn append(&mut self, msg: OutMessage, journal: &Journal) -> Result<Appended, Stopped> {
        let now = Instant::now();
        let expired = self.log.expire_ids(now);
        if let Some(id) = &msg.msg_id
            && self.log.seen_ids.contains_key(id)
        {
            return Ok(Appended::Duplicate);
        }
        let mut headers = msg.headers;
        if let Some(id) = &msg.msg_id {
            headers.insert(MSG_ID_HEADER.to_owned(), id.clone());
        }
        let mut stored = Stored {
            seq: self.log.next_seq,
            subject: msg.subject,
            headers,
            payload: msg.payload,
            ticket: 0,
        };
        // Retention makes room first: these are the oldest, the new message included when the
        // capacity is zero.
        let excess = (self.log.messages.len() + 1).saturating_sub(self.log.capacity);
        let dropped: Vec<u64> = self
            .log
            .messages
            .iter()
            .map(|m| m.seq)
            .chain([stored.seq])
            .take(excess)
            .collect();
        stored.ticket = journal.record(|| {
            let mut ops = vec![
                Op::PutMessage {
                    seq: stored.seq,
                    subject: stored.subject.clone(),
                    headers: stored.headers.clone(),
                    payload: stored.payload.clone(),
                },
                Op::NextSeq(stored.seq + 1),
            ];
            ops.extend(msg.msg_id.clone().map(Op::PutMsgId));
            ops.extend(expired.into_iter().map(Op::DeleteMsgId));
            for &seq in &dropped {
                ops.push(Op::DeleteMessage(seq));
                for (name, durable) in &self.durables {
                    if durable.kept && durable.unacked.contains_key(&seq) {
                        ops.push(Op::DeleteUnacked {
                            durable: name.clone(),
                            seq,
                        });
                    }
                }
            }
            ops
        })?;
        let ticket = stored.ticket;
        if let Some(id) = msg.msg_id {
            self.log.seen_ids.insert(id.clone(), now);
            self.log.id_order.push_back((now, id));
        }
        self.log.messages.push_back(stored);
        self.log.next_seq += 1;
        if excess > 0 {
            self.log.messages.drain(..excess);
            for durable in self.durables.values_mut() {
                durable.prune(&self.log);
            }
        }
        Ok(Appended::Stored(ticket))
    }

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

/// What [`State::append`] did.
enum Appended {
    /// Stored, on disk once this ticket settles.
    Stored(u64),
    /// A message with its id is already in the de-duplication window.
    Duplicate,
}

struct Stored {
    seq: u64,
    subject: String,
    headers: Headers,
    payload: Bytes,
    /// Its recording's ticket: it is not delivered before that has settled.
    ticket: u64,
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

    /// Forgets the ids older than the window; returns them, for the store to forget too.
    fn expire_ids(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some((at, _)) = self.id_order.front() {
            if now.duration_since(*at) < DUPLICATE_WINDOW {
                break;
            }
            if let Some((_, id)) = self.id_order.pop_front() {
                self.seen_ids.remove(&id);
                expired.push(id);
            }
        }
        expired
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
    /// Whether the store keeps it: a replica's own consumer is not ([`Bus::replica_consumer`]).
    kept: bool,
    /// The next stream sequence to consider for a first delivery.
    cursor: u64,
    unacked: BTreeMap<u64, Unacked>,
    /// Woken when something may have become deliverable; shared by every handle.
    notify: Arc<Notify>,
}

/// The next delivery for a durable, chosen but not yet made: the store records it first.
struct Claim {
    seq: u64,
    attempt: u64,
    /// Where the cursor stands once this delivery is made.
    cursor: u64,
}

impl Durable {
    fn new(spec: &ConsumerSpec, first_seq: u64, kept: bool) -> Self {
        Self {
            filter: spec.filter.clone(),
            ack_wait: spec.ack_wait,
            kept,
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
    /// longest, then the next new matching message. Nothing deliverable: retry at the returned
    /// deadline if one is set, or when notified.
    fn plan_next(&mut self, log: &Log, now: Instant) -> Result<Claim, Option<Instant>> {
        self.prune(log);
        let due = self
            .unacked
            .iter()
            .filter(|(_, u)| u.due <= now)
            .min_by_key(|(_, u)| u.due);
        if let Some((&seq, unacked)) = due {
            return Ok(Claim {
                seq,
                attempt: unacked.deliveries + 1,
                cursor: self.cursor,
            });
        }
        // Skipping messages the filter does not match needs no record: they are skipped again
        // after a reopen.
        self.cursor = self.cursor.max(log.first_seq());
        while let Some(msg) = log.get(self.cursor) {
            if subject_matches(&self.filter, &msg.subject) {
                return Ok(Claim {
                    seq: msg.seq,
                    attempt: 1,
                    cursor: msg.seq + 1,
                });
            }
            self.cursor += 1;
        }
        Err(self.unacked.values().map(|u| u.due).min())
    }

    /// What the store records for the claim.
    fn claim_ops(&self, name: &str, claim: &Claim) -> Vec<Op> {
        let mut ops = vec![Op::PutUnacked {
            durable: name.to_owned(),
            seq: claim.seq,
            deliveries: claim.attempt,
        }];
        if claim.cursor != self.cursor {
            ops.push(self.record(name, claim.cursor));
        }
        ops
    }

    fn make(&mut self, claim: &Claim, now: Instant) {
        self.cursor = claim.cursor;
        let due = now + self.ack_wait;
        self.unacked.insert(
            claim.seq,
            Unacked {
                deliveries: claim.attempt,
                due,
            },
        );
    }

    /// The durable's record in the store.
    fn op(&self, name: &str) -> Op {
        self.record(name, self.cursor)
    }

    fn record(&self, name: &str, cursor: u64) -> Op {
        Op::PutDurable {
            name: name.to_owned(),
            filter: self.filter.clone(),
            ack_wait: self.ack_wait,
            cursor,
        }
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
    /// A replica's own consumer, forgotten with its handle.
    replica: bool,
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        if self.replica {
            lock(&self.shared.state).durables.remove(&self.durable);
        }
    }
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// Why [`MemoryConsumer::try_take`] delivered nothing.
enum NotYet {
    /// A redelivery falls due then.
    Until(Instant),
    /// Nothing to deliver until a publish or a nak wakes the consumer.
    Idle,
    /// The next message is still on its way to the store, with this ticket.
    Settling(u64),
}

impl MemoryConsumer {
    /// Claims the next delivery, or says what to wait for. Claiming happens entirely under the
    /// lock with no await, which is what makes `next` cancel-safe. A message is delivered only
    /// once the store holds it; the claim itself is recorded but not waited for, so after a crash
    /// the attempt count may be one short (the message is due again either way).
    fn try_take(&self) -> Result<Result<Delivery, NotYet>, BusError> {
        let mut state = lock(&self.shared.state);
        let State { log, durables } = &mut *state;
        let durable = durables
            .get_mut(&self.durable)
            .ok_or_else(|| durable_gone(&self.durable))?;
        let now = Instant::now();
        let claim = match durable.plan_next(log, now) {
            Ok(claim) => claim,
            Err(Some(deadline)) => return Ok(Err(NotYet::Until(deadline))),
            Err(None) => return Ok(Err(NotYet::Idle)),
        };
        // After prune, every unacked sequence and the cursor's message are in the log.
        let msg = log
            .get(claim.seq)
            .ok_or_else(|| durable_gone(&self.durable))?;
        let journal = &self.shared.journal;
        if !journal.holds(msg.ticket) {
            return Ok(Err(NotYet::Settling(msg.ticket)));
        }
        if durable.kept {
            journal
                .record(|| durable.claim_ops(&self.durable, &claim))
                .map_err(|e| self.failed(e.into()))?;
        }
        durable.make(&claim, now);
        Ok(Ok(Delivery {
            subject: msg.subject.clone(),
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
            attempt: claim.attempt,
            acker: Box::new(MemoryAcker {
                shared: Arc::clone(&self.shared),
                durable: self.durable.clone(),
                seq: msg.seq,
            }),
        }))
    }

    fn failed(&self, source: BoxError) -> BusError {
        BusError::Consumer {
            durable: self.durable.clone(),
            source,
        }
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
                Err(NotYet::Until(deadline)) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                Err(NotYet::Idle) => notified.await,
                Err(NotYet::Settling(ticket)) => self
                    .shared
                    .journal
                    .settled(ticket)
                    .await
                    .map_err(|e| self.failed(e))?,
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
        let journal = &self.shared.journal;
        let ticket = {
            let mut state = lock(&self.shared.state);
            let durable = state.durable_mut(&self.durable)?;
            if !durable.kept {
                durable.unacked.remove(&self.seq);
                journal.latest()
            } else if durable.unacked.contains_key(&self.seq) {
                let op = || {
                    vec![Op::DeleteUnacked {
                        durable: self.durable.clone(),
                        seq: self.seq,
                    }]
                };
                let ticket = journal.record(op).map_err(|e| BusError::Ack(e.into()))?;
                durable.unacked.remove(&self.seq);
                ticket
            } else {
                // Settled already, perhaps by an ack still on its way to the store.
                journal.latest()
            }
        };
        journal.settled(ticket).await.map_err(BusError::Ack)
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
    journal: Journal,
    state: Mutex<KvState>,
}

#[derive(Default)]
struct KvState {
    revision: u64,
    entries: BTreeMap<String, Entry>,
    /// Each change with its recording's ticket, which the watcher waits for before showing it.
    watchers: Vec<mpsc::UnboundedSender<(KvChange, u64)>>,
    /// The ticket of the bucket's latest write: whatever a caller reads here is on disk once it
    /// has settled.
    written: u64,
}

impl KvState {
    /// Records a put (`Some`) or delete (`None`), applies it and tells every watcher. Deletes take
    /// a revision too, as NATS KV tombstones do.
    fn write(
        &mut self,
        bucket: &str,
        journal: &Journal,
        key: &str,
        value: Option<Bytes>,
    ) -> Result<u64, BusError> {
        let revision = self.revision + 1;
        let ops = || {
            let change = match &value {
                Some(value) => Op::PutKv {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    revision,
                    value: value.clone(),
                },
                None => Op::DeleteKv {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                },
            };
            let revision = Op::KvRevision {
                bucket: bucket.to_owned(),
                revision,
            };
            vec![change, revision]
        };
        self.written = journal.record(ops).map_err(|e| BusError::Kv {
            bucket: bucket.to_owned(),
            source: e.into(),
        })?;
        self.revision = revision;
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
        let written = self.written;
        self.watchers
            .retain(|watcher| watcher.unbounded_send((change.clone(), written)).is_ok());
        Ok(revision)
    }
}

impl MemoryKv {
    fn new(bucket: &str, journal: Journal) -> Self {
        Self {
            bucket: bucket.to_owned(),
            journal,
            state: Mutex::new(KvState::default()),
        }
    }

    /// Runs `op` under the bucket's lock, then answers once the store holds what it wrote or saw.
    async fn locked<T>(
        &self,
        op: impl FnOnce(&mut KvState) -> Result<T, BusError>,
    ) -> Result<T, BusError> {
        let (result, written) = {
            let mut state = lock(&self.state);
            let result = op(&mut state);
            (result, state.written)
        };
        self.settled(written).await?;
        result
    }

    async fn settled(&self, ticket: u64) -> Result<(), BusError> {
        self.journal
            .settled(ticket)
            .await
            .map_err(|source| BusError::Kv {
                bucket: self.bucket.clone(),
                source,
            })
    }

    fn write(&self, state: &mut KvState, key: &str, value: Option<Bytes>) -> Result<u64, BusError> {
        state.write(&self.bucket, &self.journal, key, value)
    }

    /// The check of a conditional write: the key must hold a value stored at `expected`.
    fn expect_revision(&self, state: &KvState, key: &str, expected: u64) -> Result<(), BusError> {
        let current = state.entries.get(key).map(|entry| entry.revision);
        if current == Some(expected) {
            Ok(())
        } else {
            Err(BusError::WrongRevision {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                expected,
                current,
            })
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
        self.locked(|state| Ok(state.entries.get(key).cloned()))
            .await
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        validate_key(key)?;
        self.locked(|state| self.write(state, key, Some(value)))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError> {
        validate_key(key)?;
        self.locked(|state| {
            if let Some(existing) = state.entries.get(key) {
                return Ok(Created::Exists(existing.clone()));
            }
            let revision = self.write(state, key, Some(value))?;
            Ok(Created::Created { revision })
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_revision: u64,
    ) -> Result<u64, BusError> {
        validate_key(key)?;
        // Compared and written under one lock.
        self.locked(|state| {
            self.expect_revision(state, key, expected_revision)?;
            self.write(state, key, Some(value))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BusError> {
        validate_key(key)?;
        self.locked(|state| self.write(state, key, None).map(drop))
            .await
    }

    async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError> {
        validate_key(key)?;
        // Compared and deleted under one lock: no write can land in between.
        self.locked(|state| {
            self.expect_revision(state, key, revision)?;
            self.write(state, key, None)
        })
        .await
    }

    async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError> {
        self.locked(|state| {
            Ok(state
                .entries
                .iter()
                .map(|(key, entry)| (key.clone(), entry.clone()))
                .collect())
        })
        .await
    }

    async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError> {
        // Snapshot and subscription under one lock: no change can fall between them.
        let mut state = lock(&self.state);
        let written = state.written;
        let snapshot: Vec<(KvChange, u64)> = state
            .entries
            .iter()
            .map(|(key, entry)| {
                let change = KvChange {
                    key: key.clone(),
                    value: Some(entry.value.clone()),
                    revision: entry.revision,
                };
                (change, written)
            })
            .collect();
        let (sender, receiver) = mpsc::unbounded();
        state.watchers.push(sender);
        drop(state);
        let journal = self.journal.clone();
        let bucket = self.bucket.clone();
        let changes = stream::iter(snapshot)
            .chain(receiver)
            .then(move |(change, ticket)| {
                let journal = journal.clone();
                let bucket = bucket.clone();
                async move {
                    journal
                        .settled(ticket)
                        .await
                        .map(|()| change)
                        .map_err(|source| BusError::Kv { bucket, source })
                }
            });
        Ok(changes.boxed())
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
