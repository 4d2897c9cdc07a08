//! The store behind a persistent [`crate::memory::MemoryBus`]: every change the bus makes to its
//! stream, durables and KV buckets, written to one file before the caller hears it succeeded, and
//! read back on open.
//!
//! The engine is redb: a single file under `<data_dir>/bus`, pure Rust (no C toolchain for the
//! embedded default, unlike RocksDB or SQLite bindings), ACID transactions whose commit is on disk
//! when it returns, and crash-safe by design (copy-on-write pages with checksummed commit slots: a
//! `kill -9` or power cut mid-write leaves the last committed state).
//!
//! Writes are group commits. Each commit syncs the disk, which costs milliseconds, and a ticket
//! passes through a dozen bus operations on its way to a decision; committing them one at a time
//! under the bus's lock capped the embedded default at about 55 tickets a second. So the bus
//! [`Store::record`]s its changes under its lock (which fixes their order) and gets a ticket; one
//! writer thread commits everything recorded since its last commit in one transaction; and callers
//! await [`Store::settled`] on their ticket before they hear the operation succeeded. The file is
//! therefore always a prefix of the recorded changes, in order. A failed commit stops the store:
//! what it held stays the last committed state and every later write is refused, so nothing is
//! acknowledged that the file does not hold.
//!
//! The bus keeps its working state in memory and only writes here; the file is read once, on open.
//! Nak delays and ack-wait deadlines are not stored: after a restart the process that held a
//! delivery is gone, so every unacknowledged message is due again at once (its attempt count kept).

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;

use crate::{Entry, Headers};

/// A stored message: (subject, headers as name-value pairs, payload).
type MessageRow = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static [u8],
);
/// Stream sequence → the message.
const MESSAGES: TableDefinition<u64, MessageRow> = TableDefinition::new("messages");
/// De-duplication id → when it was first published, in milliseconds since the Unix epoch: wall
/// time, since the window must keep running while the process is down.
const MSG_IDS: TableDefinition<&str, u64> = TableDefinition::new("msg_ids");
/// `next_seq` → the sequence the next message gets, so sequences never repeat even when
/// retention has emptied the stream.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQ: &str = "next_seq";
/// Durable name → (filter, ack wait in nanoseconds, cursor).
const DURABLES: TableDefinition<&str, (&str, u64, u64)> = TableDefinition::new("durables");
/// (durable, stream sequence) → deliveries so far, for every delivered message not yet acked.
const UNACKED: TableDefinition<(&str, u64), u64> = TableDefinition::new("unacked");
/// (bucket, key) → (revision, value), live keys only.
const KV: TableDefinition<(&str, &str), (u64, &[u8])> = TableDefinition::new("kv");
/// Bucket → its latest revision (deletes take one too), so revisions continue after a reopen.
const KV_REVISIONS: TableDefinition<&str, u64> = TableDefinition::new("kv_revisions");

pub(crate) type StoreError = redb::Error;

/// One change, as the bus describes it; the writer commits a batch of them atomically.
pub(crate) enum Op {
    PutMessage {
        seq: u64,
        subject: String,
        headers: Headers,
        payload: Bytes,
    },
    DeleteMessage(u64),
    NextSeq(u64),
    PutMsgId(String),
    DeleteMsgId(String),
    PutDurable {
        name: String,
        filter: String,
        ack_wait: Duration,
        cursor: u64,
    },
    PutUnacked {
        durable: String,
        seq: u64,
        deliveries: u64,
    },
    DeleteUnacked {
        durable: String,
        seq: u64,
    },
    PutKv {
        bucket: String,
        key: String,
        revision: u64,
        value: Bytes,
    },
    DeleteKv {
        bucket: String,
        key: String,
    },
    KvRevision {
        bucket: String,
        revision: u64,
    },
}

/// Why the store refuses a write: an earlier commit failed, so the file holds less than the bus
/// has shown its callers, and only a reopen (which reads the file back) makes them agree again.
#[derive(Debug, thiserror::Error)]
#[error("the bus store stopped taking writes after a commit failed")]
pub(crate) struct Stopped(#[source] Arc<redb::Error>);

/// What the file held when opened, in sequence and key order.
#[derive(Default)]
pub(crate) struct Loaded {
    pub messages: Vec<LoadedMessage>,
    pub next_seq: u64,
    /// Ids with their age, youngest last.
    pub msg_ids: Vec<(String, Duration)>,
    pub durables: Vec<LoadedDurable>,
    pub buckets: Vec<LoadedBucket>,
}

pub(crate) struct LoadedMessage {
    pub seq: u64,
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
}

pub(crate) struct LoadedDurable {
    pub name: String,
    pub filter: String,
    pub ack_wait: Duration,
    pub cursor: u64,
    /// (sequence, deliveries so far).
    pub unacked: Vec<(u64, u64)>,
}

pub(crate) struct LoadedBucket {
    pub name: String,
    pub revision: u64,
    pub entries: Vec<(String, Entry)>,
}

pub(crate) struct Store {
    path: PathBuf,
    queue: Arc<Queue>,
    committed: watch::Receiver<Committed>,
    writer: Option<JoinHandle<()>>,
}

/// What waits for the writer, and the condition it waits on.
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    /// The ticket of the latest recording: tickets count recordings from 1.
    recorded: u64,
    closed: bool,
    failed: Option<Arc<redb::Error>>,
}

