//! Failed logins, counted per name and per client address over a sliding window: past the limit,
//! logins are refused (429) until the oldest failure leaves the window.
//!
//! The counts are kept in the accounts bucket, so every replica counts every failure: with several
//! replicas an attacker still gets the limit once. Only a failure writes (and a good login, which
//! clears its name); each record holds at most the last `max_failures` times, and records whose
//! failures have all left the window are deleted by [`Accounts::purge_expired_sessions`].

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, from_json, now_ms};
use crate::error::AuthError;
use crate::secret::sha256_hex;

pub(crate) const FAILURE_PREFIX: &str = "login-failures.";
/// Read-modify-write rounds a failure tries before giving up to replicas recording the same subject.
const RACES: usize = 8;

/// One name's or address's recent failures.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StoredFailures {
    /// Oldest first, at most the limit.
    times_ms: Vec<u64>,
    /// When the newest leaves the window: the record can go.
    pub(crate) until_ms: u64,
}

/// The record keys of a login's name and client address: hashed, since a login may send any name.
fn keys(name: &str, addr: Option<IpAddr>) -> impl Iterator<Item = String> {
    std::iter::once(name_key(name))
        .chain(addr.map(|addr| format!("{FAILURE_PREFIX}addr.{}", sha256_hex(&addr.to_string()))))
}

fn name_key(name: &str) -> String {
    format!("{FAILURE_PREFIX}name.{}", sha256_hex(name))
}

#[derive(Debug)]
pub(crate) struct FailureLimiter {
    accounts: Accounts,
    max_failures: usize,
    window_ms: u64,
}

