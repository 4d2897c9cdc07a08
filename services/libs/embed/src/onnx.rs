//! Sentence encoders exported to ONNX, run in-process by ONNX Runtime. Two graph layouts, told apart
//! by their inputs:
//! - a BERT-family model (all-MiniLM-L6-v2, m3e-small) as `scripts/convert-bert.py` writes it from
//!   the model's weights: texts' WordPiece ids (`input_ids`, int64, [texts, tokens]) and which are
//!   padding (`attention_mask`) in, each text's pooled vector (`sentence_embedding`) out;
//! - the multilingual Universal Sentence Encoder (Apache-2.0; Chinese, English and 14 more
//!   languages): the texts' SentencePiece ids, flattened (`token_ids`, int32), and where each text's
//!   ids start, with the end (`row_splits`, int64, one more than the texts), in; one vector per text
//!   (`outputs`) out. The published graph tokenised inside, with an operator only ONNX Runtime's
//!   Python extensions carry; the fetch script cut it off and converted its SentencePiece model to
//!   `tokenizer.json`, checking that both give the same ids.
//!
//! ONNX Runtime is the one local engine. On all-MiniLM-L6-v2 it runs 1.1 to 2.9 times as fast as
//! sentence-transformers on PyTorch on the same two cores (`scripts/bench-embed-reference.sh`; the
//! README has the figures), where candle, which ran BERT models here before, ran at about 0.3 times.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use async_trait::async_trait;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::PrepackedWeights;
use ort::value::Tensor;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::normalize::normalize;
use crate::worker::ModelThreads;
use crate::{EmbedError, Embedder};

const MODEL: &str = "model.onnx";
const TOKENIZER: &str = "tokenizer.json";
/// What `convert-bert.py` writes beside a BERT graph: the longest input its position table allows.
const CONFIG: &str = "config.json";
/// Weights of a BERT checkpoint that was never converted.
const CHECKPOINTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
/// ONNX Runtime's library, from its PyPI wheel: loaded at run time, so nothing of it is built.
const RUNTIME: &str = "libonnxruntime.so";

/// How [`OnnxEncoder`] runs its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModelOptions {
    /// Tokens kept per text, the tokenizer's start and end marks included; the rest is cut.
    /// Attention costs grow with the square of the length, and a ticket's subject and first lines
    /// carry its topic, so 128 (what all-MiniLM-L6-v2 was trained with) rather than the model's 512.
    pub max_sequence_length: usize,
    /// Cores the model runs on; 0 means every core this process may use.
    pub threads: usize,
    /// The id reported by [`Embedder::name`]; `None` uses the model directory's name.
    pub name: Option<String>,
}

impl Default for LocalModelOptions {
    fn default() -> Self {
        Self {
            max_sequence_length: 128,
            threads: 0,
            name: None,
        }
    }
}

/// An ONNX sentence encoder loaded from a directory holding `model.onnx`, `tokenizer.json` and
/// `libonnxruntime.so` (and, for a converted BERT model, `config.json`). Inference runs on worker
/// threads this value owns, each with its own session; a call's texts are shared among them (see
/// [`OnnxEncoder::load`] for how many, and [`Worker::embed`] for how each runs them). Dropping the
/// value ends them.
pub struct OnnxEncoder {
    name: String,
    dimension: usize,
    threads: ModelThreads,
}

