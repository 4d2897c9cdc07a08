//! Failed logins, counted per name and per client address over a sliding window: past the limit,
//! logins are refused (429) until the oldest failure leaves the window.
//!
//! The counts live in this process only. With several replicas an attacker gets the limit once per
//! replica, which still bounds guessing to a handful of tries a minute; a shared count would put a
//! bus write on every failed login, and a restart forgetting the counts costs nothing an attacker can
//! repeat quickly.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AuthError;

/// Above this many names and addresses, a recorded failure first drops those with none left in the
/// window, so a stream of made-up names cannot grow the map without bound.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Name(String),
    Addr(IpAddr),
}

#[derive(Debug)]
pub(crate) struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<Subject, VecDeque<Instant>>>,
}

fn subjects(name: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Subject> {
    std::iter::once(Subject::Name(name.to_owned())).chain(addr.map(Subject::Addr))
}

impl FailureLimiter {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: usize::try_from(max_failures).unwrap_or(usize::MAX),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses a login for `name` from `addr` while either has used up its failures, saying when
    /// the later of the two frees up.
    pub(crate) fn check(&self, name: &str, addr: Option<IpAddr>) -> Result<(), AuthError> {
        self.check_at(name, addr, Instant::now())
    }

    /// [`Self::check`] as at `now`.
    fn check_at(&self, name: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), AuthError> {
        let mut failures = self.lock();
        let wait = subjects(name, addr)
            .filter_map(|subject| {
                let times = failures.get_mut(&subject)?;
                self.forget_old(times, now);
                // The oldest of the last `max` failures must leave the window to free a try.
                let blocking = times.len().checked_sub(self.max_failures)?;
                Some(times[blocking] + self.window - now)
            })
            .max();
        match wait {
            Some(retry_after) => Err(AuthError::TooManyFailures { retry_after }),
            None => Ok(()),
        }
    }

    pub(crate) fn failed(&self, name: &str, addr: Option<IpAddr>) {
        self.failed_at(name, addr, Instant::now());
    }

    /// [`Self::failed`] as at `now`.
    fn failed_at(&self, name: &str, addr: Option<IpAddr>, now: Instant) {
        let mut failures = self.lock();
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| {
                self.forget_old(times, now);
                !times.is_empty()
            });
        }
        for subject in subjects(name, addr) {
            let times = failures.entry(subject).or_default();
            self.forget_old(times, now);
            times.push_back(now);
        }
    }

    /// A good login clears the name's failures (someone mistyped, then got it right); the address
    /// keeps its count, since one address may be trying many names.
    pub(crate) fn succeeded(&self, name: &str) {
        self.lock().remove(&Subject::Name(name.to_owned()));
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            times.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, VecDeque<Instant>>> {
        // The map holds counts only; one a panicking thread left half-updated is still usable.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_errors::ServiceError;

    const ADDR: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn the_limit_counts_per_name_and_per_address() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            limiter.check("ann", ADDR).expect("under the limit");
            limiter.failed("ann", ADDR);
        }
        let err = limiter.check("ann", None).expect_err("the name is used up");
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
            .expect_err("the name is limited from any address");
        limiter
            .check("bob", ADDR)
            .expect_err("the address is used up for any name");
        limiter
            .check("bob", None)
            .expect("another name from elsewhere is fine");
    }

    #[test]
    fn failures_leave_the_window_and_success_clears_the_name() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(50));
        let at = Instant::now();
        limiter.failed_at("ann", None, at);
        limiter
            .check_at("ann", None, at + Duration::from_millis(49))
            .expect_err("limited");
        limiter
            .check_at("ann", None, at + Duration::from_millis(50))
            .expect("the failure left the window");

        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        limiter.failed("ann", ADDR);
        limiter.succeeded("ann");
        limiter.check("ann", None).expect("cleared by a good login");
        limiter
            .check("ann", ADDR)
            .expect_err("the address keeps its count");
    }
}
