//! Work state end to end, on the embedded bus and on a real nats-server: a decided ticket's work state
//! is routed (or in review, as decided), an agent's correction keeps it routed with the new department,
//! and a resolution makes it resolved, each move an event on `<prefix>.work.<state>`.

use std::time::Duration;

use prost::Message;
use switchboard_bus::ConsumerSpec;
use switchboard_desk::WorkStates;
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::{
    Corrected, CorrectionReason, Outcome, Resolved, SubmitRequest, TicketState, Transition,
};
use switchboard_runtime::Subjects;
use switchboard_tests::{
    Kind, bus, clean_up, collect_decisions, eventually, grpc, settings, start,
};

const WAIT: Duration = Duration::from_secs(60);

fn texts() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/tickets.csv");
    let mut reader = csv::Reader::from_path(path).expect("demo tickets");
    reader
        .records()
        .map(|r| r.expect("csv row")[0].to_owned())
        .collect()
}

async fn routed_then_resolved(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let subjects = Subjects::new(&settings.subject_prefix);
    let decisions = collect_decisions(&settings, &bus).await?;
    let resolved_events = bus
        .consumer(ConsumerSpec {
            durable: "test-work-resolved".into(),
            filter: subjects.work(TicketState::Resolved),
            ack_wait: Duration::from_secs(30),
        })
        .await?;
    let running = start(&settings, "all", bus.clone()).await?;
    let work = WorkStates::open(&bus, subjects.clone()).await?;
    let mut intake = IntakeClient::new(grpc(&running).await?);

    // Demo tickets until one is routed; each decided one's work state is what the router decided.
    let mut routed = None;
    for text in texts() {
        let request = SubmitRequest {
            text: text.into_bytes(),
            channel: "web".into(),
            ..SubmitRequest::default()
        };
        let id = intake.submit(request).await?.into_inner().ticket_id;
        eventually(WAIT, "a decision", || {
            let (decisions, id) = (decisions.clone(), id.clone());
            async move { decisions.lock().await.by_ticket.contains_key(&id) }
        })
        .await?;
        let decision = decisions.lock().await.by_ticket[&id]
            .decision
            .clone()
            .expect("a decision");
        let state = work.get(&id).await?.expect("a work state once decided");
        let expected = match decision.outcome() {
            Outcome::Routed => TicketState::Routed,
            _ => TicketState::InReview,
        };
        // Received by intake, then decided by the router.
        assert_eq!((state.state(), state.revision), (expected, 2), "{id}");
        assert_eq!(state.department, decision.department);
        let actors: Vec<(&str, &str)> = state
            .history
            .iter()
            .map(|t| (t.kind.as_str(), t.actor.as_str()))
            .collect();
        assert_eq!(actors, [("received", "intake"), ("decided", "router")]);
        if expected == TicketState::Routed {
            routed = Some((id, decision.department));
            break;
        }
    }
    let (id, department) = routed.expect("some demo ticket is routed");

    let mut board = DecisionsClient::new(grpc(&running).await?);
    let target = if department == "billing" {
        "hr_services"
    } else {
        "billing"
    };
    board
        .correct(Corrected {
            ticket_id: id.clone(),
            to_department: target.into(),
            reason: CorrectionReason::WrongDepartment.into(),
            agent: "agent-5".into(),
            ..Corrected::default()
        })
        .await?;
    eventually(WAIT, "the correction to move the work state", || {
        let (work, id) = (work.clone(), id.clone());
        async move {
            let state = work.get(&id).await.expect("get").expect("state");
            state.revision == 3
        }
    })
    .await?;
    let corrected = work.get(&id).await?.expect("state");
    assert_eq!(
        (corrected.state(), corrected.department.as_str()),
        (TicketState::Routed, target),
        "a correction keeps it routed, with the new department"
    );

    board
        .resolve(Resolved {
            ticket_id: id.clone(),
            agent: "agent-5".into(),
            ..Resolved::default()
        })
        .await?;
    eventually(WAIT, "the resolution to move the work state", || {
        let (work, id) = (work.clone(), id.clone());
        async move {
            let state = work.get(&id).await.expect("get").expect("state");
            state.state() == TicketState::Resolved
        }
    })
    .await?;
    let resolved = work.get(&id).await?.expect("state");
    assert_eq!(
        (resolved.revision, resolved.department.as_str()),
        (4, target)
    );

    let delivery = tokio::time::timeout(WAIT, resolved_events.next()).await??;
    let event = Transition::decode(delivery.payload.clone())?;
    // The agent is who the credential says ("e2e-tests"), not what the request claims.
    assert_eq!(
        (event.ticket_id.as_str(), event.from(), event.actor.as_str()),
        (id.as_str(), TicketState::Routed, "e2e-tests")
    );
    assert_eq!(event.revision, 4);

    running.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_bus_work_state_follows_the_ticket() -> anyhow::Result<()> {
    routed_then_resolved(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_work_state_follows_the_ticket() -> anyhow::Result<()> {
    routed_then_resolved(Kind::Nats).await
}
