//! The agents' stores on each bus (the in-process one, and a real nats-server at
//! `SWITCHBOARD_TEST_NATS_URL` from two connections): many reservations of one agent's last places at
//! once, of which exactly capacity succeed; a release frees one place; agents stored only when valid,
//! and a status change keeps the rest of the record.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use futures::{FutureExt, TryStreamExt};
use switchboard_agents::{
    AGENTS_BUCKET, Agent, AgentStore, Held, LOADS_BUCKET, Loads, Reserve, Shift, Status,
    StoreError, Tier,
};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};

const CAPACITY: u32 = 5;
const RACERS: usize = 24;

fn held() -> Held {
    Held {
        weight: 1.0,
        since_ms: 1,
        started: false,
        start_by_ms: None,
    }
}

async fn exactly_capacity_reservations_win(buses: &[Arc<dyn Bus>]) {
    let mut loads = Vec::new();
    for bus in buses {
        loads.push(Loads::new(bus.kv(LOADS_BUCKET).await.expect("loads")));
    }
    let racing = (0..RACERS).map(|i| {
        let loads = &loads[i % loads.len()];
        async move {
            loads
                .reserve("a-1", CAPACITY, &format!("t-{i}"), held())
                .await
                .expect("reserve")
        }
    });
    let outcomes = join_all(racing).await;
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, Reserve::Reserved { .. }))
        .count();
    assert_eq!(won, CAPACITY as usize, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            Reserve::Reserved { .. } | Reserve::Full { open: CAPACITY }
        )),
        "{outcomes:?}"
    );
    let load = loads[0].get("a-1").await.expect("load");
    assert_eq!(load.open(), CAPACITY);
    let first = load.tickets.keys().next().cloned().expect("a ticket");
    assert_eq!(
        loads[1 % loads.len()]
            .reserve("a-1", CAPACITY, &first, held())
            .await
            .expect("again"),
        Reserve::Held
    );
    assert!(
        loads[0]
            .release("a-1", &first, |_| false)
            .await
            .expect("release")
    );
    assert!(
        !loads[0]
            .release("a-1", &first, |_| false)
            .await
            .expect("release")
    );
    assert_eq!(
        loads[0]
            .reserve("a-1", CAPACITY, "t-late", held())
            .await
            .expect("reserve"),
        Reserve::Reserved { open: CAPACITY }
    );
}

async fn agents_are_checked_and_status_keeps_the_record(bus: &Arc<dyn Bus>) {
    let store = AgentStore::new(bus.kv(AGENTS_BUCKET).await.expect("agents"));
    let mut agent = Agent {
        id: "a-9".into(),
        name: "Nine".into(),
        departments: vec!["hr".into()],
        skills: [("leave".to_owned(), 4)].into(),
        languages: vec![],
        channels: vec![],
        tier: Tier::L3,
        capacity: 4,
        shift: Shift::default(),
        status: Status::Online,
    };
    store.put(&agent).await.expect("stored");
    let err = store
        .put(&Agent {
            capacity: 0,
            ..agent.clone()
        })
        .await
        .expect_err("capacity 0");
    assert!(
        matches!(&err, StoreError::Invalid(e) if e.field == "capacity"),
        "{err:?}"
    );
    let away = store
        .set_status("a-9", Status::Away)
        .await
        .expect("set")
        .expect("an agent");
    agent.status = Status::Away;
    assert_eq!(away, agent);
    assert_eq!(store.get("a-9").await.expect("get"), Some(agent));
    assert_eq!(
        store.set_status("nobody", Status::Away).await.expect("set"),
        None
    );
    assert!(store.delete("a-9").await.expect("delete"));
    assert!(store.list().await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_in_process_bus() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    exactly_capacity_reservations_win(std::slice::from_ref(&bus)).await;
    agents_are_checked_and_status_keeps_the_record(&bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_nats_from_two_connections() {
    let url = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run = format!("agents{}x{nanos}", std::process::id());
    let config = NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.clone(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.clone(),
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
    let outcome = AssertUnwindSafe(async {
        exactly_capacity_reservations_win(&buses).await;
        agents_are_checked_and_status_keeps_the_record(&buses[1]).await;
    })
    .catch_unwind()
    .await;
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("connect"));
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == run || name.starts_with(&format!("KV_{run}_")) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
