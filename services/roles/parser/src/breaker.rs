//! A circuit breaker per provider. While the provider keeps failing, asking it again only makes every
//! ticket wait for its timeout before falling back; an open breaker sends tickets to the local parser at
//! once, and after a cooldown lets one trial request find out whether the provider is back.
//!
//! closed --N consecutive failures--> open --cooldown--> half-open --trial ok--> closed
//!                                      ^------------------trial failed----------'

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchboard_runtime::metrics::Flag;
use tokio::time::Instant;

#[derive(Debug)]
pub struct CircuitBreaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: Mutex<State>,
    /// Set while not closed (open, or half-open with its trial out): `switchboard_llm_breaker_open`.
    open: Flag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial request is in flight; everyone else is turned away until it reports.
    HalfOpen,
}

/// Leave to make one request. Report how it went with [`Pass::succeeded`] or [`Pass::failed`]; a pass
/// dropped unreported (its request was cancelled, say by the ticket's deadline) counts as a failure, so a
/// cancelled trial cannot leave the breaker half-open for ever.
#[must_use = "report the request's outcome"]
#[derive(Debug)]
pub struct Pass<'a> {
    breaker: &'a CircuitBreaker,
    reported: bool,
}

impl CircuitBreaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
            open: Flag::default(),
        }
    }

    /// Reports the breaker's state in `flag` from now on.
    pub fn reporting_to(mut self, flag: Flag) -> Self {
        flag.set(false);
        self.open = flag;
        self
    }

    /// A pass when a request may go out; `None` while open, or while a half-open trial is in flight.
    pub fn pass(&self) -> Option<Pass<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let current = *state;
        match current {
            State::Closed { .. } => {}
            State::Open { until } if Instant::now() >= until => *state = State::HalfOpen,
            State::Open { .. } | State::HalfOpen => return None,
        }
        Some(Pass {
            breaker: self,
            reported: false,
        })
    }

    fn record(&self, ok: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = match (*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.failures_to_open => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            // Enough failures in a row, or the trial failed: stay away for another cooldown. A request
            // that started before the breaker opened and fails now also restarts the cooldown.
            (_, false) => {
                if !matches!(*state, State::Open { .. }) {
                    tracing::warn!(cooldown = ?self.cooldown, "LLM circuit breaker opened");
                }
                State::Open {
                    until: Instant::now() + self.cooldown,
                }
            }
        };
        self.open.set(!matches!(*state, State::Closed { .. }));
    }
}

impl Pass<'_> {
    pub fn succeeded(mut self) {
        self.reported = true;
        self.breaker.record(true);
    }

    pub fn failed(mut self) {
        self.reported = true;
        self.breaker.record(false);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &CircuitBreaker) {
        b.pass().expect("a pass").failed();
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_recovers_through_one_trial() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        fail(&b);
        fail(&b);
        // A success in between resets the count.
        b.pass().expect("closed").succeeded();
        fail(&b);
        fail(&b);
        fail(&b);
        assert!(b.pass().is_none());

        tokio::time::advance(Duration::from_secs(10)).await;
        let trial = b.pass().expect("half-open trial");
        assert!(b.pass().is_none(), "one trial at a time");
        trial.failed();
        assert!(b.pass().is_none(), "a failed trial reopens");

        tokio::time::advance(Duration::from_secs(10)).await;
        b.pass().expect("second trial").succeeded();
        let first = b.pass().expect("closed again");
        let second = b.pass().expect("closed: no limit on passes");
        first.succeeded();
        second.succeeded();
    }

    #[tokio::test(start_paused = true)]
    async fn the_gauge_reads_1_from_opening_until_a_trial_succeeds() {
        let metrics = switchboard_runtime::Metrics::new();
        metrics.llm_started("deepseek", []);
        let open = || {
            metrics.encode().lines().find_map(|l| {
                l.strip_prefix(r#"switchboard_llm_breaker_open{provider="deepseek"} "#)
                    .map(str::to_owned)
            })
        };
        let b = CircuitBreaker::new(2, Duration::from_secs(10))
            .reporting_to(metrics.llm_breaker("deepseek"));
        fail(&b);
        assert_eq!(open().as_deref(), Some("0"), "one failure does not open it");
        fail(&b);
        assert_eq!(open().as_deref(), Some("1"));
        tokio::time::advance(Duration::from_secs(10)).await;
        let trial = b.pass().expect("half-open trial");
        assert_eq!(
            open().as_deref(),
            Some("1"),
            "half-open still keeps tickets away"
        );
        trial.succeeded();
        assert_eq!(open().as_deref(), Some("0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_counts_as_a_failure() {
        let b = CircuitBreaker::new(1, Duration::from_secs(5));
        fail(&b);
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(b.pass().expect("trial"));
        assert!(b.pass().is_none());
    }
}
