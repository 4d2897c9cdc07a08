//! What the integration tests share: an intake over an in-memory bus, a bus whose publishes fail, and a
//! reader of what intake published.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, BusError, Consumer, ConsumerSpec, Kv, OutMessage};
use switchboard_intake::{Intake, IntakeConfig};
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::{Metrics, Publisher, Subjects};

pub struct Fixture {
    pub bus: MemoryBus,
    pub idempotency: Arc<dyn Kv>,
    pub metrics: Metrics,
    pub subjects: Subjects,
    pub intake: Arc<Intake>,
}

pub async fn fixture() -> Fixture {
    fixture_with(IntakeConfig::default(), false).await
}

/// `failing`: every publish fails, as when the stream is unreachable; the KV still works.
pub async fn fixture_with(config: IntakeConfig, failing: bool) -> Fixture {
    let bus = MemoryBus::new();
    let idempotency = bus.kv("intake-idempotency").await.unwrap();
    let metrics = Metrics::new();
    let subjects = Subjects::default();
    let publish_to: Arc<dyn Bus> = if failing {
        Arc::new(FailingBus(bus.clone()))
    } else {
        Arc::new(bus.clone())
    };
    let intake = Arc::new(Intake::new(
        Publisher::new(publish_to),
        subjects.clone(),
        idempotency.clone(),
        metrics.clone(),
        config,
    ));
    Fixture {
        bus,
        idempotency,
        metrics,
        subjects,
        intake,
    }
}

impl Fixture {
    /// Every ticket published on the RECEIVED subject since the last call, acknowledged.
    pub async fn received(&self) -> Vec<Ticket> {
        let consumer = self.consumer(&self.subjects.stage(Stage::Received)).await;
        let mut tickets = Vec::new();
        while consumer.pending().await.unwrap() > 0 {
            let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                .await
                .unwrap()
                .unwrap();
            let ticket = Ticket::decode(delivery.payload.clone()).unwrap();
            assert_eq!(
                delivery.headers.get("Nats-Msg-Id"),
                Some(&format!("{}.received", ticket.id))
            );
            delivery.acker.ack().await.unwrap();
            tickets.push(ticket);
        }
        tickets
    }

    /// Messages on every subject, to check that nothing at all was published.
    pub async fn published_anywhere(&self) -> u64 {
        self.consumer(&self.subjects.all())
            .await
            .pending()
            .await
            .unwrap()
    }

    pub fn rejected(&self, field: &str) -> bool {
        self.metrics.encode().contains(&format!(
            "switchboard_tickets_rejected_total{{field=\"{field}\"}} 1"
        ))
    }

    async fn consumer(&self, filter: &str) -> Arc<dyn Consumer> {
        let durable = format!("test-{}", filter.replace(['.', '>'], "_"));
        let spec = ConsumerSpec {
            durable,
            filter: filter.to_owned(),
            ack_wait: Duration::from_secs(30),
        };
        self.bus.consumer(spec).await.unwrap()
    }
}

#[derive(Debug)]
struct FailingBus(MemoryBus);

#[async_trait]
impl Bus for FailingBus {
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError> {
        Err(BusError::Publish {
            subject: msg.subject,
            source: "stream unavailable".into(),
        })
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Arc<dyn Consumer>, BusError> {
        self.0.consumer(spec).await
    }

    async fn kv(&self, bucket: &str) -> Result<Arc<dyn Kv>, BusError> {
        self.0.kv(bucket).await
    }

    fn durable(&self) -> bool {
        false
    }

    async fn reachable(&self) -> Result<(), BusError> {
        self.0.reachable().await
    }
}
