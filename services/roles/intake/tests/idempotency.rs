//! An idempotency key stands for exactly one ticket that exists, whatever fails between intake and the
//! bus: intake dying after the claim, a publish that never reached the bus, a publish stored whose
//! acknowledgement was lost, replicas racing on one key, and the NATS door's redeliveries. Each runs on
//! the in-process bus and on the nats-server at `SWITCHBOARD_TEST_NATS_URL`.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use support::{Fault, Fixture, KINDS, fixture_on};
use switchboard_bus::OutMessage;
use switchboard_intake::{InboundHandler, IntakeConfig, IntakeError, Submission, Submitted};
use switchboard_proto::{Ticket, TicketState};
use switchboard_runtime::{Publisher, RoleRunner, RunnerOptions, Supervisor};

fn keyed(key: &str) -> Submission {
    Submission {
        text: "我的手机 13812345678 收不到验证码".as_bytes().to_vec(),
        channel: "web".into(),
        idempotency_key: key.into(),
        ..Submission::default()
    }
}

/// The one ticket on the bus, which the answer names, and which the desk knows.
async fn the_one_ticket(f: &Fixture, answer: &Submitted) -> Ticket {
    let tickets = f.received().await;
    assert_eq!(tickets.len(), 1, "{:?}: {tickets:?}", f.kind);
    let ticket = tickets.into_iter().next().unwrap();
    assert_eq!(ticket.id, answer.ticket_id, "{:?}", f.kind);
    assert_eq!(ticket.text, "我的手机 <PHONE_1> 收不到验证码");
    let state = f.work.get(&ticket.id).await.unwrap();
    assert_eq!(
        state.map(|s| s.state()),
        Some(TicketState::Received),
        "{:?}",
        f.kind
    );
    ticket
}

/// Further retries answer with the same ticket and publish nothing.
async fn retries_are_duplicates(f: &Fixture, s: &Submission, ticket_id: &str) {
    for _ in 0..2 {
        let again = f.intake.submit(s.clone()).await.unwrap();
        assert_eq!(
            (again.ticket_id.as_str(), again.duplicate),
            (ticket_id, true)
        );
    }
    assert!(f.received().await.is_empty(), "{:?}", f.kind);
}

#[tokio::test]
async fn a_key_claimed_by_an_intake_that_died_before_publishing_gets_its_ticket_on_retry() {
    for kind in KINDS {
        let f = fixture_on(kind, IntakeConfig::default()).await;
        let s = keyed("died-after-claim");
        // Intake dies while its publish is in flight: the future is dropped after the claim.
        f.faults.inject(Fault::Hang, 1);
        let dying = f.another_intake();
        let outcome =
            tokio::time::timeout(Duration::from_millis(300), dying.submit(s.clone())).await;
        assert!(outcome.is_err(), "{kind:?}: the publish was to hang");
        drop(dying);
        assert!(f.received().await.is_empty(), "{kind:?}");
        assert_eq!(
            f.idempotency.entries().await.unwrap().len(),
            1,
            "{kind:?}: the key is claimed"
        );

        // The client retries against the intake that replaced it: it gets the claimed ticket, which is
        // now on the bus, not an id that exists nowhere.
        let retried = f.intake.submit(s.clone()).await.unwrap();
        assert!(retried.duplicate, "{kind:?}");
        let ticket = the_one_ticket(&f, &retried).await;
        retries_are_duplicates(&f, &s, &ticket.id).await;
        f.clean_up().await;
    }
}

#[tokio::test]
async fn a_publish_that_never_reached_the_bus_is_made_by_the_retry() {
    for kind in KINDS {
        let f = fixture_on(kind, IntakeConfig::default()).await;
        let s = keyed("unreachable");
        f.faults.inject(Fault::Unreachable, 1);
        let e = f.intake.submit(s.clone()).await.unwrap_err();
        assert!(matches!(e, IntakeError::Publish(_)), "{kind:?}: {e:?}");
        assert_eq!(
            switchboard_runtime::error_chain(&e),
            format!(
                "publishing the ticket failed: publishing to {}.received failed: stream unavailable",
                f.subjects.prefix()
            )
        );
        assert!(f.received().await.is_empty(), "{kind:?}");

        let retried = f.intake.submit(s.clone()).await.unwrap();
        let ticket = the_one_ticket(&f, &retried).await;
        retries_are_duplicates(&f, &s, &ticket.id).await;
        f.clean_up().await;
    }
}