impl OnnxEncoder {
    /// Loads the model from `dir`, with `options`' sequence length, threads and name. Returns
    /// [`EmbedError::ModelMissing`] when `dir` holds no model, which callers treat as "run without
    /// dense search". Blocks while it reads the model and embeds one text to learn the vectors'
    /// length: call it at start or from `spawn_blocking`.
    pub fn load(dir: &Path, options: LocalModelOptions) -> Result<OnnxEncoder, EmbedError> {
        if !dir.join(MODEL).is_file() {
            return Err(if CHECKPOINTS.iter().any(|w| dir.join(w).is_file()) {
                EmbedError::Unconverted {
                    dir: dir.to_path_buf(),
                }
            } else {
                EmbedError::ModelMissing {
                    dir: dir.to_path_buf(),
                }
            });
        }
        // The start and end marks the tokenizer adds take two places; a text needs one more. A
        // BERT graph's position table bounds the rest.
        let longest = read_longest(&dir.join(CONFIG))?;
        if options.max_sequence_length < 3
            || longest.is_some_and(|l| options.max_sequence_length > l)
        {
            let range = longest.map_or_else(|| "3 or more".to_owned(), |l| format!("3..={l}"));
            return Err(EmbedError::Options(format!(
                "max_sequence_length {} is outside {range} for {}",
                options.max_sequence_length,
                dir.display()
            )));
        }
        let environment = environment(&dir.join(RUNTIME))?;
        // One tokenizer for every worker: encoding takes it shared, and a SentencePiece vocabulary's
        // trie is large (about 87 MB for use-multilingual's, measured with heaptrack), so a copy per
        // session would cost that much per core.
        let tokenizer = Arc::new(read_tokenizer(
            &dir.join(TOKENIZER),
            options.max_sequence_length,
        )?);
        let cores = match options.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let path = dir.join(MODEL);
        let model_error = |source: ort::Error| EmbedError::OnnxModel {
            path: path.clone(),
            source,
        };
        // How the cores are used. A BERT graph (the one with a config.json) runs sixteen texts at a
        // time, or one long one, large enough to share among threads: one session on every core. A
        // lone all-MiniLM-L6-v2 text of 128 tokens runs in 17 ms on two threads against 31 ms on one
        // (2-core AMD EPYC), and one session does not compete with another for the cores: two
        // sessions of two threads each varied from 360 to 507 texts/s over runs of the same bench.
        // The Universal Sentence Encoder runs each text alone, too small to share (588 against 668
        // texts/s one at a time on two threads against one): a session of one thread per core.
        let (count, intra) = if longest.is_some() {
            (1, cores)
        } else {
            (cores, 1)
        };
        // The sessions share their weights as prepacked for the kernels, which they would otherwise
        // each hold a copy of.
        let prepacked = PrepackedWeights::new();
        let mut workers = Vec::with_capacity(count);
        for _ in 0..count {
            let session = Session::builder(&environment)
                .and_then(|b| b.with_intra_threads(intra).map_err(Into::into))
                // Threads that wait for work sleep rather than spin: a session's helper spinning
                // would take the core another session's text is running on.
                .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
                .and_then(|b| b.with_prepacked_weights(&prepacked).map_err(Into::into))
                .and_then(|mut b| b.commit_from_file(&path))
                .map_err(model_error)?;
            workers.push(Worker {
                layout: Layout::of(&session, &path)?,
                session,
                tokenizer: Arc::clone(&tokenizer),
            });
        }
        let dimension = match workers.first_mut() {
            Some(worker) => worker
                .embed(&["dimension".to_owned()])?
                .pop()
                .map_or(0, |v| v.len()),
            None => 0,
        };
        let name = options.name.unwrap_or_else(|| {
            dir.file_name().map_or_else(
                || "onnx-encoder".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        let threads = ModelThreads::spawn(
            workers
                .into_iter()
                .map(|mut worker| move |texts: &[String]| worker.embed(texts))
                .collect(),
        )?;
        tracing::info!(
            model = %name,
            dimension,
            threads = cores,
            max_sequence_length = options.max_sequence_length,
            "embedding model loaded (ONNX Runtime)"
        );
        Ok(OnnxEncoder {
            name,
            dimension,
            threads,
        })
    }
}

/// ONNX Runtime allows one environment per process, and its library is loaded once: the first model
/// loaded sets both, and every later one shares them.
fn environment(runtime: &Path) -> Result<Environment, EmbedError> {
    static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = &*slot {
        return Ok(environment.clone());
    }
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| EmbedError::Runtime {
        path: runtime.to_path_buf(),
        source,
    };
    if !runtime.is_file() {
        return Err(failed("no such file".into()));
    }
    let environment = ort::init_from(runtime)
        .map_err(|e| failed(Box::new(e)))?
        .with_name("switchboard")
        .build()
        .map_err(|e| failed(Box::new(e)))?;
    *slot = Some(environment.clone());
    Ok(environment)
}

impl fmt::Debug for OnnxEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnnxEncoder")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for OnnxEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.threads.embed(texts).await
    }
}

/// The inputs and outputs of the two graphs the encoder runs (the module's comment has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Bert,
    Ragged,
}

