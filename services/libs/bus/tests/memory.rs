//! The in-process bus: the shared conformance suite, plus what only the twin can show cheaply
//! (retention by count, the de-duplication window under paused time, cancelled waits).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, ConsumerSpec, Headers, OutMessage, conformance};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bus_passes_the_conformance_suite() {
    conformance::run_all(Arc::new(MemoryBus::new()), "conformance").await;
}

fn spec(durable: &str, filter: &str, ack_wait: Duration) -> ConsumerSpec {
    ConsumerSpec {
        durable: durable.to_owned(),
        filter: filter.to_owned(),
        ack_wait,
    }
}

fn message(subject: &str, payload: &str, msg_id: Option<&str>) -> OutMessage {
    OutMessage {
        subject: subject.to_owned(),
        msg_id: msg_id.map(str::to_owned),
        headers: Headers::new(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

#[test]
fn is_not_durable() {
    assert!(!MemoryBus::default().durable());
}

#[tokio::test]
async fn oldest_messages_are_dropped_beyond_capacity() {
    let bus = MemoryBus::with_capacity(3);
    let consumer = bus
        .consumer(spec("d", "t.>", Duration::from_secs(30)))
        .await
        .unwrap();
    for i in 0..5 {
        bus.publish(message("t.x", &i.to_string(), None))
            .await
            .unwrap();
    }
    assert_eq!(consumer.pending().await.unwrap(), 3);
    let first = timeout(WAIT, consumer.next()).await.unwrap().unwrap();
    assert_eq!(first.payload, Bytes::from_static(b"2"));
}

#[tokio::test]
async fn an_unacked_message_dropped_by_retention_is_not_redelivered() {
    let bus = MemoryBus::with_capacity(2);
    let consumer = bus
        .consumer(spec("d", "t.>", Duration::from_millis(50)))
        .await
        .unwrap();
    bus.publish(message("t.x", "dropped", None)).await.unwrap();
    let in_flight = timeout(WAIT, consumer.next()).await.unwrap().unwrap();
    assert_eq!(in_flight.payload, Bytes::from_static(b"dropped"));
    bus.publish(message("t.x", "kept-1", None)).await.unwrap();
    bus.publish(message("t.x", "kept-2", None)).await.unwrap();
    assert_eq!(consumer.pending().await.unwrap(), 2);

    let next = timeout(WAIT, consumer.next()).await.unwrap().unwrap();
    assert_eq!(next.payload, Bytes::from_static(b"kept-1"));
}

#[tokio::test(start_paused = true)]
async fn a_message_id_may_repeat_after_the_two_minute_window() {
    let bus = MemoryBus::new();
    let consumer = bus
        .consumer(spec("d", "t.>", Duration::from_secs(600)))
        .await
        .unwrap();
    bus.publish(message("t.x", "one", Some("id")))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(119)).await;
    bus.publish(message("t.x", "inside", Some("id")))
        .await
        .unwrap();
    assert_eq!(consumer.pending().await.unwrap(), 1);

    tokio::time::advance(Duration::from_secs(2)).await;
    bus.publish(message("t.x", "after", Some("id")))
        .await
        .unwrap();
    assert_eq!(consumer.pending().await.unwrap(), 2);
}

#[tokio::test]
async fn a_cancelled_next_loses_nothing() {
    let bus = MemoryBus::new();
    let consumer = bus
        .consumer(spec("d", "t.>", Duration::from_secs(30)))
        .await
        .unwrap();
    // Give up on a wait, as a shutdown select would.
    let gave_up = timeout(Duration::from_millis(20), consumer.next()).await;
    assert!(gave_up.is_err(), "nothing was published yet");

    bus.publish(message("t.x", "kept", None)).await.unwrap();
    let delivery = timeout(WAIT, consumer.next()).await.unwrap().unwrap();
    assert_eq!(delivery.payload, Bytes::from_static(b"kept"));
    assert_eq!(delivery.attempt, 1);
}

#[tokio::test]
async fn a_waiting_next_is_woken_by_a_matching_publish() {
    let bus = MemoryBus::new();
    let consumer = bus
        .consumer(spec("d", "t.x", Duration::from_secs(30)))
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.next().await }
    });
    tokio::task::yield_now().await;
    bus.publish(message("t.y", "not for us", None))
        .await
        .unwrap();
    bus.publish(message("t.x", "wake", None)).await.unwrap();
    let delivery = timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(delivery.payload, Bytes::from_static(b"wake"));
}

#[tokio::test]
async fn a_new_durable_starts_at_the_oldest_stored_match() {
    let bus = MemoryBus::new();
    bus.publish(message("other.x", "skip", None)).await.unwrap();
    bus.publish(message("t.x", "first", None)).await.unwrap();
    let consumer = bus
        .consumer(spec("late", "t.*", Duration::from_secs(30)))
        .await
        .unwrap();
    let delivery = timeout(WAIT, consumer.next()).await.unwrap().unwrap();
    assert_eq!(delivery.payload, Bytes::from_static(b"first"));
}
