//! The knowledge base end to end on a temporary directory: retrieval in English and Chinese, persistence,
//! overwrite by id, the pipeline stage and the gRPC service.

use std::collections::HashMap;

use switchboard_proto::knowledge_base_client::KnowledgeBaseClient;
use switchboard_proto::{KnowledgeRecord, SimilarRequest, Stage, Ticket};
use switchboard_retriever::{KnowledgeBase, KnowledgeBaseService, RetrieverError, RetrieverStage};
use switchboard_runtime::TicketStage;

const HISTORY: &[(&str, &str)] = &[
    ("billing", "I was charged twice for my monthly subscription"),
    (
        "billing",
        "Please refund the duplicate payment on my credit card",
    ),
    (
        "billing",
        "The invoice amount is wrong, I was billed for a plan I cancelled",
    ),
    (
        "billing",
        "Why does my bank statement show an extra charge from you",
    ),
    (
        "delivery",
        "My parcel has not arrived and the tracking number shows no updates",
    ),
    (
        "delivery",
        "The courier delivered the package to the wrong address",
    ),
    (
        "delivery",
        "Order shipped a week ago but delivery is still pending",
    ),
    (
        "delivery",
        "The box arrived damaged and the items inside are broken",
    ),
    (
        "account",
        "I cannot log in, the password reset email never arrives",
    ),
    (
        "account",
        "My account was locked after too many login attempts",
    ),
    ("account", "How do I change the email address on my profile"),
    (
        "account",
        "The two-factor code is not accepted when I sign in",
    ),
    ("billing", "我的会员费被重复扣款了两次"),
    ("billing", "请把多扣的钱退款到我的银行卡"),
    ("billing", "发票金额不对，已经取消的套餐还在收费"),
    ("billing", "银行账单上多了一笔你们的扣费"),
    ("delivery", "我的快递一直没有送到，物流信息也不更新"),
    ("delivery", "快递员把包裹送到了错误的地址"),
    ("delivery", "订单一周前就发货了，到现在还没收到"),
    ("delivery", "收到的包裹破损了，里面的东西坏了"),
    ("account", "我无法登录，密码重置邮件一直收不到"),
    ("account", "登录失败次数太多，账号被锁定了"),
    ("account", "怎么修改个人资料里的手机号"),
    ("account", "登录时验证码一直提示错误"),
];

/// Paraphrases: mostly different words from any one history ticket, same topic.
const QUERIES: &[(&str, &str)] = &[
    ("refund the double charge on my card", "billing"),
    (
        "where is my package, the tracking has not moved",
        "delivery",
    ),
    ("forgot my password and cannot sign in", "account"),
    ("扣款重复了，申请退款", "billing"),
    ("包裹还没收到，物流停了", "delivery"),
    ("忘记密码了，登录不了账号", "account"),
];

fn history() -> Vec<KnowledgeRecord> {
    HISTORY
        .iter()
        .enumerate()
        .map(|(i, (department, text))| KnowledgeRecord {
            id: format!("h-{i}"),
            text: (*text).to_owned(),
            department: (*department).to_owned(),
            created_at_ms: 1_700_000_000_000 + i as i64,
            resolution_minutes: (i % 2 == 0).then_some(30 + i as i64),
            source: String::new(),
            weight: 0.0,
            problem_type: String::new(),
        })
        .collect()
}

async fn seeded(dir: &std::path::Path) -> KnowledgeBase {
    let kb = KnowledgeBase::open(dir, None, 0.0).expect("open");
    assert_eq!(kb.upsert(history()).await.expect("upsert"), HISTORY.len());
    kb
}

#[tokio::test]
async fn finds_the_department_of_paraphrases_in_english_and_chinese() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = seeded(dir.path()).await;
    for (query, expected) in QUERIES {
        let similar = kb.similar(query, 3).await.expect("similar");
        assert!(!similar.is_empty(), "{query}: nothing found");
        assert_eq!(similar[0].department, *expected, "{query}: {similar:#?}");
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for s in &similar {
            *votes.entry(s.department.as_str()).or_default() += 1;
        }
        let winner = votes.iter().max_by_key(|(_, n)| **n).map(|(d, _)| *d);
        assert_eq!(winner, Some(*expected), "{query}: {similar:#?}");
        assert!(
            similar.windows(2).all(|w| w[0].score >= w[1].score),
            "sorted by score"
        );
    }
}

