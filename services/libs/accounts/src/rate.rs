//! Requests per credential: a token bucket for each caller, filled at a steady rate up to a burst, so
//! one connector or script in a loop cannot take the service from everyone else. Both doors share one
//! set of buckets, so a caller gets one budget whether it calls over HTTP or gRPC.
//!
//! Unlike the failed-login counts, the buckets live in this process only: with several replicas a
//! caller gets the rate once per replica, which still bounds what one credential can do, without a bus
//! write on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AuthError;
use crate::principal::{Principal, Via};

/// Above this many callers, a new one first drops the buckets that have filled up again (callers idle
/// for a while, whose state a fresh bucket reproduces), so the map stays bounded by the active callers.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug)]
pub(crate) struct RequestLimiter {
    /// Tokens added per second; 0 turns the limit off.
    per_second: f64,
    /// The bucket's size: requests a caller may send at once after a quiet spell.
    burst: f64,
    buckets: Mutex<HashMap<(Via, String), Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RequestLimiter {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the caller's bucket, or says how long until it holds one.
    pub(crate) fn check(&self, caller: &Principal) -> Result<(), AuthError> {
        self.check_at(caller, Instant::now())
    }

    /// [`Self::check`] as at `now`.
    fn check_at(&self, caller: &Principal, now: Instant) -> Result<(), AuthError> {
        if self.per_second == 0.0 {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            // Counts only; a map a panicking thread left half-updated is still usable.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (caller.via, caller.name.clone());
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            return Ok(());
        }
        *bucket = Bucket { tokens, at: now };
        Err(AuthError::RateLimited {
            name: caller.name.clone(),
            retry_after: Duration::from_secs_f64((1.0 - tokens) / self.per_second),
        })
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use switchboard_errors::ServiceError;

    fn caller(name: &str, via: Via) -> Principal {
        Principal {
            name: name.to_owned(),
            role: Role::Connector,
            via,
        }
    }

    #[test]
    fn a_burst_then_the_steady_rate_per_caller() {
        let limiter = RequestLimiter::new(10, 3);
        let web = caller("web-form", Via::ApiToken);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&web, t0).unwrap();
        }
        let refused = limiter.check_at(&web, t0).unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
        assert_eq!(
            refused.to_string(),
            "too many requests from \"web-form\": retry in 1 s"
        );
        // Another credential, and the same name on another kind of credential, have their own buckets.
        limiter
            .check_at(&caller("mail", Via::ApiToken), t0)
            .unwrap();
        limiter
            .check_at(&caller("web-form", Via::Session), t0)
            .unwrap();
        // A tenth of a second refills one request, and no more.
        let t1 = t0 + Duration::from_millis(100);
        limiter.check_at(&web, t1).unwrap();
        assert!(limiter.check_at(&web, t1).is_err());
        // A long pause refills the burst, not more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            limiter.check_at(&web, t2).unwrap();
        }
        assert!(limiter.check_at(&web, t2).is_err());
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let limiter = RequestLimiter::new(0, 1);
        let web = caller("web-form", Via::ApiToken);
        let now = Instant::now();
        for _ in 0..1000 {
            limiter.check_at(&web, now).unwrap();
        }
    }

    #[test]
    fn idle_callers_are_forgotten_when_the_map_is_full() {
        let limiter = RequestLimiter::new(1000, 2);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            limiter
                .check_at(&caller(&format!("c{i}"), Via::ApiToken), t0)
                .unwrap();
        }
        // A second later every bucket is full again, so the next new caller drops them all.
        let later = t0 + Duration::from_secs(1);
        limiter
            .check_at(&caller("new", Via::ApiToken), later)
            .unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
