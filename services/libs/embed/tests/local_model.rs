//! Checks against the real all-MiniLM-L6-v2 (from safetensors weights), m3e-small (from PyTorch's
//! pickled weights), both as `scripts/convert-bert.py` writes them to ONNX, and the multilingual
//! Universal Sentence Encoder, all run by ONNX Runtime, when `scripts/fetch-model.sh` has fetched them
//! into `models/` at the repository root, as
//! `scripts/test.sh` does. Without them these tests print a note and pass: a fresh checkout builds
//! and tests without the 90 MB models.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use switchboard_embed::{
    Batcher, BatcherOptions, Embedder, LocalModelOptions, OnnxEncoder, load_local, read_chinese,
};

const MINILM: &str = "all-MiniLM-L6-v2";
const M3E: &str = "m3e-small";
const USE: &str = "use-multilingual";

/// `models/NAME` when it holds `weights`.
fn fetched(name: &str, weights: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../models")
        .join(name);
    if dir.join(weights).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "note: skipping: no model in {}; run scripts/fetch-model.sh --model {name} to test against it",
            dir.display()
        );
        None
    }
}

fn model_dir() -> Option<PathBuf> {
    fetched(MINILM, "model.onnx")
}

fn m3e_dir() -> Option<PathBuf> {
    fetched(M3E, "model.onnx")
}

fn use_dir() -> Option<PathBuf> {
    fetched(USE, "model.onnx")
}

fn load(dir: &std::path::Path) -> OnnxEncoder {
    OnnxEncoder::load(dir, LocalModelOptions::default()).unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn similar_requests_are_closer_than_unrelated_ones() {
    let Some(dir) = model_dir() else { return };
    let model = load(&dir);
    assert_eq!(model.dimension(), 384);
    assert_eq!(model.name(), MINILM);

    let vectors = model
        .embed(texts(&[
            "I lost my card",
            "my card is missing",
            "what is the exchange rate",
        ]))
        .await
        .unwrap();
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm = dot(vector, vector).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let related = dot(&vectors[0], &vectors[1]);
    let unrelated = dot(&vectors[0], &vectors[2]);
    assert!(
        related > unrelated + 0.2,
        "lost card vs missing card {related}, vs exchange rate {unrelated}"
    );
}

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    embedding: Vec<f32>,
}

/// The fixtures hold vectors from an independent float64 numpy implementation of BERT with Hugging
/// Face's Python tokenizer (`fixtures/reference_vectors.py`), so the conversion of the weights to
/// ONNX, tokenisation (accents, CJK, punctuation, WordPiece), the network, pooling and
/// normalisation are all checked at once.
async fn assert_matches_reference(dir: &std::path::Path, fixture: &str) {
    let model = load_local(dir, LocalModelOptions::default()).unwrap();
    let reference: Reference = serde_json::from_str(fixture).unwrap();
    let vectors = model
        .embed(reference.sentences.iter().map(|s| s.text.clone()).collect())
        .await
        .unwrap();
    for (sentence, vector) in reference.sentences.iter().zip(&vectors) {
        let cosine = dot(vector, &sentence.embedding);
        let worst = vector
            .iter()
            .zip(&sentence.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            cosine > 0.9999 && worst < 1e-3,
            "{:?}: cosine {cosine}, largest difference {worst}",
            sentence.text
        );
    }
}

#[tokio::test]
async fn vectors_match_the_reference_implementation() {
    let Some(dir) = model_dir() else { return };
    assert_matches_reference(&dir, include_str!("fixtures/minilm_reference.json")).await;
}

#[tokio::test]
async fn pickled_weights_give_the_reference_vectors() {
    let Some(dir) = m3e_dir() else { return };
    assert_matches_reference(&dir, include_str!("fixtures/m3e_reference.json")).await;
}

/// The ONNX encoder's fixture comes from the published graph run whole, its tokenizer operator
/// included (`fixtures/use_reference.py`): so the graph the fetch script cut and the tokenizer it
/// converted are checked with ONNX Runtime's reading of the rest. Quantised weights, hence the
/// same tolerance as float32 BERT.
#[tokio::test]
async fn the_onnx_encoder_gives_the_published_graphs_vectors() {
    let Some(dir) = use_dir() else { return };
    assert_matches_reference(&dir, include_str!("fixtures/use_reference.json")).await;
    let model = OnnxEncoder::load(&dir, LocalModelOptions::default()).unwrap();
    assert_eq!((model.name(), model.dimension()), (USE, 512));
}

/// A model file ONNX Runtime cannot read is an error naming it, not a panic or an encoder that never
/// answers.
#[test]
fn an_unreadable_onnx_model_is_an_error_naming_the_file() {
    let Some(dir) = use_dir() else { return };
    let broken = tempfile::tempdir().unwrap();
    for file in ["libonnxruntime.so", "tokenizer.json"] {
        std::fs::copy(dir.join(file), broken.path().join(file)).unwrap();
    }
    std::fs::write(broken.path().join("model.onnx"), b"not a model").unwrap();
    let error = OnnxEncoder::load(broken.path(), LocalModelOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("could not load the ONNX model"),
        "{message}"
    );
    assert!(message.contains("model.onnx"), "{message}");
}

