//! What a correction or a resolution writes back to the knowledge base, on the in-process bus and a
//! knowledge base in a temporary directory.

use std::sync::Arc;

use prost::Message;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, Kv};
use switchboard_desk::{Change, WorkStates};
use switchboard_feedback::FeedbackHandler;
use switchboard_knowledge::KnowledgeBase;
use switchboard_proto::{
    Corrected, CorrectionReason, Decision, KnowledgeRecord, Parsed, ProblemTypeSource, Resolved,
    Ticket, TicketState,
};
use switchboard_runtime::{Handler, HandlerError, Inbound, Subjects};

struct Fixture {
    kb: KnowledgeBase,
    handler: FeedbackHandler,
    decisions: Arc<dyn Kv>,
    subjects: Subjects,
    work: WorkStates,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let decisions = bus.kv("decisions").await.expect("bucket");
    let subjects = Subjects::new("tickets");
    let work = WorkStates::open(&bus, subjects.clone())
        .await
        .expect("work");
    let handler = FeedbackHandler::new(kb.clone(), decisions.clone(), subjects.clone())
        .with_work(work.clone());
    Fixture {
        kb,
        handler,
        decisions,
        subjects,
        work,
        _dir: dir,
    }
}

/// A decided ticket whose parse gave it this problem type from this source, stored as the router
/// stores it.
async fn decided(f: &Fixture, id: &str, problem_type: &str, source: ProblemTypeSource) {
    let ticket = Ticket {
        id: id.into(),
        text: format!("the printer in room {id} jams on every page"),
        received_at_ms: 1_000,
        parsed: Some(Parsed {
            parser: "local".into(),
            problem_type: problem_type.into(),
            problem_type_source: source.into(),
            ..Parsed::default()
        }),
        decision: Some(Decision {
            department: "network_ops".into(),
            ..Decision::default()
        }),
        ..Ticket::default()
    };
    f.decisions
        .put(id, ticket.encode_to_vec().into())
        .await
        .expect("store decision");
}

async fn learn(f: &Fixture, subject: String, payload: Vec<u8>) {
    f.handler
        .handle(&Inbound {
            subject,
            payload: payload.into(),
            attempt: 1,
        })
        .await
        .expect("learnt");
}

async fn record(f: &Fixture, id: &str) -> KnowledgeRecord {
    let key = format!("ticket:{id}");
    f.kb.records()
        .await
        .expect("records")
        .into_iter()
        .map(|r| r.record)
        .find(|r| r.id == key)
        .unwrap_or_else(|| panic!("no record {key}"))
}

#[tokio::test]
async fn corrections_and_resolutions_write_the_problem_type_back() {
    let f = fixture().await;
    decided(&f, "t-1", "printer jam", ProblemTypeSource::Parser).await;
    decided(&f, "t-2", "paper feed", ProblemTypeSource::Neighbours).await;
    let correction = Corrected {
        ticket_id: "t-1".into(),
        to_department: "device_support".into(),
        reason: CorrectionReason::WrongDepartment.into(),
        ..Corrected::default()
    };
    learn(&f, f.subjects.corrected(), correction.encode_to_vec()).await;
    let resolution = Resolved {
        ticket_id: "t-2".into(),
        department: "device_support".into(),
        resolved_at_ms: 61_000,
        ..Resolved::default()
    };
    learn(&f, f.subjects.resolved(), resolution.encode_to_vec()).await;

    let corrected = record(&f, "t-1").await;
    assert_eq!(
        (corrected.source.as_str(), corrected.department.as_str()),
        ("correction", "device_support")
    );
    assert_eq!(corrected.problem_type, "printer jam");
    let resolved = record(&f, "t-2").await;
    assert_eq!(resolved.source, "resolution");
    assert_eq!(resolved.problem_type, "paper feed");
    // The store hands the types on to the next similar ticket.
    let mut types: Vec<String> =
        f.kb.similar("printer jams", 2)
            .await
            .expect("similar")
            .into_iter()
            .map(|s| s.problem_type)
            .collect();
    types.sort();
    assert_eq!(types, ["paper feed", "printer jam"]);
}

#[tokio::test]
async fn a_keyword_guess_is_not_taught_as_a_problem_type() {
    let f = fixture().await;
    decided(&f, "t-3", "printer", ProblemTypeSource::Keyword).await;
    let resolution = Resolved {
        ticket_id: "t-3".into(),
        resolved_at_ms: 61_000,
        ..Resolved::default()
    };
    learn(&f, f.subjects.resolved(), resolution.encode_to_vec()).await;
    let resolved = record(&f, "t-3").await;
    assert_eq!(resolved.department, "network_ops", "the decided department");
    assert_eq!(resolved.problem_type, "");
}