#[tokio::test]
async fn results_carry_the_payload_with_defaults_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = seeded(dir.path()).await;
    let similar = kb
        .similar("courier wrong address", 1)
        .await
        .expect("similar");
    let top = &similar[0];
    assert_eq!(top.id, "h-5");
    assert_eq!(top.text, HISTORY[5].1);
    assert_eq!(top.department, "delivery");
    assert_eq!(top.created_at_ms, 1_700_000_000_005);
    assert_eq!(top.resolution_minutes, None);
    assert_eq!(top.source, "history");
    assert!((top.weight - 1.0).abs() < f32::EPSILON);
    assert!(top.score > 0.0);

    let even = kb
        .similar("two-factor code sign", 1)
        .await
        .expect("similar");
    assert_eq!(even[0].id, "h-11");
    let with_resolution = kb
        .similar("damaged box broken items", 1)
        .await
        .expect("similar");
    assert_eq!(with_resolution[0].id, "h-7");
    let first = kb
        .similar("charged twice monthly subscription", 1)
        .await
        .expect("similar");
    assert_eq!(first[0].resolution_minutes, Some(30));
}

#[tokio::test]
async fn rare_words_outweigh_common_ones() {
    // Same length and term frequency everywhere, so only the store's IDF can separate the scores.
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("open");
    let mut records: Vec<KnowledgeRecord> = (0..10)
        .map(|i| KnowledgeRecord {
            id: format!("card-{i}"),
            text: format!("card declined shop{i}"),
            department: "cards".into(),
            ..Default::default()
        })
        .collect();
    records.push(KnowledgeRecord {
        id: "zeppelin".into(),
        text: "zeppelin flight booking".into(),
        department: "travel".into(),
        ..Default::default()
    });
    kb.upsert(records).await.expect("upsert");
    let similar = kb.similar("card zeppelin", 2).await.expect("similar");
    assert_eq!(similar[0].id, "zeppelin", "{similar:#?}");
    assert!(similar[0].score > 2.0 * similar[1].score, "{similar:#?}");
}

#[tokio::test]
async fn queries_without_words_or_overlap_find_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = seeded(dir.path()).await;
    assert!(kb.similar("", 5).await.expect("similar").is_empty());
    assert!(
        kb.similar("the of and !!!", 5)
            .await
            .expect("similar")
            .is_empty()
    );
    assert!(kb.similar("的了吗", 5).await.expect("similar").is_empty());
    assert!(
        kb.similar("zebra xylophone", 5)
            .await
            .expect("similar")
            .is_empty()
    );
    assert!(kb.similar("refund", 0).await.expect("similar").is_empty());
}

#[tokio::test]
async fn data_survives_flush_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let kb = seeded(dir.path()).await;
        kb.flush().await;
        let results = kb.similar("包裹 快递 没收到", 5).await.expect("similar");
        assert_eq!(kb.count().await.expect("count"), HISTORY.len());
        results
    };
    let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("reopen");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());
    let after = kb.similar("包裹 快递 没收到", 5).await.expect("similar");
    assert_eq!(before, after);
    // Still writable after a reopen.
    kb.upsert(vec![KnowledgeRecord {
        id: "late".into(),
        text: "refund for a late parcel".into(),
        department: "billing".into(),
        ..Default::default()
    }])
    .await
    .expect("upsert after reopen");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len() + 1);
}

#[tokio::test]
async fn upserting_an_id_again_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = seeded(dir.path()).await;
    kb.upsert(history()).await.expect("re-import");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());

    let corrected = KnowledgeRecord {
        id: "h-0".into(),
        text: "I was charged twice for my monthly subscription".into(),
        department: "subscriptions".into(),
        source: "correction".into(),
        weight: 2.0,
        ..Default::default()
    };
    kb.upsert(vec![corrected]).await.expect("correct");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());
    let top = &kb
        .similar("charged twice subscription", 1)
        .await
        .expect("similar")[0];
    assert_eq!(
        (top.id.as_str(), top.department.as_str()),
        ("h-0", "subscriptions")
    );
    assert_eq!(top.source, "correction");
    assert!((top.weight - 2.0).abs() < f32::EPSILON);
}

#[tokio::test]
async fn invalid_records_are_rejected_by_id_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("open");
    let mut records = history();
    records[3].text = "   ".into();
    let err = kb.upsert(records).await.expect_err("empty text");
    assert!(
        matches!(&err, RetrieverError::InvalidRecord { id, field: "text", .. } if id == "h-3"),
        "{err:?}"
    );
    // The batch is all or nothing.
    assert_eq!(kb.count().await.expect("count"), 0);

    let err = kb
        .upsert(vec![KnowledgeRecord {
            id: "x".into(),
            text: "hello".into(),
            ..Default::default()
        }])
        .await
        .expect_err("empty department");
    assert!(err.to_string().contains("department"), "{err}");
    assert!(err.to_string().contains("\"x\""), "{err}");
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
