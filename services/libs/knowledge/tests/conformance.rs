//! The vector-store conformance suite: every test is written once against `KnowledgeBase` and runs on
//! each backend: qdrant-edge always (module `edge`), and a Qdrant server (module `server`) when
//! `SWITCHBOARD_TEST_QDRANT_URL` names one, in a collection of its own that is deleted afterwards.
//! Without a server the `server` tests say they were skipped and pass.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_embed::Embedder;
use switchboard_knowledge::{KnowledgeBase, KnowledgeError, StoredRecord};
use switchboard_proto::KnowledgeRecord;

use support::backends::{Backend, Schema};
use support::history::{HISTORY, history};
use support::word_hash::WordHash;

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

/// Instantiates each listed test for both backends.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod edge {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::support::backends::Edge::new()).await;
                }
            )*
        }
        mod server {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(server) =
                        super::support::backends::Server::from_env(stringify!($test))
                    {
                        super::$test(&server).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    upserts_count_and_replace_by_id,
    finds_the_department_of_paraphrases_in_english_and_chinese,
    chinese_is_matched_by_words,
    results_carry_the_payload_with_defaults_applied,
    rare_words_outweigh_common_ones,
    queries_without_words_or_overlap_find_nothing,
    hybrid_search_finds_the_record_both_retrievals_agree_on,
    a_dense_match_counts_only_above_the_threshold,
    departments_are_distinct_and_sorted,
    records_round_trip_with_payload_and_dense_vectors,
    time_fields_are_kept_exactly,
    invalid_records_are_rejected_by_id_and_field,
    a_missing_store_is_created_with_the_schema,
    another_layout_is_a_clear_error_naming_both,
    data_survives_closing_and_reopening,
    weights_change_in_place_and_persist,
    deleted_records_are_gone_and_others_stay,
    stored_records_are_read_back_by_id,
);

fn word_hash(dimension: usize) -> Option<Arc<dyn Embedder>> {
    Some(Arc::new(WordHash(dimension)))
}

fn record(id: &str, department: &str, text: &str) -> KnowledgeRecord {
    KnowledgeRecord {
        id: id.into(),
        text: text.into(),
        department: department.into(),
        ..KnowledgeRecord::default()
    }
}

/// The backend's store with the history in it, BM25 only.
async fn seeded(backend: &dyn Backend) -> KnowledgeBase {
    let kb = backend.open(None, 0.0).await.expect("open");
    assert_eq!(kb.upsert(history()).await.expect("upsert"), HISTORY.len());
    kb
}

async fn upserts_count_and_replace_by_id(backend: &dyn Backend) {
    let kb = backend.open(None, 0.0).await.expect("open");
    assert_eq!(kb.count().await.expect("count"), 0);
    assert_eq!(kb.upsert(Vec::new()).await.expect("empty batch"), 0);
    assert_eq!(kb.generation(), 0, "an empty batch writes nothing");

    assert_eq!(kb.upsert(history()).await.expect("upsert"), HISTORY.len());
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());
    assert_eq!(kb.generation(), 1);
    kb.upsert(history()).await.expect("re-import");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());
    assert_eq!(kb.generation(), 2);

    let corrected = KnowledgeRecord {
        source: "correction".into(),
        weight: 2.0,
        ..record(
            "h-0",
            "subscriptions",
            "I was charged twice for my monthly subscription",
        )
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

async fn finds_the_department_of_paraphrases_in_english_and_chinese(backend: &dyn Backend) {
    let kb = seeded(backend).await;
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

async fn chinese_is_matched_by_words(backend: &dyn Backend) {
    let kb = seeded(backend).await;
    let parcel = kb.similar("快递", 5).await.expect("similar");
    assert!(!parcel.is_empty());
    assert!(
        parcel
            .iter()
            .all(|s| s.text.contains("快递") && s.department == "delivery"),
        "{parcel:#?}"
    );
    // Words, not characters: the same two characters the other way round are no word of any ticket,
    // though a store matching characters would find both parcel tickets.
    let reversed = kb.similar("递快", 5).await.expect("similar");
    assert!(reversed.is_empty(), "{reversed:#?}");
}

async fn results_carry_the_payload_with_defaults_applied(backend: &dyn Backend) {
    let kb = seeded(backend).await;
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
    let first = kb
        .similar("charged twice monthly subscription", 1)
        .await
        .expect("similar");
    assert_eq!(
        (first[0].id.as_str(), first[0].resolution_minutes),
        ("h-0", Some(30))
    );
}

async fn rare_words_outweigh_common_ones(backend: &dyn Backend) {
    // Same length and term frequency everywhere, so only the store's IDF can separate the scores.
    let kb = backend.open(None, 0.0).await.expect("open");
    let mut records: Vec<KnowledgeRecord> = (0..10)
        .map(|i| {
            record(
                &format!("card-{i}"),
                "cards",
                &format!("card declined shop{i}"),
            )
        })
        .collect();
    records.push(record("zeppelin", "travel", "zeppelin flight booking"));
    kb.upsert(records).await.expect("upsert");
    let similar = kb.similar("card zeppelin", 2).await.expect("similar");
    assert_eq!(similar[0].id, "zeppelin", "{similar:#?}");
    assert!(similar[0].score > 2.0 * similar[1].score, "{similar:#?}");
}

async fn queries_without_words_or_overlap_find_nothing(backend: &dyn Backend) {
    let kb = seeded(backend).await;
    for query in ["", "the of and !!!", "的了吗", "zebra xylophone"] {
        let found = kb.similar(query, 5).await.expect("similar");
        assert!(found.is_empty(), "{query:?}: {found:#?}");
    }
    assert!(kb.similar("refund", 0).await.expect("similar").is_empty());
}

async fn hybrid_search_finds_the_record_both_retrievals_agree_on(backend: &dyn Backend) {
    let kb = backend.open(word_hash(64), 0.2).await.expect("open");
    kb.upsert(history()).await.expect("upsert");
    let query = kb
        .query("the courier delivered to the wrong address")
        .await
        .expect("embed");
    assert_eq!(query.dense.as_ref().map(Vec::len), Some(64));
    let found = kb.similar_to(&query, 3).await.expect("similar");
    assert_eq!(
        found.first().map(|s| s.id.as_str()),
        Some("h-5"),
        "{found:#?}"
    );
    assert!(
        found.windows(2).all(|w| w[0].score >= w[1].score),
        "{found:#?}"
    );
}

async fn a_dense_match_counts_only_above_the_threshold(backend: &dyn Backend) {
    // Stop words only: BM25 has nothing to search with, so whatever is found, the dense retrieval found.
    let query = "the the my";
    {
        let kb = backend.open(word_hash(64), 0.2).await.expect("open");
        kb.upsert(history()).await.expect("upsert");
        kb.flush().await;
        let found = kb.similar(query, 3).await.expect("similar");
        assert!(!found.is_empty(), "dense retrieval found nothing");
    }
    let strict = backend.open(word_hash(64), 0.99).await.expect("reopen");
    let found = strict.similar(query, 3).await.expect("similar");
    assert!(found.is_empty(), "under the threshold: {found:#?}");
}

async fn departments_are_distinct_and_sorted(backend: &dyn Backend) {
    let kb = backend.open(None, 0.0).await.expect("open");
    assert!(kb.departments().await.expect("facet").is_empty());
    kb.upsert(vec![
        record("1", "network_ops", "router down"),
        record("2", " billing ", "charged twice"),
        record("3", "network_ops", "wifi slow"),
        record("4", "账务", "重复扣款"),
    ])
    .await
    .expect("upsert");
    assert_eq!(
        kb.departments().await.expect("facet"),
        ["billing", "network_ops", "账务"]
    );
}

async fn records_round_trip_with_payload_and_dense_vectors(backend: &dyn Backend) {
    let embedder = WordHash(16);
    let kb = backend
        .open(Some(Arc::new(WordHash(16))), 0.3)
        .await
        .expect("open");
    let written = vec![
        KnowledgeRecord {
            id: "r-1".into(),
            text: "refund my card".into(),
            department: " billing ".into(),
            created_at_ms: 1_700_000_000_123,
            resolution_minutes: Some(45),
            source: "correction".into(),
            weight: 2.5,
            problem_type: "duplicate charge".into(),
        },
        record("r-2", "delivery", "parcel lost 包裹丢了"),
    ];
    kb.upsert(written.clone()).await.expect("upsert");
    let stored = kb.records().await.expect("records");
    assert_eq!(
        stored.iter().map(|s| &s.record.id).collect::<Vec<_>>(),
        kb.records()
            .await
            .expect("records")
            .iter()
            .map(|s| &s.record.id)
            .collect::<Vec<_>>(),
        "the same order on every call"
    );
    let by_id: HashMap<&str, _> = stored.iter().map(|s| (s.record.id.as_str(), s)).collect();
    assert_eq!(by_id.len(), 2);
    assert_eq!(
        by_id["r-1"].record,
        KnowledgeRecord {
            department: "billing".into(),
            ..written[0].clone()
        }
    );
    assert_eq!(
        by_id["r-2"].record,
        KnowledgeRecord {
            source: "history".into(),
            weight: 1.0,
            ..written[1].clone()
        }
    );
    for w in &written {
        let expected = embedder
            .embed(vec![w.text.clone()])
            .await
            .expect("embed")
            .remove(0);
        let dense = by_id[w.id.as_str()].dense.as_ref().expect("dense vector");
        assert_eq!(dense.len(), 16);
        assert!(
            dense
                .iter()
                .zip(&expected)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "{dense:?} != {expected:?}"
        );
    }
}

async fn time_fields_are_kept_exactly(backend: &dyn Backend) {
    let kb = backend.open(None, 0.0).await.expect("open");
    // Past 2^53 ms, where a float would round; before 1970; and unset.
    let times = [
        (9_007_199_254_740_993, Some(1)),
        (-86_400_000, None),
        (0, Some(0)),
    ];
    let records = times
        .iter()
        .enumerate()
        .map(|(i, (created, resolution))| KnowledgeRecord {
            created_at_ms: *created,
            resolution_minutes: *resolution,
            ..record(&format!("t-{i}"), "ops", &format!("server{i} outage"))
        })
        .collect();
    kb.upsert(records).await.expect("upsert");
    for (i, (created, resolution)) in times.iter().enumerate() {
        let found = kb.similar(&format!("server{i}"), 1).await.expect("similar");
        assert_eq!(found[0].id, format!("t-{i}"));
        assert_eq!(
            (found[0].created_at_ms, found[0].resolution_minutes),
            (*created, *resolution)
        );
    }
    let stored = kb.records().await.expect("records");
    assert!(stored.iter().all(|s| s.dense.is_none()), "BM25 only");
    let mut kept: Vec<(i64, Option<i64>)> = stored
        .iter()
        .map(|s| (s.record.created_at_ms, s.record.resolution_minutes))
        .collect();
    kept.sort();
    let mut expected = times.to_vec();
    expected.sort();
    assert_eq!(kept, expected);
}

async fn invalid_records_are_rejected_by_id_and_field(backend: &dyn Backend) {
    let kb = backend.open(None, 0.0).await.expect("open");
    let mut records = history();
    records[3].text = "   ".into();
    let err = kb.upsert(records).await.expect_err("empty text");
    assert!(
        matches!(&err, KnowledgeError::InvalidRecord { id, field: "text", .. } if id == "h-3"),
        "{err:?}"
    );
    // The batch is all or nothing.
    assert_eq!(kb.count().await.expect("count"), 0);
    let err = kb
        .upsert(vec![record("x", "", "hello")])
        .await
        .expect_err("empty department");
    assert!(err.to_string().contains("department"), "{err}");
    assert!(err.to_string().contains("\"x\""), "{err}");
}

async fn a_missing_store_is_created_with_the_schema(backend: &dyn Backend) {
    {
        let kb = backend.open(word_hash(8), 0.3).await.expect("create");
        assert_eq!(kb.count().await.expect("count"), 0);
        assert!(kb.departments().await.expect("facet").is_empty());
        assert!(kb.records().await.expect("records").is_empty());
        kb.flush().await;
    }
    let expected = Schema {
        dense: [("dense".to_owned(), (8, "Cosine".to_owned()))].into(),
        sparse: [("bm25".to_owned(), true)].into(),
        indexes: [
            ("created_at_ms".to_owned(), "Integer".to_owned()),
            ("department".to_owned(), "Keyword".to_owned()),
        ]
        .into(),
    };
    assert_eq!(backend.schema().await, expected);
}

async fn another_layout_is_a_clear_error_naming_both(backend: &dyn Backend) {
    {
        let kb = backend.open(word_hash(8), 0.0).await.expect("open");
        kb.upsert(vec![record("1", "billing", "charged twice")])
            .await
            .expect("upsert");
        kb.flush().await;
    }
    let err = backend
        .open(word_hash(16), 0.0)
        .await
        .expect_err("another dimension");
    assert!(matches!(err, KnowledgeError::Layout { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("holds 8-dimension") && message.contains("needs 16-dimension"),
        "{message}"
    );
    let err = backend
        .open(None, 0.0)
        .await
        .expect_err("without dense vectors");
    assert!(err.to_string().contains("needs no dense vectors"), "{err}");
    // The layout it was written with still opens, with its record.
    let kb = backend.open(word_hash(8), 0.0).await.expect("reopen");
    assert_eq!(kb.count().await.expect("count"), 1);
}

async fn data_survives_closing_and_reopening(backend: &dyn Backend) {
    let before = {
        let kb = seeded(backend).await;
        kb.flush().await;
        assert_eq!(kb.count().await.expect("count"), HISTORY.len());
        kb.similar("包裹 快递 没收到", 5).await.expect("similar")
    };
    assert!(!before.is_empty());
    let kb = backend.open(None, 0.0).await.expect("reopen");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len());
    assert_eq!(
        kb.departments().await.expect("facet"),
        ["account", "billing", "delivery"]
    );
    let after = kb.similar("包裹 快递 没收到", 5).await.expect("similar");
    assert_eq!(before, after);
    // Still writable after a reopen.
    kb.upsert(vec![record("late", "billing", "refund for a late parcel")])
        .await
        .expect("upsert after reopen");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len() + 1);
}

async fn weights_change_in_place_and_persist(backend: &dyn Backend) {
    let kb = seeded(backend).await;
    let before = kb.records().await.expect("records");
    let generation = kb.generation();
    let h0 = before
        .iter()
        .find(|r| r.record.id == "h-0")
        .expect("h-0")
        .clone();
    let gone = StoredRecord {
        record: record("no-such-record", "billing", "never stored"),
        dense: None,
    };
    assert_eq!(
        kb.set_weights(vec![(h0.clone(), 0.25), (gone, 0.5)])
            .await
            .expect("set weights"),
        2
    );
    assert!(kb.generation() > generation, "a weight change is a write");
    kb.flush().await;
    let after = kb.records().await.expect("records");
    assert_eq!(after.len(), before.len(), "a missing record is not created");
    for (b, a) in before.iter().zip(&after) {
        let expected = if a.record.id == "h-0" {
            0.25
        } else {
            b.record.weight
        };
        assert_eq!(a.record.weight, expected, "{}", a.record.id);
        // Only the weight moves: text, department, source and times stay.
        assert_eq!(
            KnowledgeRecord {
                weight: 0.0,
                ..a.record.clone()
            },
            KnowledgeRecord {
                weight: 0.0,
                ..b.record.clone()
            }
        );
    }
    let found = kb.similar(&h0.record.text, 1).await.expect("similar");
    assert_eq!((found[0].id.as_str(), found[0].weight), ("h-0", 0.25));
    let err = kb
        .set_weights(vec![(h0, 0.0)])
        .await
        .expect_err("a zero weight reads as unset");
    assert!(err.to_string().contains("h-0"), "{err}");
}

/// Records named by id come back as stored, with their dense vectors, in the order named; an id not
/// stored is skipped.
async fn stored_records_are_read_back_by_id(backend: &dyn Backend) {
    let kb = backend
        .open(Some(Arc::new(WordHash(16))), 0.3)
        .await
        .expect("open");
    kb.upsert(vec![
        record("r-1", "billing", "refund my card"),
        record("r-2", "delivery", "parcel lost 包裹丢了"),
        record("r-3", "account", "cannot log in"),
    ])
    .await
    .expect("upsert");
    let all: HashMap<String, _> = kb
        .records()
        .await
        .expect("records")
        .into_iter()
        .map(|s| (s.record.id.clone(), s))
        .collect();
    let ids = ["r-3", "missing", "r-1"].map(String::from);
    let read = kb.stored(&ids).await.expect("stored");
    assert_eq!(
        read.iter()
            .map(|s| s.record.id.as_str())
            .collect::<Vec<_>>(),
        ["r-3", "r-1"]
    );
    for s in &read {
        let whole = &all[&s.record.id];
        assert_eq!(s.record, whole.record);
        assert_eq!(s.dense, whole.dense);
        assert_eq!(s.dense.as_ref().map(Vec::len), Some(16));
    }
    assert!(kb.stored(&[]).await.expect("none asked").is_empty());
}

async fn deleted_records_are_gone_and_others_stay(backend: &dyn Backend) {
    let kb = seeded(backend).await;
    let before = kb.generation();
    let ids: Vec<String> = ["h-0", "h-1", "not-stored"].map(String::from).to_vec();
    kb.delete(&ids).await.expect("delete");
    assert_eq!(kb.count().await.expect("count"), HISTORY.len() - 2);
    assert!(
        kb.generation() > before,
        "a delete is a change the classifier must see"
    );
    let left: Vec<String> = kb
        .records()
        .await
        .expect("records")
        .into_iter()
        .map(|s| s.record.id)
        .collect();
    assert!(
        !left.iter().any(|id| id == "h-0" || id == "h-1"),
        "{left:?}"
    );
    kb.delete(&[]).await.expect("nothing to delete");
}
