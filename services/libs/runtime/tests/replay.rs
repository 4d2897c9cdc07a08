//! A message a role gives up on is kept as a dead letter an operator can list, and once the cause
//! is fixed, replay: the role that failed handles it again as its original subject and payload, and
//! the other roles that consumed that subject do not see it twice. On the in-process bus and on NATS
//! at `SWITCHBOARD_TEST_NATS_URL`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{FutureExt, TryStreamExt};
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, BusError, OutMessage};
use switchboard_proto::Stage;
use switchboard_runtime::deadletters::{self, Replayed, Selection, Stored};
use switchboard_runtime::{
    Handler, HandlerError, Inbound, Metrics, Outbound, Publisher, RoleRunner, RunnerOptions,
    Subjects, Supervisor,
};

/// Refuses every message while `broken`, as a handler does whose dependency is misconfigured;
/// records what it handled.
#[derive(Default)]
struct Recorder {
    broken: AtomicBool,
    handled: Mutex<Vec<(String, Vec<u8>)>>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, inbound: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(HandlerError::permanent("the department catalog is empty"));
        }
        self.handled
            .lock()
            .unwrap()
            .push((inbound.subject.clone(), inbound.payload.to_vec()));
        Ok(Vec::new())
    }
}

impl Recorder {
    fn handled(&self) -> Vec<(String, Vec<u8>)> {
        self.handled.lock().unwrap().clone()
    }
}

fn runner(
    bus: &Arc<dyn Bus>,
    subjects: &Subjects,
    role: &'static str,
    handler: Arc<Recorder>,
) -> RoleRunner {
    RoleRunner {
        role,
        filter: subjects.stage(Stage::Matched),
        each_replica_reads_all: false,
        handler,
        publisher: Publisher::new(bus.clone()),
        subjects: subjects.clone(),
        metrics: Metrics::new(),
        options: RunnerOptions::default(),
        signer: None,
    }
}

/// Polls `check` every 50 ms until it holds, or fails after 10 s saying `what`.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dead_letters_are_listed_and_replayed_to_their_role_alone(
    bus: Arc<dyn Bus>,
    subjects: Subjects,
) {
    let router = Arc::new(Recorder::default());
    router.broken.store(true, Ordering::SeqCst);
    let metrics = Arc::new(Recorder::default());
    let (supervisor, _failures) = Supervisor::new();
    let routing = runner(&bus, &subjects, "router", router.clone())
        .start(&supervisor)
        .await
        .expect("start router");
    let counting = runner(&bus, &subjects, "metrics", metrics.clone())
        .start(&supervisor)
        .await
        .expect("start metrics");
    let before = switchboard_runtime::now_ms();
    bus.publish(OutMessage {
        subject: subjects.stage(Stage::Matched),
        msg_id: None,
        headers: Default::default(),
        payload: bytes::Bytes::from_static(b"ticket 1"),
    })
    .await
    .expect("publish");

    let all = Selection::default();
    eventually("the router's dead letter is stored", async || {
        deadletters::list(bus.as_ref(), &all)
            .await
            .expect("list")
            .len()
            == 1
    })
    .await;
    let letters = deadletters::list(bus.as_ref(), &all).await.expect("list");
    let letter = &letters[0].letter;
    assert_eq!(letter.role, "router");
    assert_eq!(letter.subject, subjects.stage(Stage::Matched));
    assert_eq!(letter.payload, b"ticket 1");
    assert!(
        letter.error.contains("the department catalog is empty"),
        "{}",
        letter.error
    );
    assert!(letters[0].key.starts_with("router."), "{}", letters[0].key);
    assert!(letter.at_ms >= before);
    // The metrics role handled the message the router gave up on.
    eventually("metrics handled the message once", async || {
        metrics.handled().len() == 1
    })
    .await;

    let pick = |role: &str, since_ms: Option<i64>| Selection {
        role: Some(role.into()),
        since_ms,
    };
    let count = async |selection: Selection| {
        deadletters::list(bus.as_ref(), &selection)
            .await
            .expect("list")
            .len()
    };
    assert_eq!(count(pick("router", Some(before))).await, 1);
    assert_eq!(
        count(pick("parser", None)).await,
        0,
        "another role's letters"
    );
    assert_eq!(
        count(pick("router", Some(letter.at_ms + 1))).await,
        0,
        "letters since later"
    );

    // Fixed, then replayed: the router handles the original subject and payload; the letter leaves
    // the list; metrics does not see the message again.
    router.broken.store(false, Ordering::SeqCst);
    let stored: Stored = letters[0].clone();
    let replayed = deadletters::replay(bus.as_ref(), &subjects, &stored)
        .await
        .expect("replay");
    assert_eq!(replayed, Replayed::Removed, "the router, fixed, handled it");
    eventually("the router handled the replayed message", async || {
        !router.handled().is_empty()
    })
    .await;
    assert_eq!(
        router.handled(),
        vec![(subjects.stage(Stage::Matched), b"ticket 1".to_vec())]
    );
    assert_eq!(
        count(Selection::default()).await,
        0,
        "a replayed letter leaves the list"
    );

    // Replaying the same letter again is refused by its revision: it is gone.
    let again = deadletters::replay(bus.as_ref(), &subjects, &stored)
        .await
        .unwrap_err();
    assert!(
        matches!(again, BusError::WrongRevision { current: None, .. }),
        "{again:?}"
    );

    // A later message on the same subject: once both roles have handled it, a wrong second delivery
    // of the first, stored before it, would have reached them too.
    bus.publish(OutMessage {
        subject: subjects.stage(Stage::Matched),
        msg_id: None,
        headers: Default::default(),
        payload: bytes::Bytes::from_static(b"ticket 2"),
    })
    .await
    .expect("publish");
    let handled_both = async || router.handled().len() >= 2 && metrics.handled().len() >= 2;
    eventually("both roles handled the later message", handled_both).await;
    let payloads = |r: &Recorder| r.handled().into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    let in_order = vec![b"ticket 1".to_vec(), b"ticket 2".to_vec()];
    assert_eq!(
        payloads(&router),
        in_order,
        "the router handled the replay once"
    );
    assert_eq!(payloads(&metrics), in_order, "metrics never saw the replay");
    routing.stop().await;
    counting.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_process_bus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::open(dir.path()).expect("open"));
    dead_letters_are_listed_and_replayed_to_their_role_alone(bus, Subjects::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats() {
    let url = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run = format!("replay{}x{nanos}", std::process::id());
    let bus = NatsBus::connect(NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.clone(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.clone(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    })
    .await
    .unwrap_or_else(|e| {
        panic!("no NATS JetStream server at {url} ({e}): start one with scripts/ensure-nats.sh")
    });
    let outcome = AssertUnwindSafe(dead_letters_are_listed_and_replayed_to_their_role_alone(
        Arc::new(bus),
        Subjects::new(&run),
    ))
    .catch_unwind()
    .await;
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("connect"));
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names
        .iter()
        .filter(|n| **n == run || n.starts_with(&format!("KV_{run}_")))
    {
        js.delete_stream(name).await.expect("delete stream");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
