//! Per-provider limits: how many requests are in flight (a semaphore) and how many start per second (a
//! token bucket). Providers enforce both per key and answer 429 beyond them; waiting here is cheaper
//! than a refused request and its retry.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    in_flight: Semaphore,
    /// `None` for no rate limit.
    bucket: Option<Mutex<Bucket>>,
}

/// A token bucket holding at most one second's worth of tokens, so a burst after a quiet spell stays
/// within what the provider accepts in a second.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    capacity: f64,
    /// May go negative: each waiting caller reserves its token up front, so callers are served in order
    /// and nobody wakes just to find the token taken.
    tokens: f64,
    refilled: Instant,
}

impl Limiter {
    /// `requests_per_second` of 0 (or anything not above 0) means no rate limit.
    pub fn new(max_concurrency: usize, requests_per_second: f64) -> Self {
        let bucket = (requests_per_second > 0.0 && requests_per_second.is_finite()).then(|| {
            let capacity = requests_per_second.max(1.0);
            Mutex::new(Bucket {
                per_second: requests_per_second,
                capacity,
                tokens: capacity,
                refilled: Instant::now(),
            })
        });
        Self {
            in_flight: Semaphore::new(max_concurrency.max(1)),
            bucket,
        }
    }

    /// Waits for a slot and a token. The slot is held until the permit is dropped. Cancel-safe for the
    /// slot; a cancelled wait for a token gives its reservation up to time, which only slows the next
    /// caller by one interval. `None` only if the semaphore were closed, which nothing does.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.in_flight.acquire().await.ok()?;
        if let Some(wait) = self.reserve() {
            tokio::time::sleep(wait).await;
        }
        Some(permit)
    }

    /// Takes a token, returning how long to wait until it is really there.
    fn reserve(&self) -> Option<Duration> {
        let mut b = self
            .bucket
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * b.per_second).min(b.capacity);
        b.refilled = now;
        b.tokens -= 1.0;
        (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / b.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_beyond_the_rate() {
        let limiter = Limiter::new(10, 2.0);
        let start = Instant::now();
        for _ in 0..6 {
            drop(limiter.acquire().await);
        }
        // Two at once from the full bucket, then one every half second.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((elapsed - 2.0).abs() < 0.01, "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_limit_at_zero() {
        let limiter = Limiter::new(1, 0.0);
        let start = Instant::now();
        for _ in 0..100 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn bounds_concurrency() {
        let limiter = Limiter::new(2, 0.0);
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        assert!(a.is_some() && b.is_some());
        let third = tokio::time::timeout(Duration::from_millis(20), limiter.acquire()).await;
        assert!(third.is_err(), "a third request waits");
        drop(a);
        assert!(limiter.acquire().await.is_some());
    }
}