impl Layout {
    fn of(session: &Session, path: &Path) -> Result<Layout, EmbedError> {
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_owned())
            .collect();
        match inputs.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["input_ids", "attention_mask"] => Ok(Layout::Bert),
            ["token_ids", "row_splits"] => Ok(Layout::Ragged),
            _ => Err(EmbedError::UnknownGraph {
                path: path.to_path_buf(),
                inputs,
            }),
        }
    }
}

struct Worker {
    layout: Layout,
    session: Session,
    tokenizer: Arc<Tokenizer>,
}

/// Texts per run of a BERT graph. A run of one text is a few thin matrix products; sixteen of a
/// similar length, padded to the longest, ran all-MiniLM-L6-v2 1.6× faster per core (182 → 284
/// texts/s for 16-token texts on one AMD EPYC thread); more gained nothing.
const BERT_RUN: usize = 16;

impl Worker {
    /// One unit vector per text, in order. The Universal Sentence Encoder's export quantises its
    /// activations by the range of the whole run, so in a run with others a text's vector would
    /// depend on them (cosine 0.9988 to 0.9998 to its vector alone, measured), and the same ticket
    /// would get another vector each time: it runs every text alone. A BERT graph masks padding,
    /// so texts sorted by length run [`BERT_RUN`] at a time, and a text's vector in a run differs
    /// from its vector alone by float rounding only (about 1e-7).
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode_fast(text.as_str(), true)
                    .map(|encoding| encoding.get_ids().to_vec())
                    .map_err(EmbedError::Tokenize)
            })
            .collect::<Result<_, _>>()?;
        match self.layout {
            Layout::Ragged => ids.iter().map(|ids| self.run_ragged(ids)).collect(),
            Layout::Bert => {
                let mut order: Vec<usize> = (0..ids.len()).collect();
                order.sort_by_key(|&i| ids[i].len());
                let mut vectors = vec![Vec::new(); ids.len()];
                for run in order.chunks(BERT_RUN) {
                    let rows: Vec<&[u32]> = run.iter().map(|&i| ids[i].as_slice()).collect();
                    for (&i, vector) in run.iter().zip(self.run_bert(&rows)?) {
                        vectors[i] = vector;
                    }
                }
                Ok(vectors)
            }
        }
    }

    /// One text through the Universal Sentence Encoder's graph.
    fn run_ragged(&mut self, ids: &[u32]) -> Result<Vec<f32>, EmbedError> {
        // SentencePiece ids are below the vocabulary's size, far below i32's range.
        let ids: Vec<i32> = ids.iter().map(|&id| id as i32).collect();
        let splits = vec![0, ids.len() as i64];
        let ids = Tensor::from_array(([ids.len()], ids)).map_err(EmbedError::OnnxInference)?;
        let splits = Tensor::from_array(([2], splits)).map_err(EmbedError::OnnxInference)?;
        let outputs = self
            .session
            .run(ort::inputs!["token_ids" => ids, "row_splits" => splits])
            .map_err(EmbedError::OnnxInference)?;
        Ok(unit_rows(&outputs["outputs"], 1)?.pop().unwrap_or_default())
    }

    /// Texts through a BERT graph in one run, each padded to the longest.
    fn run_bert(&mut self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            ids.extend(row.iter().map(|&id| i64::from(id)));
            mask.extend(std::iter::repeat_n(1i64, row.len()));
            // Padding: any id, masked out of attention and pooling.
            ids.extend(std::iter::repeat_n(0i64, width - row.len()));
            mask.extend(std::iter::repeat_n(0i64, width - row.len()));
        }
        let ids =
            Tensor::from_array(([rows.len(), width], ids)).map_err(EmbedError::OnnxInference)?;
        let mask =
            Tensor::from_array(([rows.len(), width], mask)).map_err(EmbedError::OnnxInference)?;
        let outputs = self
            .session
            .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
            .map_err(EmbedError::OnnxInference)?;
        unit_rows(&outputs["sentence_embedding"], rows.len())
    }
}

/// The `expected` rows of a [texts, dimension] output, each scaled to unit length.
fn unit_rows(output: &ort::value::DynValue, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let (shape, values) = output
        .try_extract_tensor::<f32>()
        .map_err(EmbedError::OnnxInference)?;
    let got = shape.first().copied().unwrap_or(0).max(0) as usize;
    if got != expected || values.is_empty() {
        return Err(EmbedError::Count { expected, got });
    }
    values
        .chunks(values.len() / expected)
        .map(|row| {
            let mut vector = row.to_vec();
            normalize(&mut vector)?;
            Ok(vector)
        })
        .collect()
}

