//! Work states on each bus (the in-process one, with and without its store, and a real nats-server at
//! `SWITCHBOARD_TEST_NATS_URL`): the whole lifecycle through the store API, the transition events with
//! who, when, why and the trace, a cause applied once, refusals that change nothing, and concurrent
//! writers (on NATS from two connections) of which none loses a move.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::panic::AssertUnwindSafe;

use futures::{FutureExt, TryStreamExt};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use prost::Message;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, Consumer, ConsumerSpec, Delivery};
use switchboard_desk::{Change, DeskError, WorkStates};
use switchboard_proto::{Priority, TicketState, Transition};
use switchboard_runtime::Subjects;
use tokio::time::timeout;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(10);
const WRITERS: usize = 3;
const MOVES_EACH: usize = 12;

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// Every transition published under `subjects`, as a fresh durable reads them.
async fn events(bus: &dyn Bus, subjects: &Subjects) -> Arc<dyn Consumer> {
    bus.consumer(ConsumerSpec {
        durable: unique("events"),
        filter: subjects.work_all(),
        ack_wait: Duration::from_secs(60),
    })
    .await
    .expect("events consumer")
}

async fn next(consumer: &dyn Consumer) -> (Delivery, Transition) {
    let delivery = timeout(WAIT, consumer.next())
        .await
        .expect("a transition event within the deadline")
        .expect("next event");
    delivery.acker.ack().await.expect("ack");
    let transition = Transition::decode(delivery.payload.clone()).expect("a transition");
    (delivery, transition)
}

