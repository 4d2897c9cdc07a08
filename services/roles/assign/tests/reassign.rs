//! Reassignment and what decides an assignment beyond load, on each bus: an agent going offline has
//! their tickets given to someone who fits (or sent back to the queue, history saying why, and taken
//! from it when someone comes online); a ticket not picked up in time moves on; a picked-up one stays;
//! a returning customer gets the agent who resolved their last ticket.

mod support;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use switchboard_agents::Status;
use switchboard_assign::{AssignConfig, Assigner, Placed, follow_agents, keep_queue_moving};
use switchboard_bus::Bus;
use switchboard_desk::Change;
use switchboard_proto::{TicketState, WorkState};
use switchboard_runtime::{Metrics, Subjects};

use support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn state(a: &Assigner, id: &str) -> WorkState {
    a.work_state(id).await.expect("get").expect("a work state")
}

/// Waits until the ticket's work state passes `check`.
async fn until(
    a: &Assigner,
    id: &str,
    what: &str,
    check: impl Fn(&WorkState) -> bool,
) -> WorkState {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = state(a, id).await;
        if check(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the series in `metrics` reads `want`: the queue's task counts after its moves land.
async fn counted(metrics: &Metrics, name: &str, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = series(metrics, name);
        if now == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {now:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assigned_to(a: &Assigner, id: &str) -> String {
    a.on_moved(id).await.expect("handled");
    let s = state(a, id).await;
    assert_eq!(s.state(), TicketState::Assigned, "{s:?}");
    s.assignee
}

async fn going_offline_moves_tickets_on_or_back_to_the_queue(
    bus: Arc<dyn Bus>,
    subjects: Subjects,
) {
    let metrics = Metrics::new();
    let a = assigner_with(&bus, &subjects, AssignConfig::default(), metrics.clone()).await;
    let work = work_states(&bus, &subjects).await;
    a.agents()
        .put(&agent("a-1", "hr", 2, &[("leave", 4)]))
        .await
        .expect("agent");
    decide(&bus, &work, "t-1", "hr", "leave", "").await;
    assert_eq!(assigned_to(&a, "t-1").await, "a-1");
    let mut second = agent("a-2", "hr", 2, &[("leave", 2)]);
    a.agents().put(&second).await.expect("agent");

    let follower = tokio::spawn(follow_agents(a.clone()));
    let queue = tokio::spawn(keep_queue_moving(a.clone()));
    a.agents()
        .set_status("a-1", Status::Offline)
        .await
        .expect("status");
    let moved = until(&a, "t-1", "reassigned from a-1", |s| s.assignee == "a-2").await;
    let last = moved.history.last().expect("history");
    assert_eq!(last.kind, "reassigned");
    assert_eq!(
        last.reason,
        "from a-1, who went offline; to a-2: skill leave 2/5, 0 of 2 open, the only one who fits"
    );
    // The follower handles the move's event as the consumer would.
    a.on_moved("t-1").await.expect("handled");
    assert!(a.loads().get("a-1").await.expect("load").tickets.is_empty());
    assert!(
        a.loads()
            .get("a-2")
            .await
            .expect("load")
            .tickets
            .contains_key("t-1")
    );

    // a-2 leaves too, and no one is left: back to the queue, history saying why.
    a.agents()
        .set_status("a-2", Status::Offline)
        .await
        .expect("status");
    let back = until(&a, "t-1", "requeued", |s| s.state() == TicketState::Routed).await;
    let last = back.history.last().expect("history");
    assert_eq!(last.kind, "requeued");
    assert_eq!(
        last.reason,
        "from a-2, who went offline; waiting: no one in hr fits: of 2, 2 not online"
    );
    a.on_moved("t-1").await.expect("handled");
    let waiting = a.queue().all().await.expect("queue");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].reason, "no one in hr fits: of 2, 2 not online");
    counted(&metrics, r#"switchboard_queue_depth{department="hr"}"#, 1).await;

    // a-2 comes back: the queue gives them the ticket.
    second.status = Status::Online;
    a.agents().put(&second).await.expect("agent");
    until(&a, "t-1", "assigned from the queue", |s| {
        s.state() == TicketState::Assigned && s.assignee == "a-2"
    })
    .await;
    a.on_moved("t-1").await.expect("handled");
    assert!(a.queue().all().await.expect("queue").is_empty());
    counted(&metrics, r#"switchboard_queue_depth{department="hr"}"#, 0).await;
    // To a-1, then a-2 from the queue, both for their skill; to a-2 from a-1; queued once, though the
    // queue was tried again while it waited; moved twice because an agent left.
    let assignments = |result: &str, reason: &str| {
        format!(r#"switchboard_assignments_total{{result="{result}",reason="{reason}"}}"#)
    };
    counted(&metrics, &assignments("assigned", "skilled"), 2).await;
    counted(&metrics, &assignments("reassigned", "skilled"), 1).await;
    counted(&metrics, &assignments("queued", "no_one_fits"), 1).await;
    counted(
        &metrics,
        &assignments("queued", "no_agent_in_department"),
        0,
    )
    .await;
    counted(
        &metrics,
        r#"switchboard_reassignments_total{cause="agent_left"}"#,
        2,
    )
    .await;
    follower.abort();
    queue.abort();
}

async fn a_ticket_not_picked_up_moves_on(bus: Arc<dyn Bus>, subjects: Subjects) {
    let config = AssignConfig {
        pickup_secs: 1,
        ..AssignConfig::default()
    };
    let metrics = Metrics::new();
    let a = assigner_with(&bus, &subjects, config, metrics.clone()).await;
    let work = work_states(&bus, &subjects).await;
    a.agents()
        .put(&agent("b-1", "it", 3, &[("vpn", 3)]))
        .await
        .expect("agent");
    decide(&bus, &work, "t-slow", "it", "vpn", "").await;
    decide(&bus, &work, "t-taken", "it", "vpn", "").await;
    assert_eq!(assigned_to(&a, "t-slow").await, "b-1");
    assert_eq!(assigned_to(&a, "t-taken").await, "b-1");
    a.accept("t-taken", "b-1").await.expect("picked up");
    a.on_moved("t-taken").await.expect("handled");
    let err = a.accept("t-slow", "b-2").await.expect_err("not theirs");
    assert_eq!(err.to_string(), "ticket t-slow is assigned to b-1, not b-2");
    a.agents()
        .put(&agent("b-2", "it", 3, &[("vpn", 1)]))
        .await
        .expect("agent");

    // Before the deadline the sweep leaves both alone.
    a.sweep().await.expect("swept");
    assert_eq!(state(&a, "t-slow").await.assignee, "b-1");
    // As of a moment past the one-second deadline, rather than waiting for it.
    a.sweep_at(switchboard_runtime::now_ms() + 1_100)
        .await
        .expect("swept");
    let slow = state(&a, "t-slow").await;
    assert_eq!(slow.assignee, "b-2");
    assert_eq!(
        slow.history.last().expect("history").reason,
        "from b-1, not picked up within 1 s; to b-2: skill vpn 1/5, 0 of 3 open, the only one who fits"
    );
    assert_eq!(
        series(
            &metrics,
            r#"switchboard_reassignments_total{cause="pickup_deadline"}"#
        ),
        Some(1)
    );
    assert_eq!(
        series(
            &metrics,
            r#"switchboard_assignments_total{result="reassigned",reason="skilled"}"#
        ),
        Some(1)
    );
    let taken = state(&a, "t-taken").await;
    assert_eq!(
        (taken.state(), taken.assignee.as_str()),
        (TicketState::InProgress, "b-1")
    );
    a.on_moved("t-slow").await.expect("handled");
    let load = a.loads().get("b-1").await.expect("load");
    assert_eq!(load.tickets.keys().collect::<Vec<_>>(), ["t-taken"]);
    assert!(load.tickets["t-taken"].started);
}

async fn a_returning_customer_gets_their_last_resolver(bus: Arc<dyn Bus>, subjects: Subjects) {
    let a = assigner(&bus, &subjects, AssignConfig::default()).await;
    let work = work_states(&bus, &subjects).await;
    a.agents()
        .put(&agent("c-1", "tax", 4, &[("refund", 3)]))
        .await
        .expect("agent");
    a.agents()
        .put(&agent("c-2", "tax", 4, &[("refund", 3)]))
        .await
        .expect("agent");
    decide(&bus, &work, "t-busy", "tax", "refund", "someone").await;
    let busy = assigned_to(&a, "t-busy").await;
    let other = if busy == "c-1" { "c-2" } else { "c-1" };
    decide(&bus, &work, "t-first", "tax", "refund", "王 五").await;
    assert_eq!(assigned_to(&a, "t-first").await, other);
    work.apply(
        "t-first",
        Change::new(TicketState::Resolved, other, "resolved"),
    )
    .await
    .expect("resolved");
    a.on_moved("t-first").await.expect("handled");
    // One more for the one who resolved it, so they are the busier: the customer still gets them.
    decide(&bus, &work, "t-more", "tax", "refund", "").await;
    let more = assigned_to(&a, "t-more").await;
    if more != other {
        decide(&bus, &work, "t-more-2", "tax", "refund", "").await;
        assert_eq!(assigned_to(&a, "t-more-2").await, other);
    }
    decide(&bus, &work, "t-again", "tax", "refund", "王 五").await;
    assert_eq!(assigned_to(&a, "t-again").await, other);
    let again = state(&a, "t-again").await;
    assert_eq!(
        again.history.last().expect("history").reason,
        "skill refund 3/5, 1 of 4 open, resolved this customer's last ticket"
    );
    let placed = a
        .place(&state(&a, "t-again").await, None, "")
        .await
        .expect("placed");
    assert_eq!(
        placed,
        Placed::Moved,
        "a ticket already assigned is not placed again"
    );
}

async fn all_checks(bus: Arc<dyn Bus>, prefix: &str) {
    let subjects = |check: &str| Subjects::new(format!("{prefix}.{check}"));
    going_offline_moves_tickets_on_or_back_to_the_queue(bus.clone(), subjects("offline")).await;
    a_ticket_not_picked_up_moves_on(bus.clone(), subjects("pickup")).await;
    a_returning_customer_gets_their_last_resolver(bus, subjects("customer")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_process_bus() {
    all_checks(memory_pair().remove(0), "tickets").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats() {
    let run = unique("assignre");
    let bus = nats_pair(&run).await.remove(0);
    let outcome = AssertUnwindSafe(all_checks(bus, &run)).catch_unwind().await;
    clean_up(&run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