/// The longest input a converted BERT graph takes, from the `config.json` beside it; `None` for a
/// graph without one (the Universal Sentence Encoder has no position table).
fn read_longest(path: &Path) -> Result<Option<usize>, EmbedError> {
    #[derive(Deserialize)]
    struct Config {
        max_position_embeddings: usize,
    }
    if !path.is_file() {
        return Ok(None);
    }
    let config: Config =
        serde_json::from_str(&read_to_string(path)?).map_err(|source| EmbedError::Config {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(config.max_position_embeddings))
}

fn read_to_string(path: &Path) -> Result<String, EmbedError> {
    std::fs::read_to_string(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the tokenizer with its normaliser and vocabulary as the model was trained, but without
/// the file's fixed padding (every text runs alone) and with our truncation.
fn read_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer, EmbedError> {
    let error = |source| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        source,
    };
    let mut tokenizer = Tokenizer::from_str(&read_to_string(path)?).map_err(error)?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(error)?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing in this test binary loads ONNX Runtime before, so the missing library is found out.
    #[test]
    fn a_model_without_its_runtime_is_an_error_naming_where_it_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL), b"not a model").unwrap();
        let error = OnnxEncoder::load(dir.path(), LocalModelOptions::default()).unwrap_err();
        assert!(matches!(error, EmbedError::Runtime { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&dir.path().join(RUNTIME).display().to_string())
        );
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it_and_an_unconverted_one_how_to_convert_it() {
        let dir = Path::new("/nonexistent/switchboard/model");
        let error = OnnxEncoder::load(dir, LocalModelOptions::default()).unwrap_err();
        assert!(matches!(&error, EmbedError::ModelMissing { dir: d } if d == dir));
        let message = error.to_string();
        assert!(message.contains("scripts/fetch-model.sh"), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");

        let old = tempfile::tempdir().unwrap();
        std::fs::write(old.path().join("model.safetensors"), b"weights").unwrap();
        let error = OnnxEncoder::load(old.path(), LocalModelOptions::default()).unwrap_err();
        assert!(
            matches!(&error, EmbedError::Unconverted { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("converts them"), "{error}");
    }

    #[test]
    fn the_sequence_length_must_fit_the_position_table() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL), b"not a model").unwrap();
        std::fs::write(
            dir.path().join(CONFIG),
            r#"{"max_position_embeddings": 512, "hidden_size": 384}"#,
        )
        .unwrap();
        for length in [2, 513] {
            let options = LocalModelOptions {
                max_sequence_length: length,
                ..LocalModelOptions::default()
            };
            let error = OnnxEncoder::load(dir.path(), options).unwrap_err();
            assert!(
                error.to_string().contains("outside 3..=512"),
                "{length}: {error}"
            );
        }
    }

    /// Token ids as Hugging Face's Python tokenizer gives them, from the fixture the real-model
    /// tests use; checks that loading (our padding and truncation settings) keeps the file's
    /// normaliser and WordPiece behaviour. Needs the model's tokenizer.json, so skips without it.
    #[test]
    fn tokenizer_gives_the_reference_token_ids() {
        #[derive(Deserialize)]
        struct Reference {
            sentences: Vec<Sentence>,
        }
        #[derive(Deserialize)]
        struct Sentence {
            text: String,
            ids: Vec<u32>,
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../models/all-MiniLM-L6-v2")
            .join(TOKENIZER);
        if !path.is_file() {
            eprintln!(
                "note: skipping: no {}; run scripts/fetch-model.sh",
                path.display()
            );
            return;
        }
        let tokenizer = read_tokenizer(&path, 128).unwrap();
        let reference: Reference =
            serde_json::from_str(include_str!("../tests/fixtures/minilm_reference.json")).unwrap();
        for sentence in reference.sentences {
            let encoding = tokenizer.encode_fast(sentence.text.as_str(), true).unwrap();
            assert_eq!(encoding.get_ids(), sentence.ids, "{:?}", sentence.text);
        }
        // Truncation keeps [CLS] ... [SEP] within the limit.
        let short = read_tokenizer(&path, 5).unwrap();
        let encoding = short.encode_fast("I lost my card today", true).unwrap();
        assert_eq!(encoding.get_ids(), [101, 1045, 2439, 2026, 102]);
    }
}
