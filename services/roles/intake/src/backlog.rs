//! Admission by backlog: while a role that every ticket passes before its decision has more tickets
//! waiting or in hand than `intake.max_backlog`, HTTP and gRPC submissions are refused with 503 and
//! `Retry-After`, so that under overload the queues (and the memory they take) stay bounded, every
//! ticket accepted is decided in bounded time, and clients learn at once to come back later instead
//! of waiting on a ticket that would sit in a queue for minutes.
//!
//! Each role's backlog is read from the bus by its durable's name (what JetStream and the embedded bus
//! both count), every `intake.backlog_poll_ms`, by a task of the intake role; a submission only reads
//! the last reading. With several intake replicas each reads the same shared queues, so the bound holds
//! for the pipeline, not per replica, give or take what arrives within one poll.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_bus::Bus;
use switchboard_runtime::{BoxError, error_chain};

use crate::IntakeError;

/// The longest queue at the last reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Longest {
    role: String,
    waiting: u64,
}

/// The gate the HTTP and gRPC doors pass: open while every watched role's backlog is within bound.
#[derive(Debug)]
pub struct Backlog {
    bound: u64,
    retry_after: Duration,
    longest: Mutex<Longest>,
}

impl Backlog {
    pub fn new(bound: u64, retry_after: Duration) -> Self {
        Self {
            bound,
            retry_after,
            longest: Mutex::default(),
        }
    }

    /// Refuses while the last reading found a queue over the bound.
    pub fn admit(&self) -> Result<(), IntakeError> {
        let longest = self.longest.lock().unwrap_or_else(PoisonError::into_inner);
        if longest.waiting <= self.bound {
            return Ok(());
        }
        Err(IntakeError::Overloaded {
            role: longest.role.clone(),
            waiting: longest.waiting,
            bound: self.bound,
            retry_after: self.retry_after,
        })
    }

    /// Reads the backlog of each of `durables` once; a role whose durable does not exist yet has none.
    pub async fn read(&self, bus: &dyn Bus, durables: &[String]) -> Result<(), BoxError> {
        let mut longest = Longest::default();
        for durable in durables {
            let waiting = bus.backlog(durable).await?.unwrap_or(0);
            if waiting > longest.waiting {
                longest = Longest {
                    role: durable.clone(),
                    waiting,
                };
            }
        }
        *self.longest.lock().unwrap_or_else(PoisonError::into_inner) = longest;
        Ok(())
    }

    /// Reads the backlogs every `every`, for as long as the intake runs. A failed reading keeps the
    /// last one: the bus being unreachable already fails every publish, with its own error.
    pub async fn watch(
        self: Arc<Self>,
        bus: Arc<dyn Bus>,
        durables: Vec<String>,
        every: Duration,
    ) -> Result<(), BoxError> {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.read(bus.as_ref(), &durables).await {
                tracing::debug!(error = %error_chain(e.as_ref()), "pipeline backlog not read");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_bus::{Bus, ConsumerSpec, OutMessage};

    use super::*;

    async fn publish(bus: &MemoryBus, n: usize) {
        for i in 0..n {
            bus.publish(OutMessage {
                subject: format!("t.received.{i}"),
                msg_id: None,
                headers: Default::default(),
                payload: Bytes::from_static(b"{}"),
            })
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn refuses_while_the_longest_queue_is_over_the_bound_and_names_it() {
        let bus = MemoryBus::new();
        let durables = vec!["parser".to_owned(), "router".to_owned()];
        let gate = Arc::new(Backlog::new(3, Duration::from_secs(2)));
        gate.read(&bus, &durables).await.unwrap();
        assert!(gate.admit().is_ok(), "no consumer yet: no backlog");

        let parser = bus
            .consumer(ConsumerSpec {
                durable: "parser".into(),
                filter: "t.received.>".into(),
                ack_wait: Duration::from_secs(30),
            })
            .await
            .unwrap();
        publish(&bus, 3).await;
        gate.read(&bus, &durables).await.unwrap();
        assert!(gate.admit().is_ok(), "3 waiting is within a bound of 3");

        publish(&bus, 1).await;
        assert!(
            gate.admit().is_ok(),
            "a submission reads only the last reading"
        );
        gate.read(&bus, &durables).await.unwrap();
        let refused = gate.admit().expect_err("4 waiting is over the bound");
        match &refused {
            IntakeError::Overloaded {
                role,
                waiting,
                bound,
                retry_after,
            } => {
                assert_eq!((role.as_str(), *waiting, *bound), ("parser", 4, 3));
                assert_eq!(*retry_after, Duration::from_secs(2));
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(
            refused.to_string(),
            "the pipeline is behind: 4 tickets wait for parser, over intake.max_backlog = 3; retry in 2 s"
        );

        // An acknowledged delivery leaves the queue, and the gate opens at the next reading.
        let delivery = parser.next().await.unwrap();
        delivery.acker.ack().await.unwrap();
        gate.read(&bus, &durables).await.unwrap();
        assert!(gate.admit().is_ok());
    }
}
