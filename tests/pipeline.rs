//! The whole pipeline end to end, on the embedded bus and on a real nats-server: every valid ticket gets
//! exactly one decision, also when the router crashes mid-run and comes back; invalid tickets get a clear
//! error and cost nothing else; corrections and live rule edits change the next decision.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use switchboard::Running;
use switchboard::Settings;
use switchboard_accounts::Role;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, ConsumerSpec, OutMessage};
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::rules_client::RulesClient;
use switchboard_proto::stats_client::StatsClient;
use switchboard_proto::{
    Corrected, CorrectionReason, DeadLetter, GetDecisionRequest, Outcome, ProblemTypeSource, Rule,
    Stage, StatsRequest, SubmitRequest,
};
use switchboard_runtime::Subjects;
use switchboard_tests::{
    Authed, Kind, bus, clean_up, collect_decisions, eventually, grpc, settings, start, token,
};

const WAIT: Duration = Duration::from_secs(60);
const TICKETS: usize = 60;

/// Ticket texts: the demo tickets, which the knowledge base holds no verbatim copy of.
fn texts() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/tickets.csv");
    let mut reader = csv::Reader::from_path(path).expect("demo tickets");
    reader
        .records()
        .map(|r| r.expect("csv row")[0].to_owned())
        .collect()
}

fn submit(text: &str) -> SubmitRequest {
    SubmitRequest {
        text: text.as_bytes().to_vec(),
        channel: "web".into(),
        ..SubmitRequest::default()
    }
}

async fn intake(running: &Running) -> IntakeClient<Authed> {
    IntakeClient::new(grpc(running).await.expect("an authenticated channel"))
}

