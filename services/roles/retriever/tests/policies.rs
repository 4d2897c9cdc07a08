//! The retriever attaches the policy passages most relevant to a ticket, with their document, position
//! and departments.

use std::sync::Arc;

use switchboard_knowledge::KnowledgeBase;
use switchboard_knowledge::documents::import_document;
use switchboard_policy::PolicyConfig;
use switchboard_proto::{KnowledgeRecord, Ticket};
use switchboard_retriever::{IncidentWatch, RetrieverStage};
use switchboard_runtime::TicketStage;

#[tokio::test]
async fn relevant_passages_travel_with_the_ticket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tickets = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    tickets
        .upsert(vec![KnowledgeRecord {
            id: "h-1".into(),
            text: "How do I withdraw my housing fund".into(),
            department: "housing_fund".into(),
            ..KnowledgeRecord::default()
        }])
        .await
        .expect("upsert");
    let policies = KnowledgeBase::open(&dir.path().join("policies"), None, 0.0).expect("open");
    let doc = dir.path().join("fund.md");
    std::fs::write(
        &doc,
        "Departments: housing_fund\n\n# Withdrawals\n\nA withdrawal for a purchase needs the contract.\n\n\
         # Parking\n\nVisitors park in lot B.\n",
    )
    .expect("write");
    import_document(&policies, &doc, &[]).await.expect("import");
    let stage = RetrieverStage {
        kb: tickets.clone(),
        limit: 5,
        incidents: Arc::new(IncidentWatch::new(&PolicyConfig::default())),
        duties: Arc::default(),
        policies: Some(policies.clone()),
    };
    let mut ticket = Ticket {
        id: "t".into(),
        text: "what does a housing fund withdrawal for a purchase need".into(),
        ..Ticket::default()
    };
    stage.process(&mut ticket).await.expect("process");
    let passages = &ticket.matches.as_ref().expect("matches").policies;
    assert!(!passages.is_empty());
    let top = &passages[0];
    assert_eq!(top.document, doc.to_string_lossy());
    assert_eq!(top.position, "§ Withdrawals, passage 1");
    assert_eq!(top.departments, ["housing_fund"]);
    assert!(top.text.contains("contract"), "{}", top.text);
    drop(stage);
    drop(policies);
    drop(tickets);
}
