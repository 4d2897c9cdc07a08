//! The knowledge base's callers end to end on a temporary directory: the pipeline stage and the gRPC
//! service. What the store itself does is in the conformance suite.

#[path = "support/history.rs"]
mod history;

use history::{HISTORY, history};
use switchboard_proto::knowledge_base_client::KnowledgeBaseClient;
use switchboard_proto::{KnowledgeRecord, SimilarRequest, Stage, Ticket};
use switchboard_retriever::{KnowledgeBase, KnowledgeBaseService, RetrieverStage};
use switchboard_runtime::TicketStage;

async fn seeded(dir: &std::path::Path) -> KnowledgeBase {
    let kb = KnowledgeBase::open(dir, None, 0.0).expect("open");
    assert_eq!(kb.upsert(history()).await.expect("upsert"), HISTORY.len());
    kb
}

#[tokio::test]
async fn the_stage_attaches_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stage = RetrieverStage {
        kb: seeded(dir.path()).await,
        limit: 2,
    };
    let mut ticket = Ticket {
        id: "t-1".into(),
        text: "my package went to the wrong address".into(),
        ..Default::default()
    };
    assert_eq!(
        stage.process(&mut ticket).await.expect("process"),
        Stage::Matched
    );
    let matches = ticket.matches.expect("matches");
    assert_eq!(matches.retriever, "bm25");
    assert_eq!(matches.similar.len(), 2);
    assert_eq!(matches.similar[0].department, "delivery");
}

#[tokio::test]
async fn the_grpc_service_imports_a_stream_and_searches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KnowledgeBaseService::new(kb.clone()).into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut client = KnowledgeBaseClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    // More than one import batch.
    let many: Vec<KnowledgeRecord> = (0..600)
        .map(|i| KnowledgeRecord {
            id: format!("bulk-{i}"),
            text: format!("printer {i} jammed on page {}", i % 7),
            department: "facilities".into(),
            ..Default::default()
        })
        .chain(history())
        .collect();
    let reply = client
        .import(futures::stream::iter(many))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(reply.imported, 600 + HISTORY.len() as u64);
    assert_eq!(kb.count().await.expect("count"), 600 + HISTORY.len());

    let similar = client
        .similar(SimilarRequest {
            text: "printer jammed".into(),
            limit: 0,
        })
        .await
        .expect("similar")
        .into_inner()
        .similar;
    assert_eq!(similar.len(), 5, "limit 0 means the default");
    let capped = client
        .similar(SimilarRequest {
            text: "printer jammed".into(),
            limit: 10_000,
        })
        .await
        .expect("similar")
        .into_inner()
        .similar;
    assert_eq!(capped.len(), 100, "limit is capped");

    let bad = vec![KnowledgeRecord {
        id: "no-dept".into(),
        text: "something".into(),
        ..Default::default()
    }];
    let status = client
        .import(futures::stream::iter(bad))
        .await
        .expect_err("invalid record");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("department"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("no-dept"), "{}", status.message());
    server.abort();
}