/// How far the file has got.
#[derive(Clone, Default)]
struct Committed {
    /// Every recording with a ticket up to this one is on disk.
    through: u64,
    failed: Option<Arc<redb::Error>>,
}

impl Store {
    /// Opens (creating if missing) the store in `dir` and reads it back. Fails when another
    /// process, or another bus in this one, has it open: one owner writes the file.
    pub fn open(dir: &Path) -> Result<(Self, Loaded), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("bus.redb");
        let db = Database::create(&path)?;
        // Every table exists from the first open, so reads never meet a missing one.
        commit(&db, &[])?;
        let loaded = load(&db)?;
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let (tell, committed) = watch::channel(Committed::default());
        let writer = std::thread::Builder::new()
            .name("bus-store".to_owned())
            .spawn({
                let queue = Arc::clone(&queue);
                move || write(&db, &queue, &tell)
            })?;
        let store = Self {
            path,
            queue,
            committed,
            writer: Some(writer),
        };
        Ok((store, loaded))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues changes for the next commit and returns their ticket for [`Store::settled`]. Called
    /// under the lock that orders the changes, before they are made in memory, so a refusal
    /// changes nothing.
    pub fn record(&self, ops: Vec<Op>) -> Result<u64, Stopped> {
        let mut pending = lock(&self.queue.pending);
        if let Some(failed) = &pending.failed {
            return Err(Stopped(Arc::clone(failed)));
        }
        pending.ops.extend(ops);
        pending.recorded += 1;
        let ticket = pending.recorded;
        drop(pending);
        self.queue.wake.notify_one();
        Ok(ticket)
    }

    /// Whether the recording with this ticket is on disk.
    pub fn holds(&self, ticket: u64) -> bool {
        self.committed.borrow().through >= ticket
    }

    /// The ticket of the latest recording: once it has settled, so has everything recorded before.
    pub fn latest(&self) -> u64 {
        lock(&self.queue.pending).recorded
    }

    /// Waits until the recording with this ticket, and so every earlier one, is on disk.
    pub async fn settled(&self, ticket: u64) -> Result<(), Stopped> {
        let mut committed = self.committed.clone();
        let reached = committed
            .wait_for(|c| c.through >= ticket || c.failed.is_some())
            .await;
        match reached {
            Ok(c) if c.through >= ticket => Ok(()),
            Ok(c) => Err(Stopped(c.failed.clone().expect("waited for a failure"))),
            // The writer is gone only once the store is dropped, and `self` holds it.
            Err(_) => unreachable!("the bus store's writer outlives the store"),
        }
    }
}

impl Drop for Store {
    /// Commits what is still queued and closes the file before returning, so the directory can be
    /// opened again at once.
    fn drop(&mut self) {
        lock(&self.queue.pending).closed = true;
        self.queue.wake.notify_one();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the bus store's writer panicked");
        }
    }
}

