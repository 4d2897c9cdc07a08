//! Unresolved rounds per thread, kept in the [`THREADS_BUCKET`] KV bucket so every sentiment replica sees
//! the same count: the sentiment stage opens a round per new ticket, the feedback role clears the thread
//! when one of its tickets is resolved.
//!
//! Key: hex SHA-256 of the thread id, because thread ids come from connectors and may hold characters KV
//! keys may not (and would otherwise put customer identifiers into key names). Value: the ids of the
//! thread's open tickets, one per line, so a redelivered ticket is not counted twice; the count is the number
//! of lines.
//!
//! The race: the KV has no compare-and-set on a revision, so two replicas opening rounds of the same thread
//! at the same instant may both read the same list, and the later write drops the other's id: the thread
//! then counts one round fewer. Acceptable because a thread's rounds are a customer coming back minutes or
//! days apart, not within milliseconds; the cost is one missed escalation step, never a wrong one; and the
//! first round, the only one where two writers commonly meet (a ticket sent twice by two channels), is
//! stored with `create`, which is atomic.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use switchboard_bus::{BusError, Created, Kv};

pub const THREADS_BUCKET: &str = "threads";

/// Open rounds kept per thread; beyond it the oldest are forgotten. Far above any escalation threshold, and
/// it bounds the value a runaway thread can grow to.
const MAX_OPEN: usize = 64;

/// The KV key of a thread.
pub fn thread_key(thread_id: &str) -> String {
    Sha256::digest(thread_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records `ticket_id` as an open round of `thread_id` and returns how many other rounds of the thread are
/// still open: the ticket's `unresolved_rounds`.
pub async fn open_round(kv: &dyn Kv, thread_id: &str, ticket_id: &str) -> Result<u32, BusError> {
    let key = thread_key(thread_id);
    let entry = match kv.get(&key).await? {
        Some(entry) => entry,
        None => match kv.create(&key, Bytes::from(ticket_id.to_owned())).await? {
            Created::Created { .. } => return Ok(0),
            Created::Exists(entry) => entry,
        },
    };
    let text = String::from_utf8_lossy(&entry.value);
    let mut open: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let earlier = open.iter().filter(|&&id| id != ticket_id).count();
    if earlier < open.len() {
        // A redelivery: this round is already counted.
        return Ok(count(earlier));
    }
    open.push(ticket_id);
    let skip = open.len().saturating_sub(MAX_OPEN);
    kv.put(&key, Bytes::from(open[skip..].join("\n"))).await?;
    Ok(count(earlier))
}

/// Clears the thread: its customer got an answer, so the next ticket starts a fresh count.
pub async fn resolve_thread(kv: &dyn Kv, thread_id: &str) -> Result<(), BusError> {
    kv.delete(&thread_key(thread_id)).await
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;

    use super::*;

    #[tokio::test]
    async fn rounds_count_up_once_per_ticket_and_reset_on_resolution() {
        let kv = MemoryBus::new().kv(THREADS_BUCKET).await.expect("bucket");
        let kv = kv.as_ref();
        let thread = "wecom:客户 42/会话";
        assert_eq!(open_round(kv, thread, "t1").await.ok(), Some(0));
        assert_eq!(open_round(kv, thread, "t2").await.ok(), Some(1));
        assert_eq!(
            open_round(kv, thread, "t2").await.ok(),
            Some(1),
            "redelivery"
        );
        assert_eq!(open_round(kv, thread, "t3").await.ok(), Some(2));
        assert_eq!(open_round(kv, "another", "t9").await.ok(), Some(0));
        resolve_thread(kv, thread).await.expect("resolve");
        assert_eq!(open_round(kv, thread, "t4").await.ok(), Some(0));
    }

    #[tokio::test]
    async fn keys_are_valid_and_the_list_is_bounded() {
        let key = thread_key("邮件 <a@b.c>");
        assert_eq!(key.len(), 64);
        assert!(switchboard_bus::validate_key(&key).is_ok());
        let kv = MemoryBus::new().kv(THREADS_BUCKET).await.expect("bucket");
        for i in 0..MAX_OPEN + 10 {
            open_round(kv.as_ref(), "busy", &format!("t{i}"))
                .await
                .expect("open");
        }
        let last = open_round(kv.as_ref(), "busy", "last").await.expect("open");
        assert_eq!(last, count(MAX_OPEN));
    }
}
