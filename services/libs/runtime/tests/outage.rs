//! A dependency that stays down for longer than a message's whole retry budget costs the message no
//! delivery: while the handler says the dependency is unavailable, the runner keeps the delivery and
//! runs it again in place, so the message is handled once the outage ends, and not dead-lettered.

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_bus::memory::MemoryBus;
use switchboard_proto::Stage;
use switchboard_runtime::{Handler, HandlerError, Inbound, Outbound, RunnerOptions, Subjects};

const MAX_DELIVER: u64 = 3;
/// Calls that find the dependency down: far more than the deliveries a message may have.
const DOWN_FOR: usize = 4 * MAX_DELIVER as usize;

/// A handler whose dependency answers only from its `DOWN_FOR + 1`-th call on; records the delivery
/// attempt of every call.
struct Flaky {
    attempts: Mutex<Vec<u64>>,
    output: String,
}

#[async_trait]
impl Handler for Flaky {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        let calls = {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push(msg.attempt);
            attempts.len()
        };
        if calls <= DOWN_FOR {
            return Err(HandlerError::unavailable("connection refused"));
        }
        Ok(vec![Outbound {
            subject: self.output.clone(),
            msg_id: None,
            payload: msg.payload.clone(),
        }])
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_dead_letters_nothing() {
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let flaky = Arc::new(Flaky {
        attempts: Mutex::default(),
        output: subjects.stage(Stage::Parsed),
    });
    let parsed = support::reader(&bus, subjects.stage(Stage::Parsed), "test-parsed").await;
    let dead = support::reader(&bus, subjects.deadletter_all(), "test-dead").await;
    let options = RunnerOptions {
        max_deliver: MAX_DELIVER,
        ack_wait_secs: 1,
        retry_backoff_ms: 10,
        ..RunnerOptions::default()
    };
    let running = support::parser(Arc::new(bus.clone()), flaky.clone(), options).await;
    support::publish_received(&bus).await;

    let handled = tokio::time::timeout(Duration::from_secs(30), parsed.next())
        .await
        .expect("the message was handled once the dependency answered")
        .expect("a delivery");
    assert_eq!(&handled.payload[..], b"ticket");
    running.stop().await;

    let attempts = flaky.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), DOWN_FOR + 1, "{attempts:?}");
    assert!(
        attempts.iter().all(|&a| a == 1),
        "every try was the first delivery, none used up the budget: {attempts:?}"
    );
    let letter = tokio::time::timeout(Duration::from_millis(300), dead.next()).await;
    assert!(letter.is_err(), "nothing was dead-lettered");
}
