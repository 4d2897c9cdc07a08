//! Who may publish on internal subjects, on a real nats-server: with the roles' signing key set, tickets
//! submitted through intake are decided as before, while a ticket put straight on `<prefix>.received`
//! by a client without the key, or with another key, is rejected, counted and kept as a dead letter
//! instead of decided. The metrics role, which only watches, counts it without keeping a second copy.
//! An operator's replay (signed) then lets a kept message through.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use switchboard::settings::Secret;
use switchboard_bus::OutMessage;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::{Stage, SubmitRequest, Ticket};
use switchboard_runtime::Subjects;
use switchboard_runtime::deadletters::{self, Selection};
use switchboard_tests::{
    Kind, bus, clean_up, collect_decisions, eventually, grpc, settings, start,
};

const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "the roles' key: 32 bytes or more!";

fn forged(id: &str) -> Ticket {
    Ticket {
        id: id.to_owned(),
        channel: "web".into(),
        text: "I was charged twice for my order".into(),
        stage: Stage::Received as i32,
        ..Ticket::default()
    }
}

/// `switchboard_messages_total{role, outcome="rejected"}` as the process exports it.
fn rejected(metrics: &switchboard_runtime::Metrics, role: &str) -> u64 {
    let role = format!("role=\"{role}\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("switchboard_messages_total{"))
        .filter(|l| l.contains(&role) && l.contains("outcome=\"rejected\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn messages_not_signed_by_a_role_are_rejected_counted_and_kept() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut settings = settings(Kind::Nats, &data);
    settings.bus.signing_key = Some(Secret::new(KEY));
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let running = start(
        &settings,
        "intake,parser,sentiment,retriever,router,feedback,metrics",
        bus.clone(),
    )
    .await?;
    let subjects = Subjects::new(&settings.subject_prefix);

    // Two outsiders on the same server and stream: one signs nothing, one signs with its own key.
    let mut outsider = settings.clone();
    outsider.bus.signing_key = None;
    let unsigned = switchboard::connect_bus(&outsider).await?;
    outsider.bus.signing_key = Some(Secret::new("somebody else's key, also 32 bytes"));
    let foreign = switchboard::connect_bus(&outsider).await?;
    for (bus, id) in [(&unsigned, "forged-unsigned"), (&foreign, "forged-foreign")] {
        bus.publish(OutMessage {
            subject: subjects.stage(Stage::Received),
            msg_id: Some(format!("{id}.received")),
            headers: Default::default(),
            payload: Bytes::from(forged(id).encode_to_vec()),
        })
        .await?;
    }

    let mut intake = IntakeClient::new(grpc(&running).await?);
    let genuine = intake
        .submit(SubmitRequest {
            text: b"my card payment was declined at the shop".to_vec(),
            channel: "web".into(),
            ..SubmitRequest::default()
        })
        .await?
        .into_inner()
        .ticket_id;

    let metrics = running.shared.metrics.clone();
    eventually(
        WAIT,
        "the genuine ticket decided and both forgeries rejected",
        || {
            let (decisions, metrics, genuine) =
                (decisions.clone(), metrics.clone(), genuine.clone());
            async move {
                decisions.lock().await.by_ticket.contains_key(&genuine)
                    && rejected(&metrics, "parser") == 2
                    && rejected(&metrics, "metrics") == 2
            }
        },
    )
    .await?;
    {
        let decided = decisions.lock().await;
        assert!(
            !decided.by_ticket.contains_key("forged-unsigned")
                && !decided.by_ticket.contains_key("forged-foreign"),
            "a forged ticket was decided"
        );
    }

    // Kept by the parser, the role that owns the subject, with the reason; not a second time by metrics.
    let letters = deadletters::list(bus.as_ref(), &Selection::default()).await?;
    let mut reasons: Vec<(String, String, String)> = letters
        .iter()
        .map(|s| {
            let ticket = Ticket::decode(s.letter.payload.as_slice()).expect("a ticket");
            (ticket.id, s.letter.role.clone(), s.letter.error.clone())
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(
        (reasons[0].0.as_str(), reasons[0].1.as_str()),
        ("forged-foreign", "parser")
    );
    assert!(
        reasons[0].2.contains("signature does not match"),
        "{}",
        reasons[0].2
    );
    assert_eq!(
        (reasons[1].0.as_str(), reasons[1].1.as_str()),
        ("forged-unsigned", "parser")
    );
    assert!(reasons[1].2.contains("not signed"), "{}", reasons[1].2);

    // An operator who trusts a kept message replays it; the replay is signed, so the ticket goes on.
    let kept = letters
        .iter()
        .find(|s| s.letter.error.contains("not signed"))
        .expect("the unsigned letter");
    deadletters::replay(bus.as_ref(), &subjects, kept).await?;
    eventually(WAIT, "the replayed ticket decided", || {
        let decisions = decisions.clone();
        async move {
            decisions
                .lock()
                .await
                .by_ticket
                .contains_key("forged-unsigned")
        }
    })
    .await?;
    assert_eq!(rejected(&metrics, "parser"), 2, "the replay was rejected");

    running.shutdown().await;
    clean_up(&settings).await
}