#[tokio::test]
async fn a_feedback_subject_other_than_corrected_or_resolved_is_refused_for_good() {
    let f = fixture().await;
    decided(&f, "t-4", "printer jam", ProblemTypeSource::Parser).await;
    let subject = format!("{}.feedback.reopened", f.subjects.prefix());
    // A payload that decodes as a resolution, so only the subject can tell it apart.
    let resolution = Resolved {
        ticket_id: "t-4".into(),
        resolved_at_ms: 61_000,
        ..Resolved::default()
    };
    let result = f
        .handler
        .handle(&Inbound {
            subject: subject.clone(),
            payload: resolution.encode_to_vec().into(),
            attempt: 1,
        })
        .await;
    let Err(err @ HandlerError::Permanent(_)) = result else {
        panic!("{subject} must be a permanent error, got {result:?}");
    };
    let chain = switchboard_runtime::error_chain(&err);
    assert!(chain.contains(&subject), "{chain}");
    let learnt = f.kb.records().await.expect("records");
    assert!(
        learnt.iter().all(|r| r.record.id != "ticket:t-4"),
        "nothing is learnt from it"
    );
}

async fn state_of(f: &Fixture, id: &str) -> (TicketState, String, String, u64) {
    let s = f.work.get(id).await.expect("get").expect("a work state");
    (
        s.state(),
        s.department.clone(),
        s.assignee.clone(),
        s.revision,
    )
}

fn correction(id: &str, to: &str, at_ms: i64) -> Vec<u8> {
    Corrected {
        ticket_id: id.into(),
        to_department: to.into(),
        reason: CorrectionReason::WrongDepartment.into(),
        agent: "agent-3".into(),
        note: "billing owns refunds".into(),
        at_ms,
        ..Corrected::default()
    }
    .encode_to_vec()
}

/// A correction keeps (or makes) a ticket routed, with the new department; a resolution resolves it;
/// a correction after the resolution teaches but leaves the resolution; a redelivered event moves
/// nothing twice.
#[tokio::test]
async fn corrections_and_resolutions_move_the_work_state() {
    let f = fixture().await;
    for (id, decided_as) in [("t-6", TicketState::Routed), ("t-7", TicketState::InReview)] {
        decided(&f, id, "printer jam", ProblemTypeSource::Parser).await;
        let routed = Change::new(decided_as, "router", "router").department("network_ops");
        f.work.apply(id, routed).await.expect("decided");
        learn(&f, f.subjects.corrected(), correction(id, "billing", 5)).await;
        assert_eq!(
            state_of(&f, id).await,
            (TicketState::Routed, "billing".into(), String::new(), 2),
            "{id} after the correction"
        );
        let moved = f.work.get(id).await.expect("get").expect("state").history[1].clone();
        assert_eq!(
            (moved.from(), moved.to()),
            (decided_as, TicketState::Routed)
        );
        assert_eq!(moved.actor, "agent-3");
        assert_eq!(
            moved.reason,
            "CORRECTION_REASON_WRONG_DEPARTMENT: billing owns refunds"
        );
        // The same correction again (a redelivery) moves nothing.
        learn(&f, f.subjects.corrected(), correction(id, "billing", 5)).await;
        assert_eq!(state_of(&f, id).await.3, 2);
    }

    // Assigned, then corrected: back in a department's queue, no one's.
    let assign = Change::new(TicketState::Assigned, "lead", "assign.1").assignee("agent-9");
    f.work.apply("t-6", assign).await.expect("assigned");
    learn(
        &f,
        f.subjects.corrected(),
        correction("t-6", "hr_services", 9),
    )
    .await;
    assert_eq!(
        state_of(&f, "t-6").await,
        (TicketState::Routed, "hr_services".into(), String::new(), 4)
    );

    let resolution = Resolved {
        ticket_id: "t-6".into(),
        department: "hr_services".into(),
        agent: "agent-4".into(),
        resolved_at_ms: 61_000,
    };
    learn(&f, f.subjects.resolved(), resolution.encode_to_vec()).await;
    let resolved = (
        TicketState::Resolved,
        "hr_services".to_owned(),
        String::new(),
        5,
    );
    assert_eq!(state_of(&f, "t-6").await, resolved);
    learn(&f, f.subjects.resolved(), resolution.encode_to_vec()).await;
    assert_eq!(
        state_of(&f, "t-6").await,
        resolved,
        "a redelivery moves nothing"
    );

    // Corrected after its resolution: learnt from, but still resolved.
    learn(&f, f.subjects.corrected(), correction("t-6", "billing", 70)).await;
    assert_eq!(state_of(&f, "t-6").await, resolved);
    assert_eq!(record(&f, "t-6").await.department, "billing");
}