/// The writer thread: commits whatever has been recorded since its last commit, until the store
/// closes (after a last commit) or a commit fails.
fn write(db: &Database, queue: &Queue, tell: &watch::Sender<Committed>) {
    loop {
        let (ops, through, closed) = {
            let mut pending = lock(&queue.pending);
            while pending.ops.is_empty()
                && pending.recorded == tell.borrow().through
                && !pending.closed
            {
                pending = queue
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            (
                mem::take(&mut pending.ops),
                pending.recorded,
                pending.closed,
            )
        };
        if !ops.is_empty()
            && let Err(err) = commit(db, &ops)
        {
            tracing::error!(error = %err, "a bus store commit failed; the store takes no more writes");
            let failed = Arc::new(err);
            lock(&queue.pending).failed = Some(Arc::clone(&failed));
            tell.send_modify(|c| c.failed = Some(failed));
            return;
        }
        tell.send_modify(|c| c.through = through);
        if closed && lock(&queue.pending).ops.is_empty() {
            return;
        }
    }
}

/// Locks a mutex, recovering from poisoning: no critical section here can panic midway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the changes in one transaction, on disk when this returns.
fn commit(db: &Database, ops: &[Op]) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    // The default, said explicitly: acknowledging a write the disk does not hold yet is what
    // this store exists to prevent.
    txn.set_durability(Durability::Immediate)?;
    {
        let mut messages = txn.open_table(MESSAGES)?;
        let mut msg_ids = txn.open_table(MSG_IDS)?;
        let mut meta = txn.open_table(META)?;
        let mut durables = txn.open_table(DURABLES)?;
        let mut unacked = txn.open_table(UNACKED)?;
        let mut kv = txn.open_table(KV)?;
        let mut kv_revisions = txn.open_table(KV_REVISIONS)?;
        for op in ops {
            match op {
                Op::PutMessage {
                    seq,
                    subject,
                    headers,
                    payload,
                } => {
                    let headers: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str()))
                        .collect();
                    messages.insert(*seq, (subject.as_str(), headers, &payload[..]))?;
                }
                Op::DeleteMessage(seq) => {
                    messages.remove(*seq)?;
                }
                Op::NextSeq(seq) => {
                    meta.insert(NEXT_SEQ, *seq)?;
                }
                Op::PutMsgId(id) => {
                    msg_ids.insert(id.as_str(), unix_millis(SystemTime::now()))?;
                }
                Op::DeleteMsgId(id) => {
                    msg_ids.remove(id.as_str())?;
                }
                Op::PutDurable {
                    name,
                    filter,
                    ack_wait,
                    cursor,
                } => {
                    let nanos = u64::try_from(ack_wait.as_nanos()).unwrap_or(u64::MAX);
                    durables.insert(name.as_str(), (filter.as_str(), nanos, *cursor))?;
                }
                Op::PutUnacked {
                    durable,
                    seq,
                    deliveries,
                } => {
                    unacked.insert((durable.as_str(), *seq), *deliveries)?;
                }
                Op::DeleteUnacked { durable, seq } => {
                    unacked.remove((durable.as_str(), *seq))?;
                }
                Op::PutKv {
                    bucket,
                    key,
                    revision,
                    value,
                } => {
                    kv.insert((bucket.as_str(), key.as_str()), (*revision, &value[..]))?;
                }
                Op::DeleteKv { bucket, key } => {
                    kv.remove((bucket.as_str(), key.as_str()))?;
                }
                Op::KvRevision { bucket, revision } => {
                    kv_revisions.insert(bucket.as_str(), *revision)?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn load(db: &Database) -> Result<Loaded, StoreError> {
    let txn = db.begin_read()?;
    let mut loaded = Loaded {
        next_seq: txn
            .open_table(META)?
            .get(NEXT_SEQ)?
            .map_or(1, |v| v.value()),
        ..Loaded::default()
    };
    for row in txn.open_table(MESSAGES)?.iter()? {
        let (seq, value) = row?;
        let (subject, headers, payload) = value.value();
        loaded.messages.push(LoadedMessage {
            seq: seq.value(),
            subject: subject.to_owned(),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            payload: Bytes::copy_from_slice(payload),
        });
    }
    let now = unix_millis(SystemTime::now());
    for row in txn.open_table(MSG_IDS)?.iter()? {
        let (id, seen) = row?;
        let age = Duration::from_millis(now.saturating_sub(seen.value()));
        loaded.msg_ids.push((id.value().to_owned(), age));
    }
    loaded
        .msg_ids
        .sort_by_key(|(_, age)| std::cmp::Reverse(*age));
    let unacked = txn.open_table(UNACKED)?;
    for row in txn.open_table(DURABLES)?.iter()? {
        let (name, value) = row?;
        let name = name.value();
        let (filter, ack_wait, cursor) = value.value();
        let mut durable = LoadedDurable {
            name: name.to_owned(),
            filter: filter.to_owned(),
            ack_wait: Duration::from_nanos(ack_wait),
            cursor,
            unacked: Vec::new(),
        };
        for row in unacked.range((name, 0)..=(name, u64::MAX))? {
            let (key, deliveries) = row?;
            durable.unacked.push((key.value().1, deliveries.value()));
        }
        loaded.durables.push(durable);
    }
    let kv = txn.open_table(KV)?;
    for row in txn.open_table(KV_REVISIONS)?.iter()? {
        let (name, revision) = row?;
        let name = name.value();
        let mut bucket = LoadedBucket {
            name: name.to_owned(),
            revision: revision.value(),
            entries: Vec::new(),
        };
        // Keys are non-empty, so ("bucket", "") sorts before every key of the bucket.
        for row in kv.range((name, "")..)? {
            let (key, value) = row?;
            let (row_bucket, key) = key.value();
            if row_bucket != name {
                break;
            }
            let (revision, value) = value.value();
            let entry = Entry {
                value: Bytes::copy_from_slice(value),
                revision,
            };
            bucket.entries.push((key.to_owned(), entry));
        }
        loaded.buckets.push(bucket);
    }
    Ok(loaded)
}

fn unix_millis(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
