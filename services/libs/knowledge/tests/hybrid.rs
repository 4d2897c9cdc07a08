//! Dense retrieval beside BM25 with the real sentence model (when `scripts/fetch-model.sh` has fetched
//! it): paraphrases that share no word are found. The store's side of hybrid search, on every backend,
//! is in the conformance suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard_embed::{LocalModelOptions, OnnxEncoder};
use switchboard_knowledge::KnowledgeBase;
use switchboard_proto::KnowledgeRecord;

fn record(id: &str, department: &str, text: &str) -> KnowledgeRecord {
    KnowledgeRecord {
        id: id.into(),
        text: text.into(),
        department: department.into(),
        ..KnowledgeRecord::default()
    }
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../models/all-MiniLM-L6-v2")
}

#[tokio::test]
async fn the_sentence_model_finds_paraphrases_that_share_no_word() {
    if !model_dir().join("model.onnx").is_file() {
        eprintln!(
            "skipped: no model at {} (scripts/fetch-model.sh)",
            model_dir().display()
        );
        return;
    }
    let model = OnnxEncoder::load(&model_dir(), LocalModelOptions::default()).expect("load model");
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = KnowledgeBase::open(dir.path(), Some(Arc::new(model)), 0.3).expect("open");
    let history = [
        ("billing", "I was charged twice for my monthly subscription"),
        (
            "billing",
            "Please refund the duplicate payment on my credit card",
        ),
        (
            "delivery",
            "The courier delivered the package to the wrong address",
        ),
        ("delivery", "Order shipped a week ago but is still pending"),
        (
            "account",
            "I cannot log in, the password reset email never arrives",
        ),
        (
            "account",
            "My account was locked after too many login attempts",
        ),
    ];
    let records = history
        .iter()
        .enumerate()
        .map(|(i, (d, t))| record(&i.to_string(), d, t))
        .collect();
    kb.upsert(records).await.expect("upsert");

    // No content word in common with any stored ticket: BM25 alone has nothing to go on.
    let query = "my parcel has gone missing";
    let bm25_only = tempfile::tempdir().expect("temp dir");
    let plain = KnowledgeBase::open(bm25_only.path(), None, 0.0).expect("open");
    plain
        .upsert(
            history
                .iter()
                .enumerate()
                .map(|(i, (d, t))| record(&i.to_string(), d, t))
                .collect(),
        )
        .await
        .expect("upsert");
    assert!(plain.similar(query, 3).await.expect("similar").is_empty());

    let found = kb.similar(query, 3).await.expect("similar");
    assert_eq!(
        found.first().map(|s| s.department.as_str()),
        Some("delivery"),
        "{found:?}"
    );
    // Nothing about the weather is stored: nothing is close enough to count as evidence.
    let unrelated = kb
        .similar("what will the weather be like in Paris tomorrow", 3)
        .await
        .expect("similar");
    assert!(unrelated.is_empty(), "{unrelated:?}");
}
