//! Replica-safe roles, on the embedded bus and on a real nats-server: three metrics replicas answer the
//! cockpit's stats alike, each with every ticket although the other roles' work is split between
//! processes, and a replica started after the events (as a restarted one is) rebuilds the same figures
//! from the stream; three retriever replicas count an incident's customers together, whichever of them
//! the bus gives each ticket.

use std::time::Duration;

use anyhow::Context;
use switchboard::Running;
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::stats_client::StatsClient;
use switchboard_proto::{
    Corrected, CorrectionReason, Resolved, StatsReply, StatsRequest, SubmitRequest,
};
use switchboard_tests::{
    Kind, bus, clean_up, collect_decisions, eventually, grpc, settings, start,
};

const WAIT: Duration = Duration::from_secs(60);
const TICKETS: usize = 9;
const TEXTS: [&str; 3] = [
    "My VPN drops every ten minutes since this morning",
    "The printer on the third floor jams on every page",
    "I was charged twice for last month's invoice",
];

/// The figures that must not depend on which replica answers.
fn figures(s: &StatsReply) -> String {
    format!(
        "received {} routed {} review {} corrected {} resolved {} accuracy {} hot {:?} reasons {:?}",
        s.received,
        s.routed,
        s.review,
        s.corrected,
        s.resolved,
        s.dispatch_accuracy,
        s.hot_issues,
        s.corrections_by_reason
    )
}

/// Waits until the process's metrics role has counted every event, and returns its figures.
async fn counted(name: &str, running: &Running) -> anyhow::Result<String> {
    let stats = StatsClient::new(grpc(running).await?);
    let all = TICKETS as u64;
    let whole = move |s: &StatsReply| {
        s.received == all && s.routed + s.review == all && s.corrected == 1 && s.resolved == 1
    };
    let done = eventually(WAIT, &format!("{name} to count every event"), || {
        let mut stats = stats.clone();
        async move {
            stats
                .get(StatsRequest {})
                .await
                .is_ok_and(|s| whole(&s.into_inner()))
        }
    })
    .await;
    let last = stats.clone().get(StatsRequest {}).await?.into_inner();
    done.with_context(|| format!("{name} last answered {}", figures(&last)))?;
    Ok(figures(&last))
}

async fn every_metrics_replica_gives_the_same_figures(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let front = start(
        &settings,
        "intake,parser,sentiment,retriever,router,feedback,metrics",
        bus.clone(),
    )
    .await?;
    // Two more processes, each with a parser and a metrics replica, so the parsing is split three ways.
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(start(&settings, "parser,sentiment,metrics", bus.clone()).await?);
    }
    let channel = grpc(&front).await?;
    let mut intake = IntakeClient::new(channel.clone());
    let mut ids = Vec::new();
    for text in TEXTS.iter().cycle().take(TICKETS) {
        let request = SubmitRequest {
            text: text.as_bytes().to_vec(),
            channel: "web".into(),
            ..SubmitRequest::default()
        };
        ids.push(intake.submit(request).await?.into_inner().ticket_id);
    }
    eventually(WAIT, "a decision for every ticket", || {
        let decisions = decisions.clone();
        async move { decisions.lock().await.by_ticket.len() >= TICKETS }
    })
    .await?;
    let mut desk = DecisionsClient::new(channel);
    desk.correct(Corrected {
        ticket_id: ids[0].clone(),
        to_department: "billing".into(),
        reason: CorrectionReason::WrongDepartment.into(),
        ..Corrected::default()
    })
    .await?;
    desk.resolve(Resolved {
        ticket_id: ids[1].clone(),
        department: "it_support".into(),
        ..Resolved::default()
    })
    .await?;

    let expected = counted("the first replica", &front).await?;
    for (i, other) in others.iter().enumerate() {
        let name = format!("replica {}", i + 2);
        assert_eq!(counted(&name, other).await?, expected, "{name}");
    }
    let late = start(&settings, "metrics", bus.clone()).await?;
    assert_eq!(
        counted("a replica started afterwards", &late).await?,
        expected
    );

    late.shutdown().await;
    for other in others {
        other.shutdown().await;
    }
    front.shutdown().await;
    clean_up(&settings).await
}

/// Customers of one outage, one after another: each ticket is decided before the next is sent, so
/// whichever replica handled the last one has shared it by then.
async fn retriever_replicas_count_an_incident_together(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let front = start(
        &settings,
        "intake,parser,sentiment,retriever,router",
        bus.clone(),
    )
    .await?;
    // Each retriever process has a knowledge base of its own (the embedded store is one process's).
    let mut dirs = Vec::new();
    let mut others = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir()?;
        let mut own = settings.clone();
        own.data_dir = dir.path().to_path_buf();
        others.push(start(&own, "retriever", bus.clone()).await?);
        dirs.push(dir);
    }
    let mut intake = IntakeClient::new(grpc(&front).await?);
    let mut customers = Vec::new();
    for i in 0..6 {
        let request = SubmitRequest {
            text: "The checkout page fails with error 502 when I pay"
                .as_bytes()
                .to_vec(),
            channel: "web".into(),
            customer_id: format!("customer-{i}"),
            ..SubmitRequest::default()
        };
        let id = intake.submit(request).await?.into_inner().ticket_id;
        eventually(WAIT, "the decision", || {
            let (decisions, id) = (decisions.clone(), id.clone());
            async move { decisions.lock().await.by_ticket.contains_key(&id) }
        })
        .await?;
        let decided = decisions.lock().await.by_ticket[&id].clone();
        let incident = decided.matches.and_then(|m| m.incident);
        customers.push(incident.map_or(0, |s| s.customers));
    }
    assert_eq!(customers, [0, 2, 3, 4, 5, 6]);

    for other in others {
        other.shutdown().await;
    }
    front.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_bus_retriever_replicas_count_incidents_together() -> anyhow::Result<()> {
    retriever_replicas_count_an_incident_together(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_retriever_replicas_count_incidents_together() -> anyhow::Result<()> {
    retriever_replicas_count_an_incident_together(Kind::Nats).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_bus_metrics_replicas_agree() -> anyhow::Result<()> {
    every_metrics_replica_gives_the_same_figures(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_metrics_replicas_agree() -> anyhow::Result<()> {
    every_metrics_replica_gives_the_same_figures(Kind::Nats).await
}