impl FailureLimiter {
    pub(crate) fn new(accounts: Accounts, max_failures: u32, window: Duration) -> Self {
        Self {
            accounts,
            max_failures: usize::try_from(max_failures).unwrap_or(usize::MAX),
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Refuses a login for `name` from `addr` while either has used up its failures, saying when
    /// the later of the two frees up.
    pub(crate) async fn check(&self, name: &str, addr: Option<IpAddr>) -> Result<(), AuthError> {
        self.check_at(name, addr, now_ms()).await
    }

    /// [`Self::check`] as at `now` (ms).
    async fn check_at(&self, name: &str, addr: Option<IpAddr>, now: u64) -> Result<(), AuthError> {
        let mut wait = None;
        for key in keys(name, addr) {
            let (times, _) = self.recent(&key, now).await?;
            // The oldest of the last `max` failures must leave the window to free a try.
            if let Some(blocking) = times.len().checked_sub(self.max_failures) {
                let free_at = times[blocking] + self.window_ms;
                wait = wait.max(Some(free_at.saturating_sub(now)));
            }
        }
        match wait {
            Some(ms) => Err(AuthError::TooManyFailures {
                retry_after: Duration::from_millis(ms),
            }),
            None => Ok(()),
        }
    }

    pub(crate) async fn failed(&self, name: &str, addr: Option<IpAddr>) -> Result<(), AuthError> {
        self.failed_at(name, addr, now_ms()).await
    }

    /// [`Self::failed`] as at `now` (ms): each subject's record gains the time, by a revision-checked
    /// write, so two replicas recording at once both count.
    async fn failed_at(&self, name: &str, addr: Option<IpAddr>, now: u64) -> Result<(), AuthError> {
        'subjects: for key in keys(name, addr) {
            for _ in 0..RACES {
                let (mut times, revision) = self.recent(&key, now).await?;
                times.push(now);
                let keep = times.len().saturating_sub(self.max_failures.max(1));
                let record = StoredFailures {
                    times_ms: times.split_off(keep),
                    until_ms: now + self.window_ms,
                };
                if self
                    .accounts
                    .write_if_unchanged(&key, &record, revision)
                    .await?
                {
                    continue 'subjects;
                }
            }
            tracing::warn!(
                key,
                "a failed login not counted: other replicas kept writing its record"
            );
        }
        Ok(())
    }

    /// A good login clears the name's failures (someone mistyped, then got it right); the address
    /// keeps its count, since one address may be trying many names.
    pub(crate) async fn succeeded(&self, name: &str) -> Result<(), AuthError> {
        Ok(self.accounts.kv.delete(&name_key(name)).await?)
    }

    /// The record's failures still in the window at `now`, with its revision (`None`: no record).
    async fn recent(&self, key: &str, now: u64) -> Result<(Vec<u64>, Option<u64>), AuthError> {
        let Some(entry) = self.accounts.kv.get(key).await? else {
            return Ok((Vec::new(), None));
        };
        let stored: StoredFailures = from_json(key, &entry.value)?;
        let times = stored
            .times_ms
            .into_iter()
            .filter(|&at| at + self.window_ms > now)
            .collect();
        Ok((times, Some(entry.revision)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_errors::ServiceError;

    const ADDR: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    async fn accounts() -> Accounts {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        Accounts::open(&bus, Duration::from_secs(3600))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_limit_counts_per_name_and_per_address() {
        let limiter = FailureLimiter::new(accounts().await, 3, Duration::from_secs(60));
        for _ in 0..3 {
            limiter.check("ann", ADDR).await.expect("under the limit");
            limiter.failed("ann", ADDR).await.unwrap();
        }
        let err = limiter
            .check("ann", None)
            .await
            .expect_err("the name is used up");
        let after = err.retry_after().expect("says when");
        assert!(
            after > Duration::from_secs(58) && after <= Duration::from_secs(60),
            "{after:?}"
        );
        limiter
            .check(
                "ann",
                Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1))),
            )
            .await
            .expect_err("the name is limited from any address");
        limiter
            .check("bob", ADDR)
            .await
            .expect_err("the address is used up for any name");
        limiter
            .check("bob", None)
            .await
            .expect("another name from elsewhere is fine");
    }

    #[tokio::test]
    async fn failures_leave_the_window_and_success_clears_the_name() {
        let limiter = FailureLimiter::new(accounts().await, 1, Duration::from_millis(50));
        let at = 1_000_000;
        limiter.failed_at("ann", None, at).await.unwrap();
        limiter
            .check_at("ann", None, at + 49)
            .await
            .expect_err("limited");
        limiter
            .check_at("ann", None, at + 50)
            .await
            .expect("the failure left the window");

        let limiter = FailureLimiter::new(accounts().await, 1, Duration::from_secs(60));
        limiter.failed("ann", ADDR).await.unwrap();
        limiter.succeeded("ann").await.unwrap();
        limiter
            .check("ann", None)
            .await
            .expect("cleared by a good login");
        limiter
            .check("ann", ADDR)
            .await
            .expect_err("the address keeps its count");
    }

    /// The hourly purge deletes records whose failures have all left the window, and keeps the rest.
    #[tokio::test]
    async fn the_purge_deletes_records_out_of_the_window() {
        let accounts = accounts().await;
        let limiter = FailureLimiter::new(accounts.clone(), 3, Duration::from_secs(60));
        limiter.failed_at("old", None, 1_000_000).await.unwrap();
        limiter.failed("new", ADDR).await.unwrap();
        assert_eq!(accounts.purge_expired_sessions().await.unwrap(), 1);
        let left: Vec<String> = accounts
            .records::<StoredFailures>(FAILURE_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(left.len(), 2, "the new name's and its address's: {left:?}");
        assert!(left.contains(&name_key("new")), "{left:?}");
    }

    /// Replicas share one count: failures recorded through two limiters, some at once, all count in
    /// a third, and the record never holds more than the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_count_each_others_failures() {
        let accounts = accounts().await;
        let replicas: Vec<Arc<FailureLimiter>> = (0..2)
            .map(|_| {
                Arc::new(FailureLimiter::new(
                    accounts.clone(),
                    6,
                    Duration::from_secs(60),
                ))
            })
            .collect();
        let mut racing = tokio::task::JoinSet::new();
        for i in 0..6 {
            let limiter = replicas[i % 2].clone();
            racing.spawn(async move { limiter.failed("ann", None).await });
        }
        while let Some(done) = racing.join_next().await {
            done.unwrap().unwrap();
        }
        let third = FailureLimiter::new(accounts.clone(), 6, Duration::from_secs(60));
        third
            .check("ann", None)
            .await
            .expect_err("six failures through two replicas use up the limit of six");
        let stored: StoredFailures = from_json(
            "ann",
            &accounts
                .kv
                .get(&name_key("ann"))
                .await
                .unwrap()
                .unwrap()
                .value,
        )
        .unwrap();
        assert_eq!(stored.times_ms.len(), 6);
    }
}
