//! What a correction changes: the stored decision, the knowledge record a later resolution writes, the
//! weight of the old department's history, and so where the next similar ticket goes. On the
//! in-process bus and a BM25-only knowledge base in a temporary directory, with tickets of its own.

use std::sync::Arc;

use prost::Message;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, Kv};
use switchboard_feedback::{CorrectionsConfig, FeedbackHandler};
use switchboard_knowledge::evidence::{Weighing, blend};
use switchboard_knowledge::{KnowledgeBase, TrainingPlan};
use switchboard_proto::{
    Corrected, CorrectionReason, Decision, KnowledgeRecord, Matches, Outcome, Resolved, Ticket,
};
use switchboard_runtime::{Handler, Inbound, Subjects};

/// Parking permits, first the front desk's: the topic whose responsibility moves.
const PARKING: &[&str] = &[
    "I need a parking permit for the staff car park",
    "my parking permit expired, how do I renew the permit",
    "can I get a visitor parking permit for tomorrow",
    "the parking permit sticker fell off my windscreen",
    "lost my parking permit card, please issue a new permit",
    "which form do I fill in for a yearly parking permit",
];
const HEATING: &[&str] = &[
    "the heating in the east wing office is broken",
    "radiators are cold on the third floor again",
    "the boiler makes a loud noise and the heating stops",
    "office far too cold, heating not working since monday",
    "please fix the radiator valve in meeting room two",
    "heating runs all night and the room is too hot",
];
const LAPTOPS: &[&str] = &[
    "my laptop will not boot after the update",
    "laptop screen stays black when I press power",
    "the laptop battery drains in an hour",
    "keyboard on my laptop stopped typing some letters",
    "laptop fan is loud and the machine overheats",
    "need a replacement charger for my laptop",
];
/// New parking tickets after the move to facilities, none of them in the history.
const NEW_PARKING: &[&str] = &[
    "parking permit request for a new employee",
    "how long does a parking permit renewal take",
    "my colleague needs a temporary parking permit",
    "parking permit was refused, who can help",
    "update the car on my parking permit",
];

struct Fixture {
    kb: KnowledgeBase,
    handler: FeedbackHandler,
    decisions: Arc<dyn Kv>,
    subjects: Subjects,
    _dir: tempfile::TempDir,
}

async fn fixture(corrections: CorrectionsConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let decisions = bus.kv("decisions").await.expect("bucket");
    let subjects = Subjects::new("tickets");
    let handler = FeedbackHandler::new(kb.clone(), decisions.clone(), subjects.clone())
        .with_corrections(corrections);
    let mut history = Vec::new();
    for (department, texts) in [
        ("front_desk", PARKING),
        ("facilities", HEATING),
        ("it_help", LAPTOPS),
    ] {
        for (i, text) in texts.iter().enumerate() {
            history.push(KnowledgeRecord {
                id: format!("{department}-{i}"),
                text: (*text).into(),
                department: department.into(),
                ..KnowledgeRecord::default()
            });
        }
    }
    kb.upsert(history).await.expect("history");
    Fixture {
        kb,
        handler,
        decisions,
        subjects,
        _dir: dir,
    }
}

/// Stores a ticket as the router stores its decision.
async fn decided(f: &Fixture, id: &str, text: &str, department: &str) {
    let ticket = Ticket {
        id: id.into(),
        text: text.into(),
        received_at_ms: 1_000_000,
        decision: Some(Decision {
            department: department.into(),
            confidence: 0.8,
            outcome: Outcome::Review.into(),
            explanation: "the router's".into(),
            ..Decision::default()
        }),
        ..Ticket::default()
    };
    f.decisions
        .put(id, ticket.encode_to_vec().into())
        .await
        .expect("store decision");
}

async fn handle(f: &Fixture, subject: String, payload: Vec<u8>) {
    f.handler
        .handle(&Inbound {
            subject,
            payload: payload.into(),
            attempt: 1,
        })
        .await
        .expect("learnt");
}

fn correction(id: &str, from: &str, to: &str, reason: CorrectionReason) -> Corrected {
    Corrected {
        ticket_id: id.into(),
        from_department: from.into(),
        to_department: to.into(),
        reason: reason.into(),
        agent: "ana".into(),
        note: "permits moved".into(),
        at_ms: 2_000_000,
    }
}

async fn stored(f: &Fixture, id: &str) -> Ticket {
    let entry = f.decisions.get(id).await.expect("get").expect("stored");
    Ticket::decode(entry.value).expect("decode")
}

async fn weight_of(f: &Fixture, id: &str) -> f32 {
    f.kb.records()
        .await
        .expect("records")
        .into_iter()
        .find(|r| r.record.id == id)
        .unwrap_or_else(|| panic!("no record {id}"))
        .record
        .weight
}

