//! A sentence encoder exported to ONNX, run in-process by ONNX Runtime: the multilingual Universal
//! Sentence Encoder (Apache-2.0; Chinese, English and 14 more languages) as `scripts/fetch-model.sh`
//! lays it out. Its graph takes the texts' SentencePiece ids, flattened (`token_ids`, int32), and
//! where each text's ids start, with the end (`row_splits`, int64, one more than the texts), and gives
//! one vector per text (`outputs`). The published graph tokenised inside, with an operator only ONNX
//! Runtime's Python extensions carry; the fetch script cut it off and converted its SentencePiece
//! model to `tokenizer.json`, checking that both give the same ids.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread;

use async_trait::async_trait;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::PrepackedWeights;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use crate::local::read_tokenizer;
use crate::pooling::normalize;
use crate::worker::ModelThreads;
use crate::{EmbedError, Embedder, LocalBertOptions};

const MODEL: &str = "model.onnx";
const TOKENIZER: &str = "tokenizer.json";
/// ONNX Runtime's library, from its PyPI wheel: loaded at run time, so nothing of it is built.
const RUNTIME: &str = "libonnxruntime.so";

/// An ONNX sentence encoder loaded from a directory holding `model.onnx`, `tokenizer.json` and
/// `libonnxruntime.so`. Inference runs on worker threads this value owns, each with its own session
/// of one thread: every text runs alone (see [`Worker::embed`]), and one text's run is too small to
/// share among threads (956 texts/s with one intra-op thread, 818 with two, on 2 cores), so the
/// threads run texts side by side instead. Dropping the value ends them.
pub struct OnnxEncoder {
    name: String,
    dimension: usize,
    threads: ModelThreads,
}

impl OnnxEncoder {
    /// Whether `dir` holds an ONNX model (rather than a BERT checkpoint for [`crate::LocalBert`]).
    pub fn is_in(dir: &Path) -> bool {
        dir.join(MODEL).is_file()
    }

    /// Loads the model from `dir`, with `options`' sequence length, threads and name (each text runs
    /// alone, so the batch size does not apply).
    /// Blocks while it reads the model and embeds one text to learn the vectors' length: call it at
    /// start or from `spawn_blocking`.
    pub fn load(dir: &Path, options: LocalBertOptions) -> Result<OnnxEncoder, EmbedError> {
        // The <s> and </s> the tokenizer adds take two places; a text needs at least one more.
        if options.max_sequence_length < 3 {
            return Err(EmbedError::Options(format!(
                "max_sequence_length {} is below 3 for {}",
                options.max_sequence_length,
                dir.display()
            )));
        }
        let environment = environment(&dir.join(RUNTIME))?;
        let tokenizer = read_tokenizer(&dir.join(TOKENIZER), options.max_sequence_length)?;
        let count = match options.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let path = dir.join(MODEL);
        let model_error = |source: ort::Error| EmbedError::OnnxModel {
            path: path.clone(),
            source,
        };
        // The sessions share their weights as prepacked for the kernels, which they would otherwise
        // each hold a copy of.
        let prepacked = PrepackedWeights::new();
        let mut workers = Vec::with_capacity(count);
        for _ in 0..count {
            let session = Session::builder(&environment)
                .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
                .and_then(|b| b.with_prepacked_weights(&prepacked).map_err(Into::into))
                .and_then(|mut b| b.commit_from_file(&path))
                .map_err(model_error)?;
            workers.push(Worker {
                session,
                tokenizer: tokenizer.clone(),
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
            threads = count,
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

struct Worker {
    session: Session,
    tokenizer: Tokenizer,
}

impl Worker {
    /// One unit vector per text, in order, each text run alone: the export quantises its activations
    /// by the range of the whole run, so in a run with others a text's vector would depend on them
    /// (cosine 0.9988 to 0.9998 to its vector alone, measured), and the same ticket would get
    /// another vector each time. Alone, it runs at about 1,000 texts a second on one core, a third of
    /// batched; [`OnnxEncoder`] runs one such worker per core.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let encoding = self
                .tokenizer
                .encode_fast(text.as_str(), true)
                .map_err(EmbedError::Tokenize)?;
            // SentencePiece ids are below the vocabulary's size, far below i32's range.
            let ids: Vec<i32> = encoding.get_ids().iter().map(|&id| id as i32).collect();
            let splits = vec![0, ids.len() as i64];
            let ids = Tensor::from_array(([ids.len()], ids)).map_err(EmbedError::OnnxInference)?;
            let splits = Tensor::from_array(([2], splits)).map_err(EmbedError::OnnxInference)?;
            let outputs = self
                .session
                .run(ort::inputs!["token_ids" => ids, "row_splits" => splits])
                .map_err(EmbedError::OnnxInference)?;
            let (shape, values) = outputs["outputs"]
                .try_extract_tensor::<f32>()
                .map_err(EmbedError::OnnxInference)?;
            if shape.first().copied() != Some(1) {
                return Err(EmbedError::Count {
                    expected: 1,
                    got: shape.first().copied().unwrap_or(0).max(0) as usize,
                });
            }
            let mut vector = values.to_vec();
            normalize(&mut vector)?;
            out.push(vector);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing in this test binary loads ONNX Runtime before, so the missing library is found out.
    #[test]
    fn a_model_without_its_runtime_is_an_error_naming_where_it_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL), b"not a model").unwrap();
        assert!(OnnxEncoder::is_in(dir.path()));
        let error = OnnxEncoder::load(dir.path(), LocalBertOptions::default()).unwrap_err();
        assert!(matches!(error, EmbedError::Runtime { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&dir.path().join(RUNTIME).display().to_string())
        );
    }
}
