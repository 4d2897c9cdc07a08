//! A bus that stops answering while a role publishes a finished message's output costs the message
//! neither a delivery nor a second handling: the runner publishes again in place until the bus is
//! back, where a nak (which cannot reach a bus that is down either) would leave it to its ack wait, or
//! to the dead letters once the outage outlasted the retry budget.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, BusError, Consumer, ConsumerSpec, Kv, OutMessage};
use switchboard_proto::Stage;
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, RunnerOptions, Subjects};

const MAX_DELIVER: u64 = 3;
/// Publishes that find the bus away: more than the deliveries a message may have.
const DOWN_FOR: usize = 2 * MAX_DELIVER as usize + 1;

/// The in-process bus, unreachable for the first `DOWN_FOR` publishes on `down_on`.
#[derive(Debug)]
struct Away {
    inner: MemoryBus,
    down_on: String,
    failed: AtomicUsize,
}

#[async_trait]
impl Bus for Away {
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError> {
        if msg.subject == self.down_on && self.failed.fetch_add(1, Ordering::SeqCst) < DOWN_FOR {
            return Err(BusError::Unreachable("connection closed".into()));
        }
        self.inner.publish(msg).await
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        self.inner.consumer(spec).await
    }

    async fn replica_consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        self.inner.replica_consumer(spec).await
    }

    async fn backlog(&self, durable: &str) -> Result<Option<u64>, BusError> {
        self.inner.backlog(durable).await
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        self.inner.kv(bucket).await
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    async fn reachable(&self) -> Result<(), BusError> {
        self.inner.reachable().await
    }
}

/// Passes every ticket on to `parsed`, counting its calls and the attempts they saw.
struct Pass {
    calls: AtomicUsize,
    output: String,
}

#[async_trait]
impl Handler for Pass {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        assert_eq!(msg.attempt, 1, "redelivered");
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec![Outbound {
            subject: self.output.clone(),
            msg_id: None,
            payload: msg.payload.clone(),
        }])
    }
}

#[tokio::test]
async fn an_output_the_bus_cannot_take_is_published_once_it_is_back() {
    let inner = MemoryBus::new();
    let subjects = Subjects::default();
    let away = Arc::new(Away {
        inner: inner.clone(),
        down_on: subjects.stage(Stage::Parsed),
        failed: AtomicUsize::new(0),
    });
    let pass = Arc::new(Pass {
        calls: AtomicUsize::new(0),
        output: subjects.stage(Stage::Parsed),
    });
    let parsed = support::reader(&inner, subjects.stage(Stage::Parsed), "test-parsed").await;
    let dead = support::reader(&inner, subjects.deadletter_all(), "test-dead").await;
    let options = RunnerOptions {
        max_deliver: MAX_DELIVER,
        ack_wait_secs: 30,
        retry_backoff_ms: 10,
        ..RunnerOptions::default()
    };
    let running = support::parser(away.clone(), pass.clone(), options).await;
    support::publish_received(&inner).await;

    // Well within the 30 s ack wait: the output went out as soon as the bus took it.
    let handled = tokio::time::timeout(Duration::from_secs(20), parsed.next())
        .await
        .expect("the output was published once the bus answered")
        .expect("a delivery");
    assert_eq!(&handled.payload[..], b"ticket");
    running.stop().await;

    assert_eq!(away.failed.load(Ordering::SeqCst), DOWN_FOR + 1);
    assert_eq!(pass.calls.load(Ordering::SeqCst), 1, "handled once");
    let letter = tokio::time::timeout(Duration::from_millis(300), dead.next()).await;
    assert!(letter.is_err(), "nothing was dead-lettered");
}