/// Through the store API, every kind of move: routed, assigned, in progress, resolved, reopened, in
/// progress again, resolved again; each published on its state's subject with its message id, each
/// recording who, when and why; a refused move changes and publishes nothing.
async fn the_whole_lifecycle(bus: Arc<dyn Bus>, subjects: Subjects) {
    let work = WorkStates::open(&bus, subjects.clone())
        .await
        .expect("open");
    let events = events(bus.as_ref(), &subjects).await;
    let ticket = "t-life";
    assert_eq!(work.get(ticket).await.expect("get"), None);

    let moves = [
        Change::new(TicketState::Routed, "router", "router")
            .department("billing")
            .priority(Priority::High)
            .received_at(1_000)
            .reason("confidence 0.91"),
        Change::new(TicketState::Assigned, "lead-1", "assign.1")
            .assignee("agent-7")
            .reason("least loaded"),
        Change::new(TicketState::InProgress, "agent-7", "start.1"),
        Change::new(TicketState::Resolved, "agent-7", "resolved").reason("refund issued"),
        Change::new(TicketState::Reopened, "customer-3", "reopen.1").reason("refund missing"),
        Change::new(TicketState::InProgress, "agent-7", "start.2"),
        Change::new(TicketState::Resolved, "agent-7", "resolved.2"),
    ];
    for (i, change) in moves.into_iter().enumerate() {
        let revision = i as u64 + 1;
        let before = work.get(ticket).await.expect("get");
        let from = before.map_or(TicketState::Received, |s| s.state());
        let started = switchboard_runtime::now_ms();
        let applied = work.apply(ticket, change.clone()).await.expect("allowed");
        assert!(!applied.replayed);
        let state = work.get(ticket).await.expect("get").expect("a work state");
        assert_eq!(state, applied.state);
        assert_eq!((state.state(), state.revision), (change.to, revision));
        assert_eq!(
            (state.department.as_str(), state.assignee.as_str()),
            ("billing", if i == 0 { "" } else { "agent-7" })
        );
        assert_eq!(
            (state.priority(), state.received_at_ms),
            (Priority::High, 1_000)
        );

        let (delivery, event) = next(events.as_ref()).await;
        assert_eq!(event, applied.transition);
        assert_eq!(delivery.subject, subjects.work(change.to));
        assert_eq!(
            delivery.headers.get("Nats-Msg-Id").map(String::as_str),
            Some(format!("{ticket}.work.{revision}").as_str())
        );
        assert_eq!((event.from(), event.to()), (from, change.to));
        assert_eq!(
            (
                event.actor.as_str(),
                event.reason.as_str(),
                event.cause.as_str()
            ),
            (
                change.actor.as_str(),
                change.reason.as_str(),
                change.cause.as_str()
            )
        );
        assert!(
            (started..=switchboard_runtime::now_ms()).contains(&event.at_ms),
            "at {} while applying from {started}",
            event.at_ms
        );
        assert_eq!(event.revision, revision);
        assert!(event.trace_id.is_empty(), "no span, no trace");
    }
    assert_eq!(
        subjects.work(TicketState::InProgress),
        format!("{}.work.in_progress", subjects.prefix())
    );

    // Resolved moves only to reopened: the refusal names both states and changes nothing.
    let before = work.get(ticket).await.expect("get");
    let refused = work
        .apply(
            ticket,
            Change::new(TicketState::Assigned, "lead-1", "assign.2").assignee("agent-8"),
        )
        .await;
    match &refused {
        Err(DeskError::Refused { ticket: t, source }) => {
            assert_eq!(t, ticket);
            assert_eq!(
                (source.from, source.to),
                (TicketState::Resolved, TicketState::Assigned)
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(work.get(ticket).await.expect("get"), before);

    // A cause applied before is not applied again: the recorded transition is republished, and the
    // bus stores it no second time.
    let again = work
        .apply(
            ticket,
            Change::new(TicketState::Resolved, "agent-7", "resolved"),
        )
        .await
        .expect("a repeated cause");
    assert!(again.replayed);
    assert_eq!(
        (again.transition.revision, again.state),
        (4, before.expect("state"))
    );
    assert_eq!(events.pending().await.expect("pending"), 0);
}

/// `writers` (each its own store, on its own connection where the bus has connections) move one
/// ticket at once, each handing it from agent to agent: every move lands, each with its own revision,
/// the revisions each writer sees strictly rise, and the events number 1 to the last without a gap.
async fn concurrent_writers_lose_nothing(buses: Vec<Arc<dyn Bus>>, subjects: Subjects) {
    let events = events(buses[0].as_ref(), &subjects).await;
    let first = WorkStates::open(&buses[0], subjects.clone())
        .await
        .expect("open");
    let ticket = "t-race";
    first
        .apply(
            ticket,
            Change::new(TicketState::Assigned, "router", "seed").assignee("agent-0"),
        )
        .await
        .expect_err("received cannot go straight to assigned");
    first
        .apply(
            ticket,
            Change::new(TicketState::Routed, "router", "router").department("it"),
        )
        .await
        .expect("routed");
    first
        .apply(
            ticket,
            Change::new(TicketState::Assigned, "lead", "seed").assignee("agent-0"),
        )
        .await
        .expect("assigned");

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let bus = Arc::clone(&buses[writer % buses.len()]);
        let subjects = subjects.clone();
        tasks.push(tokio::spawn(async move {
            let work = WorkStates::open(&bus, subjects).await.expect("open");
            let mut revisions = Vec::new();
            for i in 0..MOVES_EACH {
                let change = Change::new(TicketState::Assigned, "lead", format!("w{writer}.{i}"))
                    .assignee(format!("agent-{writer}-{i}"));
                let applied = work.apply(ticket, change).await.expect("applied");
                assert!(!applied.replayed);
                revisions.push(applied.transition.revision);
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let revisions = task.await.expect("writer");
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "each writer sees its revisions rise: {revisions:?}"
        );
        all.extend(revisions);
    }
    all.sort_unstable();
    let total = (2 + WRITERS * MOVES_EACH) as u64;
    assert_eq!(
        all,
        (3..=total).collect::<Vec<_>>(),
        "one revision per move"
    );
    let state = first.get(ticket).await.expect("get").expect("state");
    assert_eq!(state.revision, total, "no move was lost");

    let mut published = BTreeMap::new();
    for _ in 0..total {
        let (_, event) = next(events.as_ref()).await;
        assert!(published.insert(event.revision, event.cause).is_none());
    }
    assert_eq!(
        published.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    for writer in 0..WRITERS {
        for i in 0..MOVES_EACH {
            let cause = format!("w{writer}.{i}");
            assert_eq!(
                published.values().filter(|c| **c == cause).count(),
                1,
                "{cause}"
            );
        }
    }
    assert_eq!(events.pending().await.expect("pending"), 0);
}

/// A move made inside a span records that span's `traceparent`, and the event carries it in its
/// headers too.
async fn the_trace_is_recorded(bus: Arc<dyn Bus>, subjects: Subjects) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    switchboard_runtime::telemetry::install_propagator();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("desk-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let work = WorkStates::open(&bus, subjects.clone())
        .await
        .expect("open");
    let events = events(bus.as_ref(), &subjects).await;
    let span = tracing::info_span!("router.process");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    let (applied, expected) = async {
        let applied = work
            .apply(
                "t-trace",
                Change::new(TicketState::InReview, "router", "router"),
            )
            .await
            .expect("in review");
        let headers = switchboard_runtime::telemetry::current_context_headers();
        (applied, headers["traceparent"].clone())
    }
    .instrument(span)
    .await;
    assert!(expected.contains(&trace_id), "{expected} names {trace_id}");
    assert_eq!(applied.transition.trace_id, expected);
    let (delivery, event) = next(events.as_ref()).await;
    assert_eq!(event.trace_id, expected);
    assert_eq!(delivery.headers.get("traceparent"), Some(&expected));
}

async fn all_checks(buses: Vec<Arc<dyn Bus>>, prefix: &str) {
    // A prefix per check, so each check's events consumer sees only its own.
    let subjects = |check: &str| Subjects::new(format!("{prefix}.{check}"));
    the_whole_lifecycle(Arc::clone(&buses[0]), subjects("lifecycle")).await;
    the_trace_is_recorded(Arc::clone(&buses[0]), subjects("trace")).await;
    concurrent_writers_lose_nothing(buses, subjects("race")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_process_bus() {
    all_checks(vec![Arc::new(MemoryBus::new())], "tickets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_persistent_in_process_bus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::open(dir.path()).expect("open"));
    all_checks(vec![bus], "tickets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_from_two_connections() {
    let url = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let run = unique("desk");
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
    // Polled here, not spawned: the trace check's subscriber is this thread's.
    let outcome = AssertUnwindSafe(all_checks(buses, &run))
        .catch_unwind()
        .await;
    clean_up(&url, &run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn clean_up(url: &str, run: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    let buckets = format!("KV_{run}_");
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == run || name.starts_with(&buckets) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
}
