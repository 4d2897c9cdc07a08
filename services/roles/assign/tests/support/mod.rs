//! What the assign role's tests share: each bus (the in-process one, and a real nats-server at
//! `SWITCHBOARD_TEST_NATS_URL` reached from two connections, as two replicas are), an [`Assigner`]
//! over a bus, and tickets decided into a department as the router leaves them.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use prost::Message;
use switchboard_agents::{
    AGENTS_BUCKET, Agent, AgentStore, CUSTOMERS_BUCKET, LOADS_BUCKET, LastResolvers, Loads, Shift,
    Status, Tier,
};
use switchboard_assign::{AssignConfig, Assigner, QUEUE_BUCKET, Queue};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_desk::{Change, WorkStates};
use switchboard_proto::{Assessment, Parsed, Priority, Ticket, TicketState};
use switchboard_runtime::{Metrics, Subjects, buckets};

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

pub fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Two connections to one run's stream and buckets on the NATS server: two replicas' buses.
pub async fn nats_pair(run: &str) -> Vec<Arc<dyn Bus>> {
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
    let mut buses: Vec<Arc<dyn Bus>> = Vec::new();
    for _ in 0..2 {
        let bus = NatsBus::connect(config.clone()).await.unwrap_or_else(|err| {
            panic!("no NATS JetStream server at {url} ({err}): start one with scripts/ensure-nats.sh")
        });
        buses.push(Arc::new(bus));
    }
    buses
}

/// Deletes a NATS run's stream and buckets.
pub async fn clean_up(run: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("connect"));
    let buckets = format!("KV_{run}_");
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == run || name.starts_with(&buckets) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
}

/// The in-process bus, once: both "replicas" share it, as threads of one process would.
pub fn memory_pair() -> Vec<Arc<dyn Bus>> {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    vec![bus.clone(), bus]
}

pub async fn assigner(bus: &Arc<dyn Bus>, subjects: &Subjects, config: AssignConfig) -> Assigner {
    assigner_with(bus, subjects, config, Metrics::new()).await
}

/// [`assigner`] recording into `metrics`.
pub async fn assigner_with(
    bus: &Arc<dyn Bus>,
    subjects: &Subjects,
    config: AssignConfig,
    metrics: Metrics,
) -> Assigner {
    Assigner::new(
        AgentStore::new(bus.kv(AGENTS_BUCKET).await.expect("agents")),
        Loads::new(bus.kv(LOADS_BUCKET).await.expect("loads")),
        LastResolvers::new(bus.kv(CUSTOMERS_BUCKET).await.expect("customers")),
        WorkStates::open(bus, subjects.clone()).await.expect("work"),
        bus.kv(buckets::DECISIONS).await.expect("decisions"),
        Queue::new(bus.kv(QUEUE_BUCKET).await.expect("queue")),
        config,
    )
    .recording_to(metrics)
}

/// The value of one series in `metrics`' exposition; `None` when it is absent.
pub fn series(metrics: &Metrics, series: &str) -> Option<u64> {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn agent(id: &str, department: &str, capacity: u32, skills: &[(&str, u8)]) -> Agent {
    Agent {
        id: id.into(),
        name: id.to_uppercase(),
        departments: vec![department.into()],
        skills: skills
            .iter()
            .map(|(k, l)| ((*k).into(), *l))
            .collect::<BTreeMap<_, _>>(),
        languages: vec!["zh".into()],
        channels: vec![],
        tier: Tier::L2,
        capacity,
        shift: Shift::default(),
        status: Status::Online,
    }
}

/// What the router leaves behind for a decided ticket: the ticket in `decisions`, and its work state
/// moved to routed in `department`.
pub async fn decide(
    bus: &Arc<dyn Bus>,
    work: &WorkStates,
    id: &str,
    department: &str,
    problem_type: &str,
    customer: &str,
) {
    let ticket = Ticket {
        id: id.into(),
        channel: "web".into(),
        language: "zh".into(),
        customer_id: customer.into(),
        parsed: Some(Parsed {
            problem_type: problem_type.into(),
            ..Parsed::default()
        }),
        assessment: Some(Assessment::default()),
        ..Ticket::default()
    };
    bus.kv(buckets::DECISIONS)
        .await
        .expect("decisions")
        .put(id, Bytes::from(ticket.encode_to_vec()))
        .await
        .expect("decision stored");
    work.apply(
        id,
        Change::new(TicketState::Routed, "router", "router")
            .department(department)
            .priority(Priority::Normal),
    )
    .await
    .expect("routed");
}

pub async fn work_states(bus: &Arc<dyn Bus>, subjects: &Subjects) -> WorkStates {
    WorkStates::open(bus, subjects.clone()).await.expect("work")
}