/// N tickets in, N decisions out — one each — while the router is killed mid-run and restarted.
async fn exactly_one_decision_per_ticket(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let front = start(
        &settings,
        "intake,parser,sentiment,retriever,feedback,metrics",
        bus.clone(),
    )
    .await?;
    let mut router = start(&settings, "router", bus.clone()).await?;
    let mut client = intake(&front).await;

    // Invalid tickets: a clear error naming the field, and nothing published.
    let err = client
        .submit(submit("   "))
        .await
        .expect_err("blank text is rejected");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("text"), "{}", err.message());
    let mut bad_utf8 = submit("");
    bad_utf8.text = vec![b'o', b'k', 0xff, 0xfe];
    let err = client
        .submit(bad_utf8)
        .await
        .expect_err("invalid UTF-8 is rejected");
    assert!(
        err.message().contains("text") && err.message().contains("UTF-8"),
        "{}",
        err.message()
    );
    let mut bad_channel = submit("my invoice is wrong");
    bad_channel.channel = "fax".into();
    let err = client
        .submit(bad_channel)
        .await
        .expect_err("unknown channel is rejected");
    assert!(err.message().contains("channel"), "{}", err.message());

    let texts = texts();
    let mut ids = HashSet::new();
    let mut restarted = None;
    for (i, text) in texts.iter().cycle().take(TICKETS).enumerate() {
        ids.insert(client.submit(submit(text)).await?.into_inner().ticket_id);
        if i == TICKETS / 3 {
            // A crash: whatever the router holds is never acknowledged and must be redelivered.
            assert!(router.abort_role("router"));
        }
        if i == TICKETS / 2 {
            restarted = Some(start(&settings, "router", bus.clone()).await?);
        }
    }
    assert_eq!(ids.len(), TICKETS);

    eventually(WAIT, "a decision for every ticket", || {
        let decisions = decisions.clone();
        async move { decisions.lock().await.by_ticket.len() >= TICKETS }
    })
    .await?;
    // Let any redelivery from the crash play out: the router's consumer must have nothing left in hand.
    let subjects = Subjects::new(&settings.subject_prefix);
    let router_consumer = bus
        .consumer(ConsumerSpec {
            durable: "router".into(),
            filter: subjects.stage(Stage::Matched),
            ack_wait: Duration::from_secs(settings.runner.ack_wait_secs),
        })
        .await?;
    eventually(WAIT, "the router to settle", || {
        let c = router_consumer.clone();
        async move { c.pending().await.map(|p| p == 0).unwrap_or(false) }
    })
    .await?;

    let all = decisions.lock().await;
    let decided: HashSet<String> = all.by_ticket.keys().cloned().collect();
    assert_eq!(
        decided, ids,
        "every submitted ticket, and only those, is decided"
    );
    assert_eq!(
        all.messages, TICKETS,
        "one decision message per ticket, no duplicates"
    );
    for t in all.by_ticket.values() {
        let d = t.decision.as_ref().expect("decision section");
        assert!(!d.explanation.is_empty());
        let evidence = t.matches.as_ref().map_or(0, |m| m.similar.len());
        if evidence == 0 {
            assert_eq!(
                d.outcome(),
                Outcome::Review,
                "no evidence means review: {}",
                t.text
            );
        }
        assert!(
            !d.evidence.is_empty() || evidence == 0,
            "evidence is summarised per department"
        );
        assert!(t.assessment.is_some() && t.parsed.is_some());
        // The local parser's keyword guess gives way to the problem type of the nearest typed tickets.
        let parsed = t.parsed.as_ref().expect("parsed section");
        let typed = t
            .matches
            .as_ref()
            .is_some_and(|m| m.similar.iter().any(|s| !s.problem_type.is_empty()));
        let expected = if typed {
            ProblemTypeSource::Neighbours
        } else {
            ProblemTypeSource::Keyword
        };
        assert_eq!(parsed.problem_type_source(), expected, "{}", t.text);
    }
    drop(all);

    let mut stats = StatsClient::new(grpc(&front).await?);
    let last = Arc::new(tokio::sync::Mutex::new(None));
    let counted = eventually(WAIT, "the metrics role to count every decision", || {
        let (mut stats, last) = (stats.clone(), last.clone());
        async move {
            let s = stats
                .get(StatsRequest {})
                .await
                .expect("stats")
                .into_inner();
            let done = s.received == TICKETS as u64 && s.routed + s.review == TICKETS as u64;
            *last.lock().await = Some(s);
            done
        }
    })
    .await;
    // What it had counted, when it never got there: more than one decision per ticket, or too few.
    counted.with_context(|| {
        format!(
            "the last stats: {:?}",
            last.try_lock().ok().and_then(|l| l.clone())
        )
    })?;
    let s = stats.get(StatsRequest {}).await?.into_inner();
    assert!(!s.hot_issues.is_empty(), "hot issue types are counted");
    let exposition = http_get(&front, "/metrics").await?;
    for family in [
        "switchboard_messages_total{role=\"parser\",outcome=\"ok\"}",
        "switchboard_handle_duration_seconds_bucket{",
        "switchboard_decisions_total{outcome=",
        "switchboard_tickets_rejected_total{field=\"text\"} 2",
    ] {
        assert!(
            exposition.contains(family),
            "/metrics lacks {family}:\n{exposition}"
        );
    }

    if let Some(r) = restarted {
        r.shutdown().await;
    }
    router.shutdown().await;
    front.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_bus_one_decision_per_ticket_across_a_router_crash() -> anyhow::Result<()> {
    exactly_one_decision_per_ticket(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_one_decision_per_ticket_across_a_router_crash() -> anyhow::Result<()> {
    exactly_one_decision_per_ticket(Kind::Nats).await
}

/// A message no role can read goes to the dead-letter subject with the error, and is acknowledged.
async fn undecodable_input_is_dead_lettered(kind: Kind) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let subjects = Subjects::new(&settings.subject_prefix);
    let letters = bus
        .consumer(ConsumerSpec {
            durable: "test-deadletters".into(),
            filter: subjects.deadletter_all(),
            ack_wait: Duration::from_secs(30),
        })
        .await?;
    let running = start(&settings, "parser", bus.clone()).await?;
    bus.publish(OutMessage {
        subject: subjects.stage(Stage::Received),
        msg_id: Some("garbage.received".into()),
        headers: Default::default(),
        payload: Bytes::from_static(&[0xff, 0xff, 0xff]),
    })
    .await?;
    let d = tokio::time::timeout(WAIT, letters.next()).await??;
    let letter = DeadLetter::decode(d.payload.clone())?;
    assert_eq!(d.subject, subjects.deadletter("parser"));
    assert_eq!(letter.role, "parser");
    assert_eq!(letter.subject, subjects.stage(Stage::Received));
    assert_eq!(
        letter.payload,
        vec![0xff, 0xff, 0xff],
        "the original message is kept"
    );
    assert!(!letter.error.is_empty());
    d.acker.ack().await?;
    running.shutdown().await;
    clean_up(&settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_bus_dead_letters_undecodable_input() -> anyhow::Result<()> {
    undecodable_input_is_dead_lettered(Kind::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_dead_letters_undecodable_input() -> anyhow::Result<()> {
    undecodable_input_is_dead_lettered(Kind::Nats).await
}

async fn decide(
    client: &mut IntakeClient<Authed>,
    decisions: &Arc<tokio::sync::Mutex<switchboard_tests::Decisions>>,
    text: &str,
) -> anyhow::Result<switchboard_proto::Ticket> {
    let id = client.submit(submit(text)).await?.into_inner().ticket_id;
    eventually(WAIT, "a decision", || {
        let (decisions, id) = (decisions.clone(), id.clone());
        async move { decisions.lock().await.by_ticket.contains_key(&id) }
    })
    .await?;
    Ok(decisions.lock().await.by_ticket[&id].clone())
}

/// Corrections teach the knowledge base; rule edits apply without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrections_and_rules_change_the_next_decision() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings: Settings = settings(Kind::Memory, &data);
    let bus: Arc<dyn Bus> = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let running = start(&settings, "all", bus.clone()).await?;
    let mut client = intake(&running).await;
    let channel = grpc(&running).await?;

    // An agent moves a ticket after a policy change; the same problem next time follows the correction.
    let text = "公司电脑的打印机驱动装不上，一直报错，没法打印合同。";
    let first = decide(&mut client, &decisions, text).await?;
    let before = first.decision.clone().expect("decision").department;
    // Parsed locally, its problem type comes from the demo history, naming the tickets it came from.
    let parsed = first.parsed.clone().expect("parsed");
    assert_eq!(parsed.parser, "local");
    assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Neighbours);
    let similar = &first.matches.as_ref().expect("matches").similar;
    let nearest_of_type = similar
        .iter()
        .find(|s| s.problem_type == parsed.problem_type)
        .map(|s| &s.id);
    assert!(nearest_of_type.is_some(), "{parsed:?} {similar:#?}");
    assert_eq!(
        parsed.problem_type_neighbours.first(),
        nearest_of_type,
        "{similar:#?}"
    );
    let target = if before == "hr_services" {
        "device_support"
    } else {
        "hr_services"
    };
    let mut board = DecisionsClient::new(channel.clone());
    let stored = board
        .get(GetDecisionRequest {
            ticket_id: first.id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(stored.decision.expect("stored decision").department, before);
    let err = board
        .correct(Corrected {
            ticket_id: first.id.clone(),
            to_department: target.into(),
            ..Corrected::default()
        })
        .await
        .expect_err("a correction needs a reason");
    assert!(err.message().contains("reason"), "{}", err.message());
    board
        .correct(Corrected {
            ticket_id: first.id.clone(),
            to_department: target.into(),
            reason: CorrectionReason::PolicyUpdated.into(),
            agent: "agent-7".into(),
            ..Corrected::default()
        })
        .await?;
    let kb = running.shared.kb.clone().expect("knowledge base");
    let learnt_id = format!("ticket:{}", first.id);
    eventually(WAIT, "the correction to reach the knowledge base", || {
        let (kb, learnt_id) = (kb.clone(), learnt_id.clone());
        async move {
            kb.similar(text, 1)
                .await
                .map(|s| s.first().is_some_and(|t| t.id == learnt_id))
                .unwrap_or(false)
        }
    })
    .await?;
    let learnt = kb.similar(text, 1).await?.remove(0);
    assert_eq!(
        (learnt.department.as_str(), learnt.problem_type),
        (target, parsed.problem_type.clone()),
        "the correction carries the ticket's problem type"
    );
    let second = decide(&mut client, &decisions, text).await?;
    assert_eq!(
        second.decision.expect("decision").department,
        target,
        "the correction is followed"
    );

    // A rule added while running takes effect on the next ticket.
    let mut rules = RulesClient::new(channel);
    let err = rules
        .put(Rule {
            id: "bad rule".into(),
            ..Rule::default()
        })
        .await
        .expect_err("an invalid rule is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    rules
        .put(Rule {
            id: "quantum".into(),
            keywords: vec!["quantum".into()],
            department: "device_support".into(),
            weight: 3.0,
            enabled: true,
            description: "quantum terminals belong to device support".into(),
        })
        .await?;
    let mut fired = false;
    for _ in 0..50 {
        let t = decide(
            &mut client,
            &decisions,
            "The quantum terminal in room 4 will not take my invoice",
        )
        .await?;
        let d = t.decision.expect("decision");
        if d.rules.iter().any(|r| r.id == "quantum") {
            assert_eq!(d.department, "device_support");
            assert!(d.rules_version > 0);
            fired = true;
            break;
        }
    }
    assert!(fired, "the new rule fired without a restart");
    running.shutdown().await;
    Ok(())
}

/// `GET path` on a process's HTTP door, as a viewer.
async fn http_get(running: &Running, path: &str) -> anyhow::Result<String> {
    let viewer = token(&running.shared.bus, Role::Viewer).await?;
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", running.http_addr))
        .bearer_auth(viewer)
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
    Ok(body)
}

/// Shutdown on a volatile bus, whose messages die with the process, first lets every ticket already
/// accepted reach its decision. (The embedded default is stored, and durable: it needs no drain.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volatile_shutdown_drains_in_flight_tickets() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(Kind::Memory, &data);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    assert!(!bus.durable());
    let decisions = collect_decisions(&settings, &bus).await?;
    let running = start(&settings, "all", bus.clone()).await?;
    let intake = running.intake.clone().expect("intake runs");
    let mut ids = HashSet::new();
    for text in texts().iter().take(40) {
        let submission = switchboard_intake::Submission {
            text: text.as_bytes().to_vec(),
            channel: "web".into(),
            ..Default::default()
        };
        ids.insert(intake.submit(submission).await?.ticket_id);
    }
    // Straight to shutdown, with most tickets still somewhere in the pipeline.
    running.shutdown().await;
    let subjects = Subjects::new(&settings.subject_prefix);
    let mut published = 0;
    for stage in [Stage::Routed, Stage::Review] {
        let c = bus
            .consumer(ConsumerSpec {
                durable: format!(
                    "drain-check-{}",
                    stage.as_str_name().to_lowercase().replace('_', "-")
                ),
                filter: subjects.stage(stage),
                ack_wait: Duration::from_secs(30),
            })
            .await?;
        published += c.pending().await?;
    }
    assert_eq!(
        published,
        ids.len() as u64,
        "every accepted ticket was decided before shutdown returned"
    );
    eventually(WAIT, "the collector to see them", || {
        let decisions = decisions.clone();
        async move { decisions.lock().await.by_ticket.len() == 40 }
    })
    .await
}