/// The multilingual encoder reads both languages: the probe says so, and a paraphrase is nearer than
/// another request in Chinese and in English, also across the two.
#[tokio::test]
async fn the_multilingual_encoder_reads_chinese_and_english() {
    let Some(dir) = use_dir() else { return };
    let model = OnnxEncoder::load(&dir, LocalModelOptions::default()).unwrap();
    let reading = read_chinese(&model).await.unwrap();
    eprintln!("use-multilingual {reading:?}");
    assert!(reading.reads(), "{reading:?}");
    let vectors = model
        .embed(texts(&[
            "输对密码进不去",
            "密码正确但是无法登录",
            "明天北京的天气怎么样",
            "I cannot log in with the right password",
            "what is the weather in Beijing tomorrow",
        ]))
        .await
        .unwrap();
    let close = |a: usize, b: usize| dot(&vectors[a], &vectors[b]);
    assert!(close(0, 1) > close(0, 2) + 0.1, "{vectors:?}");
    assert!(close(3, 0) > close(3, 4), "across languages");
    assert!(close(4, 2) > close(4, 0), "across languages");
}

/// A text's vector does not depend on the texts embedded with it: the Universal Sentence Encoder's
/// export quantises activations by the range of a whole run, so the encoder runs each text alone.
#[tokio::test]
async fn a_texts_vector_does_not_depend_on_its_batch() {
    let Some(dir) = use_dir() else { return };
    let model = load(&dir);
    let items = ["退款", "refund", "我的卡丢了", "lost card", "x"];
    let together = model.embed(texts(&items)).await.unwrap();
    for (item, vector) in items.iter().zip(&together) {
        let alone = model.embed(texts(&[item])).await.unwrap();
        assert_eq!(&alone[0], vector, "{item}");
    }
}

/// A BERT graph runs texts of similar length together, padded and masked: a text's vector there is
/// its vector alone up to float rounding, whatever its run mates and their lengths.
#[tokio::test]
async fn a_bert_texts_vector_in_a_padded_run_is_its_vector_alone() {
    let Some(dir) = model_dir() else { return };
    let model = load(&dir);
    // More texts than one run takes, of many lengths, so most are padded.
    let items: Vec<String> = (0..40)
        .map(|i| format!("ticket {i}: {}", "my card was declined ".repeat(i % 9)))
        .collect();
    let together = model.embed(items.clone()).await.unwrap();
    for (item, vector) in items.iter().zip(&together) {
        let alone = model.embed(vec![item.clone()]).await.unwrap();
        let worst = alone[0]
            .iter()
            .zip(vector)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{item}: largest difference {worst}");
    }
}

#[tokio::test]
async fn the_chinese_model_tells_chinese_paraphrases_from_other_requests() {
    let Some(dir) = m3e_dir() else { return };
    let model = load(&dir);
    assert_eq!((model.name(), model.dimension()), (M3E, 512));
    let vectors = model
        .embed(texts(&[
            "输对密码进不去",
            "密码正确但是无法登录",
            "明天北京的天气怎么样",
        ]))
        .await
        .unwrap();
    let related = dot(&vectors[0], &vectors[1]);
    let unrelated = dot(&vectors[0], &vectors[2]);
    assert!(
        related > unrelated + 0.1,
        "password paraphrases {related}, vs the weather {unrelated}"
    );
}

/// The probe tells the two models apart by what they do with Chinese, not by their names: the Chinese
/// model puts rewordings nearer than look-alikes, the English one mostly the other way round.
#[tokio::test]
async fn the_chinese_probe_tells_a_chinese_model_from_an_english_one() {
    let (Some(m3e), Some(minilm)) = (m3e_dir(), model_dir()) else {
        return;
    };
    let chinese = read_chinese(&load(&m3e)).await.unwrap();
    let english = read_chinese(&load(&minilm)).await.unwrap();
    eprintln!("m3e-small {chinese:?}, all-MiniLM-L6-v2 {english:?}");
    assert!(chinese.reads(), "m3e-small: {chinese:?}");
    assert!(!english.reads(), "all-MiniLM-L6-v2: {english:?}");
}

#[tokio::test]
async fn long_texts_are_cut_at_the_maximum_length() {
    let Some(dir) = model_dir() else { return };
    let options = LocalModelOptions {
        max_sequence_length: 12,
        ..LocalModelOptions::default()
    };
    let model = OnnxEncoder::load(&dir, options).unwrap();
    let head = "my card was declined at the shop this morning and I need help";
    let vectors = model
        .embed(vec![
            format!("{head} with the payment"),
            format!("{head} and the weather here is lovely today"),
            head.to_owned(),
            format!("{head} {}", "again ".repeat(2000)),
        ])
        .await
        .unwrap();
    // The texts differ after the 13th word piece, but with [CLS] and [SEP] the model sees only
    // the first 10 of each...
    let shared = dot(&vectors[0], &vectors[1]);
    assert!(shared > 0.99999, "cosine {shared}");
    // ...and a text far past the model's 512 positions is embedded, not rejected.
    assert!((dot(&vectors[3], &vectors[3]).sqrt() - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn batched_single_calls_give_the_same_vectors_as_one_call() {
    let Some(dir) = model_dir() else { return };
    let model: Arc<dyn Embedder> = Arc::new(load(&dir));
    let sentences: Vec<String> = (0..40)
        .map(|i| format!("ticket number {i}: {}", "please help me ".repeat(i % 7)))
        .collect();
    let direct = model.embed(sentences.clone()).await.unwrap();

    let batcher = Arc::new(Batcher::new(Arc::clone(&model), BatcherOptions::default()));
    let tasks: Vec<_> = sentences
        .into_iter()
        .map(|sentence| {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move { batcher.embed(vec![sentence]).await })
        })
        .collect();
    for (task, expected) in tasks.into_iter().zip(&direct) {
        let vectors = task.await.unwrap().unwrap();
        assert_eq!(vectors.len(), 1);
        let cosine = dot(&vectors[0], expected);
        assert!(cosine > 0.99999, "cosine {cosine}");
    }
}
