//! Requests per credential: a token bucket for each caller, filled at a steady rate up to a burst, so
//! one connector or script in a loop cannot take the service from everyone else. Both doors share one
//! set of buckets, so a caller gets one budget whether it calls over HTTP or gRPC.
//!
//! Every replica draws on the same bucket, kept in the accounts bucket, so a caller gets the rate once
//! however many replicas serve it. A replica takes the bucket's tokens a lease at a time (a tenth of a
//! second's worth) by a revision-checked write, and hands the lease out with no bus I/O: the bus sees a
//! write per lease, not per request. A lease not used up within [`LEASE_MS`] is dropped, never given
//! back, so leases can only make the limit stricter for a moment (a caller's tokens held by a replica
//! it stopped calling), never looser. Records of buckets that have filled up again go with the hourly
//! purge ([`Accounts::purge_expired_sessions`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, from_json, now_ms};
use crate::error::AuthError;
use crate::principal::{Principal, Via};
use crate::secret::sha256_hex;

pub(crate) const RATE_PREFIX: &str = "request-rate.";
/// How long a replica may hand out the tokens it leased.
const LEASE_MS: u64 = 1_000;
/// Read-modify-write rounds a draw tries before the request is refused. Each round lost is a round
/// another replica won, taking tokens, so a draw ends long before this unless the bucket is
/// drawn on by very many replicas at once.
const RACES: usize = 64;
/// Above this many callers, a new one first drops the leases that have expired, so the map stays
/// bounded by the active callers.
const PRUNE_ABOVE: usize = 4096;

/// A caller's bucket as every replica sees it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredBucket {
    tokens: f64,
    at_ms: u64,
    /// When it is full again: from then on a fresh bucket is the same, and the record can go.
    pub(crate) until_ms: u64,
}

#[derive(Debug)]
pub(crate) struct RequestLimiter {
    accounts: Accounts,
    /// Tokens added per second; 0 turns the limit off.
    per_second: f64,
    /// The bucket's size: requests a caller may send at once after a quiet spell.
    burst: f64,
    /// Tokens one draw takes at most.
    lease: f64,
    /// Behind a lock of its own per caller, so a caller's requests on this replica wait for one
    /// draw and share its lease instead of racing each other to the bus.
    leases: Mutex<Leases>,
}

/// Each caller's lease on this replica, by the credential's kind and name.
type Leases = HashMap<(Via, String), Arc<tokio::sync::Mutex<Lease>>>;

/// Tokens this replica took from a caller's bucket and has not handed out yet.
#[derive(Debug, Clone, Copy, Default)]
struct Lease {
    tokens: f64,
    until_ms: u64,
}

impl RequestLimiter {
    pub(crate) fn new(accounts: Accounts, per_second: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            accounts,
            per_second: f64::from(per_second),
            burst,
            lease: (f64::from(per_second) / 10.0).floor().clamp(1.0, burst),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the caller's bucket, or says how long until it holds one.
    pub(crate) async fn check(&self, caller: &Principal) -> Result<(), AuthError> {
        self.check_at(caller, now_ms()).await
    }

    /// [`Self::check`] as at `now` (ms since the epoch: wall time, which every replica shares).
    async fn check_at(&self, caller: &Principal, now: u64) -> Result<(), AuthError> {
        if self.per_second == 0.0 {
            return Ok(());
        }
        let lease = self.lease_of(caller, now);
        let mut lease = lease.lock().await;
        if lease.until_ms <= now || lease.tokens < 1.0 {
            *lease = Lease {
                tokens: self.draw(caller, now).await?,
                until_ms: now + LEASE_MS,
            };
        }
        lease.tokens -= 1.0;
        Ok(())
    }

    fn lease_of(&self, caller: &Principal, now: u64) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut leases = self.lock();
        let key = (caller.via, caller.name.clone());
        if leases.len() > PRUNE_ABOVE && !leases.contains_key(&key) {
            // Kept while a request holds it (a lease being drawn among them), or while it lasts.
            leases.retain(|_, lease| {
                Arc::strong_count(lease) > 1 || lease.try_lock().is_ok_and(|l| l.until_ms > now)
            });
        }
        Arc::clone(leases.entry(key).or_default())
    }

