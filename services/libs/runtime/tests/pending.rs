//! `switchboard_consumer_pending{role}` follows the role's backlog: what waits and what is in hand
//! while the handler is held, nothing once it has acknowledged them all.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, OutMessage};
use switchboard_proto::Stage;
use switchboard_runtime::{
    Handler, HandlerError, Inbound, Metrics, Outbound, Publisher, RoleRunner, RunnerOptions,
    Subjects, Supervisor,
};
use tokio::sync::Semaphore;

/// Handles a message only once the test hands it a permit.
struct Held(Arc<Semaphore>);

#[async_trait]
impl Handler for Held {
    async fn handle(&self, _: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        self.0.acquire().await.expect("open").forget();
        Ok(Vec::new())
    }
}

/// Waits until the role's gauge reads `want`, or fails after 10 s.
async fn pending_reaches(metrics: &Metrics, want: u64) {
    let series = r#"switchboard_consumer_pending{role="sentiment"} "#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics.encode();
        let now = text.lines().find_map(|l| l.strip_prefix(series));
        if now == Some(want.to_string().as_str()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pending never read {want}; the last scrape said {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_pending_gauge_follows_the_backlog() {
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let permits = Arc::new(Semaphore::new(0));
    let metrics = Metrics::new();
    let (supervisor, _failures) = Supervisor::new();
    let running = RoleRunner {
        role: "sentiment",
        filter: subjects.stage(Stage::Parsed),
        each_replica_reads_all: false,
        handler: Arc::new(Held(permits.clone())),
        publisher: Publisher::new(Arc::new(bus.clone())),
        subjects: subjects.clone(),
        metrics: metrics.clone(),
        options: RunnerOptions {
            concurrency: 1,
            pending_poll_secs: 1,
            ..RunnerOptions::default()
        },
        signer: None,
    }
    .start(&supervisor)
    .await
    .expect("start");
    // Read at once at start, before anything was published.
    pending_reaches(&metrics, 0).await;
    for _ in 0..3 {
        bus.publish(OutMessage {
            subject: subjects.stage(Stage::Parsed),
            msg_id: None,
            headers: Default::default(),
            payload: bytes::Bytes::from_static(b"ticket"),
        })
        .await
        .expect("publish");
    }
    // One in hand, two waiting.
    pending_reaches(&metrics, 3).await;
    permits.add_permits(3);
    pending_reaches(&metrics, 0).await;
    running.stop().await;
}
