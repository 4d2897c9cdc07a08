//! Capacity is never exceeded, also with two replicas assigning the same tickets at once: on the
//! in-process bus, and on a real nats-server from two connections. Every agent's load then agrees with
//! the work states, what did not fit waits in the queue with the reason, and a resolution frees a
//! place that the queue fills.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use switchboard_assign::{AssignConfig, Assigner};
use switchboard_bus::Bus;
use switchboard_desk::Change;
use switchboard_proto::TicketState;
use switchboard_runtime::Subjects;

use support::*;

const TICKETS: usize = 24;

/// Tickets by assignee, from the work states.
async fn assigned(a: &Assigner, ids: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::<String, Vec<String>>::new();
    for id in ids {
        let state = a.work_state(id).await.expect("get").expect("a work state");
        if state.state() == TicketState::Assigned {
            by.entry(state.assignee.clone())
                .or_default()
                .push(id.clone());
        }
    }
    by
}

async fn two_replicas_never_exceed_capacity(buses: Vec<Arc<dyn Bus>>, subjects: Subjects) {
    let config = AssignConfig::default();
    let one = assigner(&buses[0], &subjects, config.clone()).await;
    let two = assigner(&buses[1], &subjects, config).await;
    let capacities = [("a-1", 3), ("a-2", 2), ("a-3", 1)];
    for (id, capacity) in capacities {
        one.agents()
            .put(&agent(id, "accounts", capacity, &[("登录认证", 3)]))
            .await
            .expect("agent");
    }
    let work = work_states(&buses[0], &subjects).await;
    let ids: Vec<String> = (0..TICKETS).map(|i| format!("t-{i}")).collect();
    for id in &ids {
        decide(&buses[0], &work, id, "accounts", "登录认证", "").await;
    }
    // Both replicas react to every ticket at once, as when both pick up moves and drain the queue.
    let racing = ids
        .iter()
        .flat_map(|id| [one.on_moved(id), two.on_moved(id)]);
    for outcome in join_all(racing).await {
        outcome.expect("handled");
    }

    let by = assigned(&one, &ids).await;
    let total: usize = by.values().map(Vec::len).sum();
    assert_eq!(total, 6, "every place filled once: {by:?}");
    for (id, capacity) in capacities {
        let held = by.get(id).map_or(0, Vec::len);
        assert_eq!(held, capacity as usize, "{id}: {by:?}");
        let load = one.loads().get(id).await.expect("load");
        let mut on_load: Vec<&String> = load.tickets.keys().collect();
        on_load.sort();
        let mut in_work: Vec<&String> = by[id].iter().collect();
        in_work.sort();
        assert_eq!(on_load, in_work, "{id}'s load follows the work states");
    }
    let waiting = one.queue().all().await.expect("queue");
    assert_eq!(waiting.len(), TICKETS - 6);
    // Each waiting ticket says when it should be started by: these came in with no receipt time, so
    // a normal ticket's 60 minutes count from when it was first queued (its reason rewritten since
    // keeps that time and may move the target by the seconds between).
    for w in &waiting {
        let target = w.start_by_ms.expect("a start-by time") - w.since_ms;
        assert!(
            (60 * 60_000..60 * 60_000 + 60_000).contains(&target),
            "{w:?}"
        );
    }
    assert!(
        waiting
            .iter()
            .all(|w| w.reason == "no one in accounts fits: of 3, 3 at capacity"),
        "{waiting:?}"
    );

    // a-2 resolves one: its place goes to the longest waiting ticket, and capacity still holds.
    let done = by["a-2"][0].clone();
    work.apply(&done, Change::new(TicketState::Resolved, "a-2", "resolved"))
        .await
        .expect("resolved");
    let (r1, r2) = tokio::join!(one.on_moved(&done), two.on_moved(&done));
    r1.expect("handled");
    r2.expect("handled");
    let (d1, d2) = tokio::join!(one.drain(), two.drain());
    assert_eq!(d1.expect("drained") + d2.expect("drained"), 1);
    let by = assigned(&one, &ids).await;
    assert_eq!(by["a-2"].len(), 2, "{by:?}");
    assert!(!by["a-2"].contains(&done));
    assert_eq!(one.loads().get("a-2").await.expect("load").open(), 2);
    assert_eq!(one.queue().all().await.expect("queue").len(), TICKETS - 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_in_process_bus() {
    two_replicas_never_exceed_capacity(memory_pair(), Subjects::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_nats_from_two_connections() {
    let run = unique("assigncap");
    let buses = nats_pair(&run).await;
    let outcome = AssertUnwindSafe(two_replicas_never_exceed_capacity(
        buses,
        Subjects::new(run.clone()),
    ))
    .catch_unwind()
    .await;
    clean_up(&run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
