//! Assignment end to end, on the embedded bus and on a real nats-server: with the demo agents on
//! duty, a routed ticket is given by the assign role to an agent of its department, its history saying
//! why and its stored decision naming them; the agent's load holds it, and resolving it frees the place.

use std::time::Duration;

use prost::Message;
use switchboard_agents::{AGENTS_BUCKET, AgentStore, LOADS_BUCKET, Loads, Shift, read_agents_csv};
use switchboard_desk::{Change, WorkStates};
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::{SubmitRequest, Ticket, TicketState};
use switchboard_runtime::{Subjects, buckets};
use switchboard_tests::{Kind, bus, clean_up, eventually, grpc, settings, start};

const WAIT: Duration = Duration::from_secs(60);

async fn a_routed_ticket_reaches_an_agent(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/agents.csv");
    let agents = AgentStore::new(bus.kv(AGENTS_BUCKET).await?);
    let roster = read_agents_csv(&demo)?;
    for mut agent in roster.clone() {
        // Everyone on duty whenever the test runs: shifts are the policy's tests' business.
        agent.shift = Shift::default();
        agents.put(&agent).await?;
    }
    let running = start(&settings, "all", bus.clone()).await?;
    let subjects = Subjects::new(&settings.subject_prefix);
    let work = WorkStates::open(&bus, subjects).await?;
    let loads = Loads::new(bus.kv(LOADS_BUCKET).await?);
    let mut intake = IntakeClient::new(grpc(&running).await?);

    let request = SubmitRequest {
        text: "输对密码进不去，登录一直提示密码错误，账号会不会被锁？"
            .as_bytes()
            .to_vec(),
        channel: "web".into(),
        customer_id: "cust-42".into(),
        ..SubmitRequest::default()
    };
    let id = intake.submit(request).await?.into_inner().ticket_id;
    eventually(WAIT, "the ticket decided", || {
        let (work, id) = (work.clone(), id.clone());
        async move {
            work.get(&id)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.state() != TicketState::Received)
        }
    })
    .await?;
    let decided = work.get(&id).await?.expect("a work state");
    if decided.state() == TicketState::InReview {
        // A reviewer confirms it, as the desk does: routed to the department the router named.
        let confirm = Change::new(TicketState::Routed, "reviewer", "confirmed")
            .department(decided.department.clone())
            .kind("confirmed");
        work.apply(&id, confirm).await?;
    }
    eventually(WAIT, "the ticket given to an agent", || {
        let (work, id) = (work.clone(), id.clone());
        async move {
            work.get(&id)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.state() == TicketState::Assigned)
        }
    })
    .await?;
    let state = work.get(&id).await?.expect("a work state");
    let agent = roster
        .iter()
        .find(|a| a.id == state.assignee)
        .expect("an agent of the roster");
    assert!(agent.in_department(&state.department), "{state:?}");
    let last = state.history.last().expect("history");
    assert_eq!(
        (last.actor.as_str(), last.kind.as_str()),
        ("assign", "assigned")
    );
    assert!(
        last.reason.contains(&format!("of {} open", agent.capacity)),
        "{}",
        last.reason
    );
    eventually(WAIT, "the agent's load to hold the ticket", || {
        let (loads, agent, id) = (loads.clone(), agent.id.clone(), id.clone());
        async move {
            loads
                .get(&agent)
                .await
                .is_ok_and(|l| l.tickets.contains_key(&id))
        }
    })
    .await?;

    let decisions = bus.kv(buckets::DECISIONS).await?;
    eventually(WAIT, "the stored decision to name the agent", || {
        let (decisions, agent, id) = (decisions.clone(), agent.id.clone(), id.clone());
        async move {
            let Ok(Some(entry)) = decisions.get(&id).await else {
                return false;
            };
            Ticket::decode(entry.value)
                .ok()
                .and_then(|t| t.decision)
                .is_some_and(|d| d.assignee == agent)
        }
    })
    .await?;

    work.apply(
        &id,
        Change::new(TicketState::Resolved, &agent.id, "resolved"),
    )
    .await?;
    eventually(WAIT, "the resolution to free the place", || {
        let (loads, agent, id) = (loads.clone(), agent.id.clone(), id.clone());
        async move {
            loads
                .get(&agent)
                .await
                .is_ok_and(|l| !l.tickets.contains_key(&id))
        }
    })
    .await?;
    running.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_bus_assigns_routed_tickets() -> anyhow::Result<()> {
    a_routed_ticket_reaches_an_agent(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_assigns_routed_tickets() -> anyhow::Result<()> {
    a_routed_ticket_reaches_an_agent(Kind::Nats).await
}