#[tokio::test]
async fn a_correction_becomes_the_decision_and_keeps_the_original_once() {
    let f = fixture(CorrectionsConfig::default()).await;
    decided(&f, "t-1", NEW_PARKING[0], "front_desk").await;
    let c = correction(
        "t-1",
        "front_desk",
        "facilities",
        CorrectionReason::ResponsibilityChanged,
    );
    handle(&f, f.subjects.corrected(), c.encode_to_vec()).await;
    // The nearest permit ticket of the front desk.
    let demoted = weight_of(&f, "front_desk-4").await;
    // Delivered again: nothing more changes.
    handle(&f, f.subjects.corrected(), c.encode_to_vec()).await;

    let ticket = stored(&f, "t-1").await;
    let decision = ticket.decision.expect("a decision");
    assert_eq!(decision.department, "facilities");
    assert_eq!(decision.outcome(), Outcome::Routed);
    assert_eq!(decision.decided_at_ms, 2_000_000);
    assert_eq!(decision.correction.as_ref(), Some(&c), "who, why and when");
    assert_eq!(
        ticket.superseded.len(),
        1,
        "the redelivery kept one original"
    );
    let original = &ticket.superseded[0];
    assert_eq!(
        (original.department.as_str(), original.outcome()),
        ("front_desk", Outcome::Review)
    );
    assert_eq!(original.explanation, "the router's");
    assert_eq!(weight_of(&f, "front_desk-4").await, demoted, "demoted once");
    assert!(demoted < 1.0, "{demoted}");
}

#[tokio::test]
async fn a_resolution_after_a_correction_keeps_its_department_and_weight() {
    let f = fixture(CorrectionsConfig::default()).await;
    decided(&f, "t-2", NEW_PARKING[1], "front_desk").await;
    let c = correction(
        "t-2",
        "front_desk",
        "facilities",
        CorrectionReason::WrongDepartment,
    );
    handle(&f, f.subjects.corrected(), c.encode_to_vec()).await;
    let resolution = Resolved {
        ticket_id: "t-2".into(),
        resolved_at_ms: 1_000_000 + 30 * 60_000,
        ..Resolved::default()
    };
    handle(&f, f.subjects.resolved(), resolution.encode_to_vec()).await;
    let record =
        f.kb.records()
            .await
            .expect("records")
            .into_iter()
            .find(|r| r.record.id == "ticket:t-2")
            .expect("the ticket's record")
            .record;
    assert_eq!(record.department, "facilities");
    assert_eq!(record.source, "correction");
    assert_eq!(record.weight, 2.0, "wrong_department's weight");
    assert_eq!(record.resolution_minutes, Some(30));
}

#[tokio::test]
async fn a_change_of_responsibility_demotes_only_close_older_tickets_of_the_old_department() {
    let f = fixture(CorrectionsConfig::default()).await;
    // A front-desk ticket learnt after the corrected one arrived: newer than it, so not demoted.
    // And one about something else: far from the corrected ticket.
    f.kb.upsert(vec![
        KnowledgeRecord {
            id: "front_desk-late".into(),
            text: "I need a parking permit for the staff car park, urgently".into(),
            department: "front_desk".into(),
            created_at_ms: 3_000_000,
            ..KnowledgeRecord::default()
        },
        KnowledgeRecord {
            id: "front_desk-far".into(),
            text: "the badge reader at the lobby door is broken".into(),
            department: "front_desk".into(),
            ..KnowledgeRecord::default()
        },
    ])
    .await
    .expect("late record");
    decided(&f, "t-3", NEW_PARKING[0], "front_desk").await;

    // A plain mistake demotes nothing.
    let mistake = correction(
        "t-3",
        "front_desk",
        "facilities",
        CorrectionReason::WrongDepartment,
    );
    handle(&f, f.subjects.corrected(), mistake.encode_to_vec()).await;
    for r in f.kb.records().await.expect("records") {
        assert!(r.record.weight >= 1.0, "{} was demoted", r.record.id);
    }

    decided(&f, "t-4", PARKING[0], "front_desk").await;
    let change = correction(
        "t-4",
        "front_desk",
        "facilities",
        CorrectionReason::ResponsibilityChanged,
    );
    handle(&f, f.subjects.corrected(), change.encode_to_vec()).await;
    let factor = CorrectionsConfig::default().demote_factor;
    let records = f.kb.records().await.expect("records");
    let weights: Vec<(String, String, f32)> = records
        .iter()
        .filter(|r| r.record.source != "moved")
        .map(|r| {
            let r = &r.record;
            (r.id.clone(), r.department.clone(), r.weight)
        })
        .collect();
    let demoted: Vec<&str> = weights
        .iter()
        .filter(|(_, _, w)| *w < 1.0)
        .map(|(id, _, _)| id.as_str())
        .collect();
    assert!(!demoted.is_empty(), "{weights:?}");
    for (id, department, weight) in &weights {
        if *weight < 1.0 {
            assert_eq!(department, "front_desk", "{id}");
            assert_eq!(*weight, factor, "{id}: one demotion by the factor");
        }
    }
    // What each demoted ticket lost is a record of the department the correction chose, and no
    // other record moved anywhere.
    let moved: Vec<&KnowledgeRecord> = records
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.source == "moved")
        .collect();
    assert_eq!(moved.len(), demoted.len(), "{moved:?}");
    for id in &demoted {
        let part = moved
            .iter()
            .find(|r| r.id == format!("moved:facilities:{id}"))
            .unwrap_or_else(|| panic!("no moved part of {id}: {moved:?}"));
        assert_eq!(part.department, "facilities");
        assert!((part.weight - (1.0 - factor)).abs() < 1e-6, "{part:?}");
    }
    // The permit ticket is demoted; the front desk's late one and far one, and every other
    // department's, not.
    assert!(demoted.contains(&"front_desk-0"), "{demoted:?}");
    assert!(!demoted.contains(&"front_desk-late"), "{demoted:?}");
    assert_eq!(weight_of(&f, "front_desk-far").await, 1.0);
    assert_eq!(weight_of(&f, "facilities-0").await, 1.0);
    assert_eq!(weight_of(&f, "it_help-0").await, 1.0);
    assert_eq!(weight_of(&f, "ticket:t-4").await, 3.0, "change_weight");
}

