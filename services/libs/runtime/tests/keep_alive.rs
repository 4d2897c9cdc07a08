//! A handler slower than the ack wait keeps its message: the runner tells the bus the message is still
//! being worked on, so it is not redelivered to another replica (here, to the same runner's other slot)
//! and handled twice.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_bus::memory::MemoryBus;
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, RunnerOptions};
use tokio::sync::Notify;

/// Takes two and a half ack waits, as a slow LLM answer would: the ack wait is wall-clock time on the
/// bus, so the slowness must be too. Says when its first call is done.
#[derive(Default)]
struct Slow {
    calls: AtomicUsize,
    done: Notify,
}

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, _: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        self.done.notify_one();
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_handler_slower_than_the_ack_wait_is_not_redelivered() {
    let bus = MemoryBus::new();
    let slow = Arc::new(Slow::default());
    let options = RunnerOptions {
        ack_wait_secs: 1,
        ..RunnerOptions::default()
    };
    let running = support::parser(Arc::new(bus.clone()), slow.clone(), options).await;
    support::publish_received(&bus).await;

    tokio::time::timeout(Duration::from_secs(10), slow.done.notified())
        .await
        .expect("the handler finished");
    // Any redelivery would have started during those 2.5 s; stopping waits for every call in hand.
    running.stop().await;
    assert_eq!(
        slow.calls.load(Ordering::SeqCst),
        1,
        "handled once, not again after each ack wait"
    );
}
