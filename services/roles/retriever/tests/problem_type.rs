//! The retriever stage gives a locally parsed ticket the problem type of its nearest neighbours, names
//! them, keeps a parser's own problem type, and leaves the keyword guess when no neighbour has a type.

use std::sync::Arc;

use switchboard_knowledge::KnowledgeBase;
use switchboard_policy::PolicyConfig;
use switchboard_proto::{KnowledgeRecord, Parsed, ProblemTypeSource, Ticket};
use switchboard_retriever::{IncidentWatch, RetrieverStage};
use switchboard_runtime::TicketStage;

/// (id, department, problem type, text); an empty type is a record imported without one.
const HISTORY: &[(&str, &str, &str, &str)] = &[
    (
        "a-1",
        "account",
        "password reset",
        "I cannot log in, the password reset email never arrives",
    ),
    (
        "a-2",
        "account",
        "password reset",
        "The password reset link in the email has expired",
    ),
    (
        "a-3",
        "account",
        "",
        "My account was locked after too many login attempts",
    ),
    (
        "d-1",
        "delivery",
        "lost parcel",
        "My parcel has not arrived and the tracking shows no updates",
    ),
    ("z-1", "facilities", "", "登录大厅的空调坏了"),
    ("z-2", "account", "账号登录", "手机验证码收不到，没法登录"),
    (
        "p-1",
        "facilities",
        "",
        "The printer on floor 3 jams on every page",
    ),
];

async fn stage(dir: &std::path::Path) -> RetrieverStage {
    let kb = KnowledgeBase::open(dir, None, 0.0).expect("open");
    let records = HISTORY
        .iter()
        .map(|(id, department, problem_type, text)| KnowledgeRecord {
            id: (*id).into(),
            text: (*text).into(),
            department: (*department).into(),
            problem_type: (*problem_type).into(),
            ..KnowledgeRecord::default()
        })
        .collect();
    kb.upsert(records).await.expect("upsert");
    RetrieverStage {
        kb,
        limit: 10,
        incidents: Arc::new(IncidentWatch::new(&PolicyConfig::default())),
        duties: Arc::default(),
        policies: None,
    }
}

/// A ticket as the local parser leaves it: its top keyword as a guess at the problem type.
fn locally_parsed(text: &str, keyword: &str) -> Ticket {
    Ticket {
        id: "t-1".into(),
        text: text.into(),
        parsed: Some(Parsed {
            parser: "local".into(),
            problem_type: keyword.into(),
            problem_type_source: ProblemTypeSource::Keyword.into(),
            ..Parsed::default()
        }),
        ..Ticket::default()
    }
}

#[tokio::test]
async fn a_local_parse_takes_the_problem_type_of_its_nearest_neighbours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stage = stage(dir.path()).await;
    let mut ticket = locally_parsed("the password reset email never arrives", "password");
    stage.process(&mut ticket).await.expect("process");
    let parsed = ticket.parsed.expect("parsed");
    assert_eq!(parsed.problem_type, "password reset");
    assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Neighbours);
    assert_eq!(
        parsed.parser, "local",
        "the parse is still the local parser's"
    );
    // The source names the neighbours, nearest first, so a person can open them and check.
    let similar = ticket.matches.expect("matches").similar;
    let nearest_typed = similar
        .iter()
        .find(|s| !s.problem_type.is_empty())
        .expect("a typed neighbour");
    assert_eq!(nearest_typed.id, "a-1", "{similar:#?}");
    assert_eq!(parsed.problem_type_neighbours, ["a-1", "a-2"]);

    // Chinese too; z-1 shares 登录 but has no type, so it does not vote.
    let mut ticket = locally_parsed("登录的时候验证码收不到", "登录");
    stage.process(&mut ticket).await.expect("process");
    let parsed = ticket.parsed.expect("parsed");
    assert_eq!(
        (parsed.problem_type.as_str(), parsed.problem_type_neighbours),
        ("账号登录", vec!["z-2".to_owned()])
    );
}

#[tokio::test]
async fn a_parsers_own_problem_type_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stage = stage(dir.path()).await;
    let llm = Parsed {
        parser: "llm:deepseek/deepseek-v4-flash".into(),
        problem_type: "email delivery".into(),
        problem_type_source: ProblemTypeSource::Parser.into(),
        ..Parsed::default()
    };
    let mut ticket = Ticket {
        parsed: Some(llm.clone()),
        ..locally_parsed("the password reset email never arrives", "password")
    };
    stage.process(&mut ticket).await.expect("process");
    assert!(!ticket.matches.expect("matches").similar.is_empty());
    assert_eq!(ticket.parsed, Some(llm));
}

#[tokio::test]
async fn without_a_typed_neighbour_the_keyword_guess_stays_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stage = stage(dir.path()).await;
    // Similar tickets, none with a type.
    let mut ticket = locally_parsed("printer jams again on floor 3", "printer");
    stage.process(&mut ticket).await.expect("process");
    let similar = ticket.matches.expect("matches").similar;
    assert_eq!(similar[0].id, "p-1", "{similar:#?}");
    let parsed = ticket.parsed.expect("parsed");
    assert_eq!(parsed.problem_type, "printer");
    assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Keyword);
    assert!(parsed.problem_type_neighbours.is_empty());

    // Nothing similar at all.
    let mut ticket = locally_parsed("zebra xylophone", "zebra");
    stage.process(&mut ticket).await.expect("process");
    assert!(ticket.matches.expect("matches").similar.is_empty());
    let parsed = ticket.parsed.expect("parsed");
    assert_eq!(
        (parsed.problem_type.as_str(), parsed.problem_type_source()),
        ("zebra", ProblemTypeSource::Keyword)
    );
}