    fn lock(&self) -> MutexGuard<'_, Leases> {
        self.leases
            .lock()
            // Leases only; a map a panicking thread left half-updated is still usable.
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes up to a lease of whole tokens from the shared bucket, at least one, or refuses with
    /// the time until the bucket holds one.
    async fn draw(&self, caller: &Principal, now: u64) -> Result<f64, AuthError> {
        let key = bucket_key(caller);
        for _ in 0..RACES {
            let (tokens, at, revision) = match self.accounts.kv.get(&key).await? {
                None => (self.burst, now, None),
                Some(entry) => {
                    let stored: StoredBucket = from_json(&key, &entry.value)?;
                    // Never back in time: a replica whose clock is behind, or a request that
                    // read the time before waiting for its lease, must not refill the time
                    // between twice.
                    let at = now.max(stored.at_ms);
                    (self.refilled(&stored, at), at, Some(entry.revision))
                }
            };
            if tokens < 1.0 {
                return Err(self.refusal(caller, tokens));
            }
            let taken = tokens.floor().min(self.lease);
            let left = tokens - taken;
            let record = StoredBucket {
                tokens: left,
                at_ms: at,
                until_ms: at + ((self.burst - left) / self.per_second * 1000.0).ceil() as u64,
            };
            if self
                .accounts
                .write_if_unchanged(&key, &record, revision)
                .await?
            {
                return Ok(taken);
            }
        }
        // Every round lost to other replicas drawing for this caller: it is sending fast enough
        // that a wait is the honest answer.
        Err(self.refusal(caller, 0.0))
    }

    fn refilled(&self, stored: &StoredBucket, at: u64) -> f64 {
        let elapsed = at.saturating_sub(stored.at_ms) as f64 / 1000.0;
        (stored.tokens + elapsed * self.per_second).min(self.burst)
    }

    fn refusal(&self, caller: &Principal, tokens: f64) -> AuthError {
        AuthError::RateLimited {
            name: caller.name.clone(),
            retry_after: Duration::from_secs_f64((1.0 - tokens) / self.per_second),
        }
    }
}

