//! Duty descriptions as evidence: the retriever embeds each description in the `departments` bucket,
//! follows the bucket's changes, and gives a ticket the departments whose descriptions read most like
//! it, marking those the classifier has tickets of.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_embed::{EmbedError, Embedder};
use switchboard_knowledge::KnowledgeBase;
use switchboard_retriever::Duties;

/// Words hashed into a few dimensions: texts sharing words are similar.
#[derive(Debug)]
struct WordHash;

#[async_trait]
impl Embedder for WordHash {
    fn name(&self) -> &str {
        "word-hash"
    }

    fn dimension(&self) -> usize {
        64
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; 64];
                for w in t.to_lowercase().split_whitespace() {
                    v[w.bytes().map(usize::from).sum::<usize>() % 64] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

async fn dense(kb: &KnowledgeBase, text: &str) -> Vec<f32> {
    kb.query(text).await.expect("query").dense.expect("dense")
}

#[tokio::test]
async fn descriptions_are_embedded_followed_and_matched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(dir.path(), Some(Arc::new(WordHash)), 0.0).expect("open");
    let bus = MemoryBus::new();
    let kv = bus.kv("departments").await.expect("kv");
    kv.put(
        "passports",
        Bytes::from("passport renewal and lost passport reports"),
    )
    .await
    .expect("put");
    kv.put(
        "visas",
        Bytes::from("visa applications and visa extensions"),
    )
    .await
    .expect("put");
    // Announced but not described: nothing to embed.
    kv.put("billing", Bytes::new()).await.expect("put");

    let (duties, watch) = Duties::watch(kb.clone(), kv.clone()).await.expect("watch");
    assert!(watch.is_some());
    assert_eq!(duties.len(), 2, "described before the first ticket");
    let ticket = dense(&kb, "I lost my passport yesterday").await;
    let found = duties.matches(&ticket, 5, |d| d == "visas");
    assert_eq!(found[0].department, "passports");
    assert!(!found[0].known);
    assert!(found[0].similarity > found[1].similarity, "{found:?}");
    assert!(found[1].known, "the classifier's departments are marked");

    // An edit reaches the next ticket; a cleared description leaves.
    kv.put("visas", Bytes::from("lost passport replacement abroad"))
        .await
        .expect("put");
    kv.put("passports", Bytes::new()).await.expect("put");
    let mut waited = Duration::ZERO;
    loop {
        let found = duties.matches(&ticket, 5, |_| false);
        if found.len() == 1 && found[0].department == "visas" {
            break;
        }
        assert!(
            waited < Duration::from_secs(5),
            "the edit never arrived: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    drop(watch);
    drop(duties);
    drop(kb);
}

#[tokio::test]
async fn without_a_sentence_model_no_duty_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(dir.path(), None, 0.0).expect("open");
    let kv = MemoryBus::new().kv("departments").await.expect("kv");
    kv.put("passports", Bytes::from("passports"))
        .await
        .expect("put");
    let (duties, watch) = Duties::watch(kb, kv).await.expect("watch");
    assert!(watch.is_none());
    assert!(duties.is_empty());
}
