//! Dead letters kept for operators. The runner stores every message it gives up on in the
//! `deadletters` bucket (besides publishing it on `<prefix>.deadletter.<role>`, which the metrics
//! count), so an operator can list what failed and, once the cause is fixed, replay it: the letter
//! goes to `<prefix>.replay.<role>`, where only that role's replay consumer takes it and handles it
//! as its original subject and payload. The other roles that consumed the original subject do not
//! see it again.

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};
use switchboard_bus::{Bus, BusError, OutMessage};
use switchboard_proto::DeadLetter;

use crate::subjects::Subjects;

/// Dead letters not yet replayed, as protobuf [`DeadLetter`]s, under [`key`].
pub const BUCKET: &str = "deadletters";

/// `<role>.<16 hex digits of SHA-256 over subject and payload>`: the same message given up on twice
/// is one entry, and a role's letters share a prefix.
pub fn key(letter: &DeadLetter) -> String {
    let mut hash = Sha256::new();
    hash.update(letter.subject.as_bytes());
    hash.update([0]);
    hash.update(&letter.payload);
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}.{hex}", letter.role)
}

/// Stores `letter` (replacing an earlier copy of the same message).
pub async fn store(bus: &dyn Bus, letter: &DeadLetter) -> Result<(), BusError> {
    bus.kv(BUCKET)
        .await?
        .put(&key(letter), Bytes::from(letter.encode_to_vec()))
        .await
        .map(|_| ())
}

/// A stored dead letter and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub key: String,
    pub revision: u64,
    pub letter: DeadLetter,
}

/// Which letters to list or replay.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this role's.
    pub role: Option<String>,
    /// Only those given up on at or after this time, in milliseconds since the epoch.
    pub since_ms: Option<i64>,
}

/// The stored letters `selection` picks, oldest first. An entry that is not a dead letter is
/// logged and left out, so one damaged entry does not hide the others.
pub async fn list(bus: &dyn Bus, selection: &Selection) -> Result<Vec<Stored>, BusError> {
    let kv = bus.kv(BUCKET).await?;
    let mut letters: Vec<Stored> = Vec::new();
    for (key, entry) in kv.entries().await? {
        let letter = match DeadLetter::decode(entry.value) {
            Ok(letter) => letter,
            Err(e) => {
                tracing::warn!(key, error = %e, "an entry in the deadletters bucket is not a dead letter");
                continue;
            }
        };
        let role_matches = selection.role.as_deref().is_none_or(|r| r == letter.role);
        let recent = selection.since_ms.is_none_or(|since| letter.at_ms >= since);
        if role_matches && recent {
            letters.push(Stored {
                key,
                revision: entry.revision,
                letter,
            });
        }
    }
    letters.sort_by(|a, b| (a.letter.at_ms, &a.key).cmp(&(b.letter.at_ms, &b.key)));
    Ok(letters)
}

/// What became of a replayed letter's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Sent back and removed from the bucket.
    Removed,
    /// Sent back, and by the time it was to be removed the role had already given up on it again
    /// (or on another copy of it): the entry holds that newer letter and stays.
    FailedAgain,
}

/// Sends `stored` back to its role's replay consumer, then removes its entry unless a newer letter
/// has replaced it. The message id names the key and revision, so sending the same letter twice
/// (a retry after a failed removal) is stored once. A letter another replay already removed is
/// [`BusError::WrongRevision`] with no current revision.
pub async fn replay(
    bus: &dyn Bus,
    subjects: &Subjects,
    stored: &Stored,
) -> Result<Replayed, BusError> {
    bus.publish(OutMessage {
        subject: subjects.replay(&stored.letter.role),
        msg_id: Some(format!("replay.{}.{}", stored.key, stored.revision)),
        headers: Default::default(),
        payload: Bytes::from(stored.letter.encode_to_vec()),
    })
    .await?;
    let removed = bus
        .kv(BUCKET)
        .await?
        .delete_expect_revision(&stored.key, stored.revision)
        .await;
    match removed {
        Ok(_) => Ok(Replayed::Removed),
        Err(BusError::WrongRevision {
            current: Some(_), ..
        }) => Ok(Replayed::FailedAgain),
        Err(e) => Err(e),
    }
}
