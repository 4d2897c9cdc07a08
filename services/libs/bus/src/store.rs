//! The store behind a persistent [`crate::memory::MemoryBus`]: every change the bus makes to its
//! stream, durables and KV buckets, written to one file before the caller hears it succeeded, and
//! read back on open.
//!
//! The engine is redb: a single file under `<data_dir>/bus`, pure Rust (no C toolchain for the
//! embedded default, unlike RocksDB or SQLite bindings), ACID transactions whose commit is on disk
//! when it returns (so each bus operation is one all-or-nothing commit), and crash-safe by design
//! (copy-on-write pages with checksummed commit slots: a `kill -9` or power cut mid-write leaves
//! the last committed state).
//!
//! The bus keeps its working state in memory and only writes here; the file is read once, on open.
//! Nak delays and ack-wait deadlines are not stored: after a restart the process that held a
//! delivery is gone, so every unacknowledged message is due again at once (its attempt count kept).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

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

/// One change, as the bus describes it; [`Store::commit`] writes a list of them atomically.
pub(crate) enum Op<'a> {
    PutMessage {
        seq: u64,
        subject: &'a str,
        headers: &'a Headers,
        payload: &'a [u8],
    },
    DeleteMessage(u64),
    NextSeq(u64),
    PutMsgId(&'a str),
    DeleteMsgId(&'a str),
    PutDurable {
        name: &'a str,
        filter: &'a str,
        ack_wait: Duration,
        cursor: u64,
    },
    PutUnacked {
        durable: &'a str,
        seq: u64,
        deliveries: u64,
    },
    DeleteUnacked {
        durable: &'a str,
        seq: u64,
    },
    PutKv {
        bucket: &'a str,
        key: &'a str,
        revision: u64,
        value: &'a [u8],
    },
    DeleteKv {
        bucket: &'a str,
        key: &'a str,
    },
    KvRevision {
        bucket: &'a str,
        revision: u64,
    },
}

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
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing) the store in `dir` and reads it back. Fails when another
    /// process, or another bus in this one, has it open: one owner writes the file.
    pub fn open(dir: &Path) -> Result<(Self, Loaded), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("bus.redb");
        let db = Database::create(&path)?;
        let store = Self { db, path };
        // Every table exists from the first open, so reads never meet a missing one.
        store.commit(&[])?;
        let loaded = store.load()?;
        Ok((store, loaded))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the changes in one transaction, on disk when this returns.
    pub fn commit(&self, ops: &[Op<'_>]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
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
                match *op {
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
                        messages.insert(seq, (subject, headers, payload))?;
                    }
                    Op::DeleteMessage(seq) => {
                        messages.remove(seq)?;
                    }
                    Op::NextSeq(seq) => {
                        meta.insert(NEXT_SEQ, seq)?;
                    }
                    Op::PutMsgId(id) => {
                        msg_ids.insert(id, unix_millis(SystemTime::now()))?;
                    }
                    Op::DeleteMsgId(id) => {
                        msg_ids.remove(id)?;
                    }
                    Op::PutDurable {
                        name,
                        filter,
                        ack_wait,
                        cursor,
                    } => {
                        let nanos = u64::try_from(ack_wait.as_nanos()).unwrap_or(u64::MAX);
                        durables.insert(name, (filter, nanos, cursor))?;
                    }
                    Op::PutUnacked {
                        durable,
                        seq,
                        deliveries,
                    } => {
                        unacked.insert((durable, seq), deliveries)?;
                    }
                    Op::DeleteUnacked { durable, seq } => {
                        unacked.remove((durable, seq))?;
                    }
                    Op::PutKv {
                        bucket,
                        key,
                        revision,
                        value,
                    } => {
                        kv.insert((bucket, key), (revision, value))?;
                    }
                    Op::DeleteKv { bucket, key } => {
                        kv.remove((bucket, key))?;
                    }
                    Op::KvRevision { bucket, revision } => {
                        kv_revisions.insert(bucket, revision)?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read()?;
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
}

fn unix_millis(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
