//! BM25 as sparse vectors, split the way the Qdrant server splits it: documents carry the term-frequency
//! half, queries carry 1.0 per term, and the store's IDF modifier supplies the inverse document frequency
//! from its own statistics at query time. IDF therefore stays right as the knowledge base grows, without
//! re-embedding anything.

use std::collections::BTreeMap;

use qdrant_edge::SparseVector;
use switchboard_text::{is_stopword, tokens};

/// The name of the sparse vector in the store, and of the retrieval in `Matches.retriever`.
pub const VECTOR_NAME: &str = "bm25";

/// Term-frequency saturation and length normalisation, the usual BM25 values (and Qdrant's defaults).
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Average document length, in terms after stop words. Fixed rather than a running average so that a
/// ticket's vector depends on its own text only: re-importing the same history gives the same vectors in
/// any order, and there are no corpus statistics to persist or drift. Support tickets are short (chat
/// and web-form tickets run about 5 to 15 content words); a value in that range keeps the length
/// normalisation meaningful, where Qdrant's default of 256 (written for web pages) would switch it off.
const AVG_DOC_LEN: f32 = 10.0;

/// The words retrieval matches on: the pipeline's shared tokens, without stop words.
fn terms(text: &str) -> impl Iterator<Item = String> {
    tokens(text).into_iter().filter(|t| !is_stopword(t))
}

/// FNV-1a, 32 bits: a fixed function of the token's bytes, so ids agree across processes, restarts and
/// versions (std's hashers are randomly seeded or unspecified). A collision merges two words into one
/// dimension; at tens of thousands of distinct words in a 2^32 space that almost never happens and
/// would only blur two terms.
fn token_id(token: &str) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    token
        .bytes()
        .fold(OFFSET, |hash, b| (hash ^ u32::from(b)).wrapping_mul(PRIME))
}

/// The document side: BM25 term-frequency weight per distinct term. Empty when the text has no terms.
pub fn document_vector(text: &str) -> SparseVector {
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    let mut len = 0u32;
    for term in terms(text) {
        *counts.entry(token_id(&term)).or_default() += 1;
        len += 1;
    }
    let norm = K1 * (1.0 - B + B * len as f32 / AVG_DOC_LEN);
    // BTreeMap iteration gives the sorted, unique indices Qdrant requires.
    let (indices, values) = counts
        .into_iter()
        .map(|(id, n)| {
            let n = n as f32;
            (id, n * (K1 + 1.0) / (n + norm))
        })
        .unzip();
    SparseVector { indices, values }
}

/// The query side: weight 1.0 per distinct term, so the score is the sum of IDF-weighted document weights
/// over the terms the query and the document share. `None` when the text has no terms.
pub fn query_vector(text: &str) -> Option<SparseVector> {
    let mut indices: Vec<u32> = terms(text).map(|t| token_id(&t)).collect();
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() {
        return None;
    }
    let values = vec![1.0; indices.len()];
    Some(SparseVector { indices, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_the_published_fnv1a_values() {
        // Reference values of FNV-1a 32: pinning them catches any change that would orphan stored vectors.
        assert_eq!(token_id(""), 0x811c_9dc5);
        assert_eq!(token_id("a"), 0xe40c_292c);
        assert_eq!(token_id("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn stop_words_and_repeats() {
        let q = query_vector("the refund, the REFUND and the invoice").expect("has terms");
        assert_eq!(q.indices.len(), 2);
        assert!(q.values.iter().all(|&v| v == 1.0));
        assert!(q.indices.is_sorted());

        let d = document_vector("refund refund invoice");
        let refund = d
            .indices
            .iter()
            .position(|&i| i == token_id("refund"))
            .expect("refund");
        let invoice = d
            .indices
            .iter()
            .position(|&i| i == token_id("invoice"))
            .expect("invoice");
        assert!(d.values[refund] > d.values[invoice]);
        // Saturation: never above k1 + 1.
        assert!(d.values.iter().all(|&v| v > 0.0 && v < K1 + 1.0));
    }

    #[test]
    fn longer_documents_weigh_a_term_less() {
        let short = document_vector("refund");
        let long =
            document_vector("refund delayed parcel courier warehouse address label tracking");
        let id = token_id("refund");
        let weight =
            |v: &SparseVector| v.values[v.indices.iter().position(|&i| i == id).expect("term")];
        assert!(weight(&short) > weight(&long));
    }

    #[test]
    fn chinese_is_segmented_into_words() {
        let d = document_vector("我的快递一直没有送到");
        assert!(d.indices.contains(&token_id("快递")));
        assert!(query_vector("的了吗").is_none());
        assert!(query_vector("  !!! ").is_none());
    }
}