#[tokio::test]
async fn a_publish_stored_whose_acknowledgement_was_lost_is_not_made_twice() {
    for kind in KINDS {
        let f = fixture_on(kind, IntakeConfig::default()).await;
        let s = keyed("ack-lost");
        f.faults.inject(Fault::AckLost, 1);
        let e = f.intake.submit(s.clone()).await.unwrap_err();
        assert!(
            switchboard_runtime::error_chain(&e)
                .ends_with("connection lost before the acknowledgement"),
            "{kind:?}: {e:?}"
        );
        // The bus has the ticket although the client was told to send it again.
        let stored = f.received().await;
        assert_eq!(stored.len(), 1, "{kind:?}");

        // The retry publishes the same ticket under the same message id, which the stream drops: the
        // client is told of the one ticket there is.
        let retried = f.intake.submit(s.clone()).await.unwrap();
        assert_eq!(
            (retried.ticket_id.as_str(), retried.duplicate),
            (stored[0].id.as_str(), true),
            "{kind:?}"
        );
        assert!(f.received().await.is_empty(), "{kind:?}: no second ticket");
        retries_are_duplicates(&f, &s, &stored[0].id).await;
        f.clean_up().await;
    }
}

#[tokio::test]
async fn replicas_racing_on_one_key_make_one_ticket() {
    for kind in KINDS {
        let f = fixture_on(kind, IntakeConfig::default()).await;
        let s = keyed("racing");
        let replicas: Vec<_> = (0..6).map(|_| Arc::new(f.another_intake())).collect();
        let answers = futures::future::join_all(replicas.iter().map(|intake| {
            let s = s.clone();
            let intake = intake.clone();
            async move { intake.submit(s).await.unwrap() }
        }))
        .await;
        let ids: HashSet<_> = answers.iter().map(|a| a.ticket_id.clone()).collect();
        assert_eq!(ids.len(), 1, "{kind:?}: {answers:?}");
        assert_eq!(
            answers.iter().filter(|a| !a.duplicate).count(),
            1,
            "{kind:?}: exactly one replica made the ticket"
        );
        the_one_ticket(&f, &answers[0]).await;
        f.clean_up().await;
    }
}

/// The NATS door under the runner: the handler's publish stores the ticket and loses the
/// acknowledgement, so the event is redelivered; the redelivery publishes the same ticket, once.
#[tokio::test]
async fn an_event_whose_ticket_publish_lost_its_acknowledgement_makes_one_ticket() {
    for kind in KINDS {
        let f = fixture_on(kind, IntakeConfig::default()).await;
        f.faults.inject(Fault::AckLost, 2);
        let (supervisor, _failures) = Supervisor::new();
        let options = RunnerOptions {
            retry_backoff_ms: 20,
            ..RunnerOptions::default()
        };
        let running = RoleRunner {
            role: "intake",
            filter: f.subjects.inbound_all(),
            each_replica_reads_all: false,
            handler: Arc::new(InboundHandler::new(f.intake.clone())),
            publisher: Publisher::new(f.bus.clone()),
            subjects: f.subjects.clone(),
            metrics: f.metrics.clone(),
            options,
            signer: None,
        }
        .start(&supervisor)
        .await
        .unwrap();
        let event = serde_json::json!({
            "specversion": "1.0",
            "id": "e-ack",
            "source": "connector/wecom",
            "type": "ticket.created",
            "data": {"text": "我的手机 13812345678 收不到验证码"},
        });
        f.bus
            .publish(OutMessage {
                subject: f.subjects.inbound("wecom"),
                msg_id: None,
                headers: Default::default(),
                payload: serde_json::to_vec(&event).unwrap().into(),
            })
            .await
            .unwrap();

        // Two failed attempts, then one that goes through and is acknowledged.
        let handled = |outcome: &str| {
            let line =
                format!("switchboard_messages_total{{role=\"intake\",outcome=\"{outcome}\"}} ");
            let encoded = f.metrics.encode();
            let count = encoded.lines().find_map(|l| l.strip_prefix(line.as_str()));
            count.map_or(0, |n| n.parse::<u64>().unwrap())
        };
        for _ in 0..250 {
            if handled("ok") > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        running.stop().await;
        assert_eq!((handled("retry"), handled("ok")), (2, 1), "{kind:?}");
        let tickets = f.received().await;
        assert_eq!(tickets.len(), 1, "{kind:?}: {tickets:?}");
        assert_eq!(tickets[0].idempotency_key, "connector/wecom/e-ack");
        f.clean_up().await;
    }
}