/// The record of a caller's bucket: hashed, since a name may hold any character.
fn bucket_key(caller: &Principal) -> String {
    let via = match caller.via {
        Via::Session => "session",
        Via::ApiToken => "api-token",
        Via::Jwt => "jwt",
        Via::Sso => "sso",
    };
    format!("{RATE_PREFIX}{via}.{}", sha256_hex(&caller.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_errors::ServiceError;

    const T0: u64 = 1_800_000_000_000;

    fn caller(name: &str, via: Via) -> Principal {
        Principal {
            name: name.to_owned(),
            role: Role::Connector,
            via,
        }
    }

    async fn accounts() -> Accounts {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        Accounts::open(&bus, Duration::from_secs(3600))
            .await
            .unwrap()
    }

    async fn admitted(limiter: &RequestLimiter, who: &Principal, at: u64, tries: usize) -> usize {
        let mut n = 0;
        for _ in 0..tries {
            n += usize::from(limiter.check_at(who, at).await.is_ok());
        }
        n
    }

    #[tokio::test]
    async fn a_burst_then_the_steady_rate_per_caller() {
        let limiter = RequestLimiter::new(accounts().await, 10, 3);
        let web = caller("web-form", Via::ApiToken);
        for _ in 0..3 {
            limiter.check_at(&web, T0).await.unwrap();
        }
        let refused = limiter.check_at(&web, T0).await.unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
        assert_eq!(
            refused.to_string(),
            "too many requests from \"web-form\": retry in 1 s"
        );
        // Another credential, and the same name on another kind of credential, have their own buckets.
        limiter
            .check_at(&caller("mail", Via::ApiToken), T0)
            .await
            .unwrap();
        limiter
            .check_at(&caller("web-form", Via::Session), T0)
            .await
            .unwrap();
        // A tenth of a second refills one request, and no more.
        assert_eq!(admitted(&limiter, &web, T0 + 100, 5).await, 1);
        // A long pause refills the burst, not more.
        assert_eq!(admitted(&limiter, &web, T0 + 60_100, 10).await, 3);
    }

    #[tokio::test]
    async fn a_rate_of_zero_is_no_limit() {
        let limiter = RequestLimiter::new(accounts().await, 0, 1);
        let web = caller("web-form", Via::ApiToken);
        assert_eq!(admitted(&limiter, &web, T0, 1000).await, 1000);
    }

    /// Three replicas on one bucket give a caller the burst and the rate once, not three times, and
    /// the bus sees a write per lease, not per request.
    #[tokio::test]
    async fn replicas_share_one_budget_per_caller() {
        let accounts = accounts().await;
        let replicas: Vec<RequestLimiter> = (0..3)
            .map(|_| RequestLimiter::new(accounts.clone(), 100, 200))
            .collect();
        let web = caller("web-form", Via::ApiToken);
        let revision = || async {
            accounts
                .kv
                .get(&bucket_key(&web))
                .await
                .unwrap()
                .map_or(0, |e| e.revision)
        };
        let mut burst = 0;
        for replica in &replicas {
            burst += admitted(replica, &web, T0, 150).await;
        }
        assert_eq!(burst, 200, "the burst once over three replicas");
        // One second later: a hundred tokens, handed out in leases of ten.
        let first_write = revision().await;
        let mut second = 0;
        for replica in replicas.iter().cycle().take(300) {
            second += usize::from(replica.check_at(&web, T0 + 1000).await.is_ok());
        }
        assert_eq!(second, 100, "the rate once over three replicas");
        let writes = revision().await - first_write;
        assert!(writes <= 12, "{writes} writes for 100 requests");
        // Another caller is untouched by it.
        assert_eq!(
            admitted(&replicas[0], &caller("mail", Via::ApiToken), T0, 5).await,
            5
        );
    }

    /// Tokens a replica leased and did not hand out within the lease are gone, not kept for later.
    #[tokio::test]
    async fn an_unused_lease_expires() {
        let limiter = RequestLimiter::new(accounts().await, 100, 10);
        let web = caller("web-form", Via::ApiToken);
        assert_eq!(admitted(&limiter, &web, T0, 1).await, 1);
        // The lease held 9 more; the bucket is empty until it refills.
        assert_eq!(admitted(&limiter, &web, T0 + 1, 9).await, 9);
        limiter.check_at(&web, T0 + 1).await.unwrap_err();
        // A lease taken and left: after it expires, only what the bucket refilled is admitted.
        assert_eq!(admitted(&limiter, &web, T0 + 100, 1).await, 1);
        let after = T0 + 100 + LEASE_MS;
        assert_eq!(admitted(&limiter, &web, after, 20).await, 10);
    }

    /// A draw stamped earlier than the bucket's last (a replica whose clock is behind) takes from
    /// what is there and refills nothing twice.
    #[tokio::test]
    async fn a_clock_behind_refills_nothing_twice() {
        let limiter = RequestLimiter::new(accounts().await, 10, 10);
        let web = caller("web-form", Via::ApiToken);
        assert_eq!(admitted(&limiter, &web, T0, 20).await, 10);
        // Half a second refills five; one is taken, four are left.
        assert_eq!(admitted(&limiter, &web, T0 + 500, 1).await, 1);
        assert_eq!(admitted(&limiter, &web, T0 + 100, 1).await, 1);
        assert_eq!(admitted(&limiter, &web, T0 + 500, 10).await, 3);
    }

    #[tokio::test]
    async fn idle_callers_are_forgotten_when_the_map_is_full() {
        let limiter = RequestLimiter::new(accounts().await, 1000, 200);
        for i in 0..=PRUNE_ABOVE {
            limiter
                .check_at(&caller(&format!("c{i}"), Via::ApiToken), T0)
                .await
                .unwrap();
        }
        // Past every lease, the next new caller drops them all.
        limiter
            .check_at(&caller("new", Via::ApiToken), T0 + LEASE_MS)
            .await
            .unwrap();
        assert_eq!(limiter.lock().len(), 1);
    }

    /// The hourly purge deletes the records of buckets that are full again, and keeps the rest.
    #[tokio::test]
    async fn the_purge_deletes_full_buckets() {
        let accounts = accounts().await;
        let limiter = RequestLimiter::new(accounts.clone(), 10, 10);
        limiter
            .check_at(&caller("old", Via::ApiToken), 1_000_000)
            .await
            .unwrap();
        // Used an hour from now, so still filling at the purge.
        limiter
            .check_at(&caller("new", Via::ApiToken), now_ms() + 3_600_000)
            .await
            .unwrap();
        assert_eq!(accounts.purge_expired_sessions().await.unwrap(), 1);
        let left: Vec<String> = accounts
            .records::<StoredBucket>(RATE_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(left, [bucket_key(&caller("new", Via::ApiToken))]);
    }
}
