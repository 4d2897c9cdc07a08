//! Dense retrieval beside BM25: the store's vector layout is checked on open, and with the real sentence
//! model (when `scripts/fetch-model.sh` has fetched it) paraphrases that share no word are found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_embed::{EmbedError, Embedder, LocalBert, LocalBertOptions};
use switchboard_proto::KnowledgeRecord;
use switchboard_retriever::{KnowledgeBase, RetrieverError};

/// Words hashed into a few dimensions: enough to give the store vectors of a chosen length.
#[derive(Debug)]
struct WordHash(usize);

#[async_trait]
impl Embedder for WordHash {
    fn name(&self) -> &str {
        "word-hash"
    }

    fn dimension(&self) -> usize {
        self.0
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; self.0];
                for w in t.split_whitespace() {
                    v[w.bytes().map(usize::from).sum::<usize>() % self.0] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

fn record(id: &str, department: &str, text: &str) -> KnowledgeRecord {
    KnowledgeRecord {
        id: id.into(),
        text: text.into(),
        department: department.into(),
        ..KnowledgeRecord::default()
    }
}

#[tokio::test]
async fn a_store_opened_with_another_vector_layout_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let kb = KnowledgeBase::open(dir.path(), Some(Arc::new(WordHash(8))), 0.0).expect("open");
        kb.upsert(vec![record("1", "billing", "charged twice")])
            .await
            .expect("upsert");
        kb.flush().await;
    }
    let err = KnowledgeBase::open(dir.path(), Some(Arc::new(WordHash(16))), 0.0)
        .expect_err("another dimension");
    assert!(matches!(err, RetrieverError::Layout { .. }), "{err:?}");
    assert!(err.to_string().contains("16-dimension"), "{err}");
    let err = KnowledgeBase::open(dir.path(), None, 0.0).expect_err("no dense vectors");
    assert!(err.to_string().contains("BM25 vectors only"), "{err}");
    // The layout it was written with still opens, with its record.
    let kb = KnowledgeBase::open(dir.path(), Some(Arc::new(WordHash(8))), 0.0).expect("reopen");
    assert_eq!(kb.count().await.expect("count"), 1);
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
}

#[tokio::test]
async fn the_sentence_model_finds_paraphrases_that_share_no_word() {
    if !model_dir().join("model.safetensors").is_file() {
        eprintln!(
            "skipped: no model at {} (scripts/fetch-model.sh)",
            model_dir().display()
        );
        return;
    }
    let model = LocalBert::load(&model_dir(), LocalBertOptions::default()).expect("load model");
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