#[tokio::test]
async fn tickets_already_at_the_floor_leave_the_limit_to_the_next_nearest() {
    // One demotion takes a weight to the floor, and a correction demotes two tickets at most.
    let f = fixture(CorrectionsConfig {
        demote_factor: 0.05,
        demote_floor: 0.05,
        demote_max_records: 2,
        ..CorrectionsConfig::default()
    })
    .await;
    for (round, id) in ["t-5", "t-6"].into_iter().enumerate() {
        // The same text each time: the same nearest tickets.
        decided(&f, id, PARKING[0], "front_desk").await;
        let change = correction(
            id,
            "front_desk",
            "facilities",
            CorrectionReason::ResponsibilityChanged,
        );
        handle(&f, f.subjects.corrected(), change.encode_to_vec()).await;
        let at_floor: Vec<String> =
            f.kb.records()
                .await
                .expect("records")
                .into_iter()
                .filter(|r| r.record.department == "front_desk" && r.record.weight < 1.0)
                .map(|r| r.record.id)
                .collect();
        assert_eq!(at_floor.len(), 2 * (round + 1), "{at_floor:?}");
    }
}

/// Where the knowledge base's evidence sends `text`: the similar tickets' shares blended with the
/// classifier, as the router blends them.
async fn route(kb: &KnowledgeBase, text: &str) -> String {
    let plan = TrainingPlan {
        neighbours: 10,
        weighing: Weighing::default(),
    };
    kb.classifier().refresh(kb, &plan).await.expect("train");
    let query = kb.query(text).await.expect("query");
    let scores = kb.classifier().scores(kb, &query).await.expect("scores");
    let matches = Matches {
        similar: kb.similar_to(&query, 10).await.expect("similar"),
        model_scores: scores.scores,
        model_weight: scores.model_weight,
        ..Matches::default()
    };
    let blended = blend(&matches, &Weighing::default(), 2_000_000);
    blended
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(department, _)| department.to_owned())
        .unwrap_or_default()
}

/// Corrects new parking tickets one by one, as agents do when the router sends them to the front desk,
/// and returns how many corrections it took until the last, unseen one went to facilities.
async fn corrections_until_followed(corrections: CorrectionsConfig) -> usize {
    let f = fixture(corrections).await;
    let (last, earlier) = NEW_PARKING.split_last().expect("tickets");
    assert_eq!(route(&f.kb, last).await, "front_desk", "before any change");
    for (n, text) in earlier.iter().enumerate() {
        let id = format!("p-{n}");
        decided(&f, &id, text, "front_desk").await;
        let c = correction(
            &id,
            "front_desk",
            "facilities",
            CorrectionReason::ResponsibilityChanged,
        );
        handle(&f, f.subjects.corrected(), c.encode_to_vec()).await;
        if route(&f.kb, last).await == "facilities" {
            // Heating tickets still go to facilities and laptops to IT: nothing else moved.
            assert_eq!(route(&f.kb, "the radiator is cold").await, "facilities");
            assert_eq!(route(&f.kb, "laptop does not boot").await, "it_help");
            return n + 1;
        }
    }
    earlier.len() + 1
}

#[tokio::test]
async fn routing_follows_a_change_of_responsibility_after_a_few_corrections() {
    let weighted = corrections_until_followed(CorrectionsConfig::default()).await;
    let plain = corrections_until_followed(CorrectionsConfig::plain()).await;
    assert!(weighted <= 3, "took {weighted} corrections");
    assert!(weighted <= plain, "weighted {weighted}, plain {plain}");
}
