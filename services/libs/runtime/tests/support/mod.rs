//! What the runner tests share: a parser role on the in-process bus, a ticket for it, and a reader of
//! what it gives.

#![allow(dead_code)] // Each test binary uses its own part of the support module.

use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, Consumer, ConsumerSpec, OutMessage};
use switchboard_proto::Stage;
use switchboard_runtime::{
    Handler, Metrics, Publisher, RoleRunner, RunnerOptions, RunningRole, Subjects, Supervisor,
};

/// `handler` running as the parser role on `bus`, with `options`.
pub async fn parser(
    bus: Arc<dyn Bus>,
    handler: Arc<dyn Handler>,
    options: RunnerOptions,
) -> RunningRole {
    let subjects = Subjects::default();
    let (supervisor, _failures) = Supervisor::new();
    RoleRunner {
        role: "parser",
        filter: subjects.stage(Stage::Received),
        each_replica_reads_all: false,
        handler,
        publisher: Publisher::new(bus),
        subjects,
        metrics: Metrics::new(),
        options,
        signer: None,
    }
    .start(&supervisor)
    .await
    .expect("start")
}

/// Publishes one message, `b"ticket"`, where the parser reads.
pub async fn publish_received(bus: &MemoryBus) {
    bus.publish(OutMessage {
        subject: Subjects::default().stage(Stage::Received),
        msg_id: None,
        headers: Default::default(),
        payload: bytes::Bytes::from_static(b"ticket"),
    })
    .await
    .expect("publish");
}

/// A durable consumer of `filter` on `bus`, for a test to read what the role published.
pub async fn reader(bus: &MemoryBus, filter: String, durable: &str) -> Arc<dyn Consumer> {
    bus.consumer(ConsumerSpec {
        durable: durable.to_owned(),
        filter,
        ack_wait: Duration::from_secs(30),
    })
    .await
    .expect("consumer")
}
