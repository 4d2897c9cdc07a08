//! What the integration tests share: an intake over a bus of either kind (the in-process one, or the
//! nats-server at `SWITCHBOARD_TEST_NATS_URL`), faults injected between intake and that bus, and a reader
//! of what intake published.
#![allow(dead_code)] // each test binary uses its own part

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::TryStreamExt;
use prost::Message;
use switchboard_accounts::{Principal, Role, Via};
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, BusError, Consumer, ConsumerSpec, Kv, OutMessage};
use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_intake::{IDEMPOTENCY_BUCKET, Intake, IntakeConfig};
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::{Metrics, Publisher, Subjects};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Nats,
}

pub const KINDS: [Kind; 2] = [Kind::Memory, Kind::Nats];

/// What goes wrong with the next publishes of a ticket between intake and the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The publish fails before the bus has it, as when the stream is unreachable.
    Unreachable,
    /// The bus stores the message, then the acknowledgement is lost: the publish fails anyway.
    AckLost,
    /// The publish never returns, as when intake dies waiting for it.
    Hang,
}

/// The faults still to inject: `(fault, how many more publishes it hits)`.
#[derive(Debug, Default)]
pub struct Faults(Mutex<Option<(Fault, usize)>>);

impl Faults {
    /// The next `times` ticket publishes suffer `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        *self.0.lock().unwrap() = Some((fault, times));
    }

    /// No more faults: the bus works again.
    pub fn clear(&self) {
        *self.0.lock().unwrap() = None;
    }

    fn take(&self) -> Option<Fault> {
        let mut slot = self.0.lock().unwrap();
        let (fault, left) = (*slot)?;
        *slot = (left > 1).then_some((fault, left - 1));
        Some(fault)
    }
}

pub struct Fixture {
    pub kind: Kind,
    /// The bus itself, without faults: what is really on it.
    pub bus: Arc<dyn Bus>,
    pub idempotency: Arc<dyn Kv>,
    pub metrics: Metrics,
    pub subjects: Subjects,
    pub intake: Arc<Intake>,
    pub work: WorkStates,
    pub faults: Arc<Faults>,
    /// The NATS stream and bucket prefix of this test, to delete at the end.
    run: Option<String>,
}

pub async fn fixture() -> Fixture {
    fixture_on(Kind::Memory, IntakeConfig::default()).await
}

/// `failing`: every publish of a ticket fails, as when the stream is unreachable; the KV still works.
pub async fn fixture_with(config: IntakeConfig, failing: bool) -> Fixture {
    let f = fixture_on(Kind::Memory, config).await;
    if failing {
        f.faults.inject(Fault::Unreachable, usize::MAX);
    }
    f
}

pub async fn fixture_on(kind: Kind, config: IntakeConfig) -> Fixture {
    let (bus, run): (Arc<dyn Bus>, _) = match kind {
        Kind::Memory => (Arc::new(MemoryBus::new()), None),
        Kind::Nats => {
            let run = unique("sbintake");
            (nats_bus(&run).await, Some(run))
        }
    };
    let subjects = match &run {
        Some(run) => Subjects::new(run),
        None => Subjects::default(),
    };
    let faults = Arc::new(Faults::default());
    let faulty: Arc<dyn Bus> = Arc::new(FaultyBus {
        inner: bus.clone(),
        subject: subjects.stage(Stage::Received),
        faults: faults.clone(),
    });
    let idempotency = bus.kv(IDEMPOTENCY_BUCKET).await.unwrap();
    let metrics = Metrics::new();
    let work = WorkStates::new(
        bus.kv(WORK_BUCKET).await.unwrap(),
        Publisher::new(faulty.clone()),
        subjects.clone(),
    );
    let intake = Arc::new(
        Intake::new(
            Publisher::new(faulty),
            subjects.clone(),
            idempotency.clone(),
            metrics.clone(),
            config,
        )
        .with_work(work.clone()),
    );
    Fixture {
        kind,
        bus,
        idempotency,
        metrics,
        subjects,
        intake,
        work,
        faults,
        run,
    }
}

impl Fixture {
    /// Another intake over the same bus and buckets, with the same faults: a replica, or this one after
    /// a restart.
    pub fn another_intake(&self) -> Intake {
        let faulty: Arc<dyn Bus> = Arc::new(FaultyBus {
            inner: self.bus.clone(),
            subject: self.subjects.stage(Stage::Received),
            faults: self.faults.clone(),
        });
        Intake::new(
            Publisher::new(faulty),
            self.subjects.clone(),
            self.idempotency.clone(),
            self.metrics.clone(),
            self.intake.config().clone(),
        )
        .with_work(self.work.clone())
    }

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

    /// Messages on every subject but the work-state transitions (see [`Fixture::transitions`]), to check
    /// that no ticket or anything else was published.
    pub async fn published_anywhere(&self) -> u64 {
        let all = self.consumer(&self.subjects.all()).await.pending().await;
        all.unwrap() - self.transitions().await
    }

    /// Work-state transitions published.
    pub async fn transitions(&self) -> u64 {
        self.consumer(&self.subjects.work_all())
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

    /// `switchboard_intake_submissions_total` of one door and outcome; `None` when the series is absent.
    pub fn submissions(&self, door: &str, outcome: &str) -> Option<u64> {
        let series = format!(
            "switchboard_intake_submissions_total{{door=\"{door}\",outcome=\"{outcome}\"}} "
        );
        self.metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
    }

    pub async fn consumer(&self, filter: &str) -> Arc<dyn Consumer> {
        let durable = format!("test-{}", filter.replace(['.', '>'], "_"));
        let spec = ConsumerSpec {
            durable,
            filter: filter.to_owned(),
            ack_wait: Duration::from_secs(30),
        };
        self.bus.consumer(spec).await.unwrap()
    }

    /// Deletes a NATS test's stream and buckets from the shared server; nothing to do in process.
    pub async fn clean_up(self) {
        let Some(run) = self.run else { return };
        let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
        let buckets = format!("KV_{run}_");
        let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
        for name in names {
            if name == run || name.starts_with(&buckets) {
                js.delete_stream(&name).await.unwrap();
            }
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn nats_bus(run: &str) -> Arc<dyn Bus> {
    let url = nats_url();
    let config = NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.to_owned(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.to_owned(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    };
    let bus = NatsBus::connect(config).await.unwrap_or_else(|err| {
        panic!("no NATS JetStream server at {url} ({err}): start one with scripts/ensure-nats.sh")
    });
    Arc::new(bus)
}

/// A bus whose publishes on `subject` suffer the injected faults; everything else passes through.
#[derive(Debug)]
struct FaultyBus {
    inner: Arc<dyn Bus>,
    subject: String,
    faults: Arc<Faults>,
}

#[async_trait]
impl Bus for FaultyBus {
    async fn publish(&self, msg: OutMessage) -> Result<(), BusError> {
        let fault = if msg.subject == self.subject {
            self.faults.take()
        } else {
            None
        };
        let subject = msg.subject.clone();
        let failed = |cause: &str| BusError::Publish {
            subject,
            source: cause.into(),
        };
        match fault {
            None => self.inner.publish(msg).await,
            Some(Fault::Unreachable) => Err(failed("stream unavailable")),
            Some(Fault::AckLost) => {
                self.inner.publish(msg).await?;
                Err(failed("connection lost before the acknowledgement"))
            }
            Some(Fault::Hang) => std::future::pending().await,
        }
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

/// A caller of `role`, as the auth layer would put it in a request's extensions.
pub fn caller(role: Role) -> Principal {
    Principal {
        name: format!("test-{role}"),
        role,
        via: Via::ApiToken,
    }
}
