//! A BERT-family sentence model run in-process on the CPU with candle.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::thread;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::pooling::{Pooling, normalize};
use crate::worker::ModelThreads;
use crate::{EmbedError, Embedder};

const WEIGHTS: &str = "model.safetensors";
/// PyTorch's pickled weights, which older sentence models ship instead of safetensors.
const PICKLED_WEIGHTS: &str = "pytorch_model.bin";
const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const POOLING: &str = "1_Pooling/config.json";

/// How [`LocalBert`] runs its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBertOptions {
    /// Tokens kept per text, [CLS] and [SEP] included; the rest is cut. Attention costs grow with
    /// the square of the length, and a ticket's subject and first lines carry its topic, so 128
    /// (what all-MiniLM-L6-v2 was trained with) rather than the model's 512.
    pub max_sequence_length: usize,
    /// Texts per forward pass. Texts are sorted by length before they are cut into passes, so a
    /// pass pads little; larger passes amortise the per-pass overhead but pad more.
    pub batch_size: usize,
    /// Threads the matrix products use; 0 means every core this process may use. The pool is the
    /// model's own, so it neither waits behind nor slows other rayon users in the process.
    pub threads: usize,
    /// The id reported by [`Embedder::name`]; `None` uses the model directory's name.
    pub name: Option<String>,
}

impl Default for LocalBertOptions {
    fn default() -> Self {
        Self {
            max_sequence_length: 128,
            batch_size: 32,
            threads: 0,
            name: None,
        }
    }
}

/// A sentence model loaded from a local directory holding its weights (`model.safetensors`, or
/// `pytorch_model.bin` when it has none), `config.json`, `tokenizer.json` and, optionally,
/// `1_Pooling/config.json` (mean pooling when absent), as `scripts/fetch-model.sh` lays out
/// all-MiniLM-L6-v2 and m3e-small.
///
/// Inference runs on a worker thread this value owns, never on the async threads: a batch takes
/// tens of milliseconds of full CPU. Calls queue there one after another. Dropping the value
/// ends the worker once the call it is running finishes.
pub struct LocalBert {
    name: String,
    dimension: usize,
    thread: ModelThreads,
}

impl LocalBert {
    /// Loads the model from `dir`. Blocks for a fraction of a second while it reads ~90 MB, so
    /// call it at start or from `spawn_blocking`. Returns [`EmbedError::ModelMissing`] when `dir`
    /// has no weights, which callers treat as "run without dense search".
    pub fn load(dir: &Path, options: LocalBertOptions) -> Result<LocalBert, EmbedError> {
        let weights_path = [WEIGHTS, PICKLED_WEIGHTS]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| EmbedError::ModelMissing {
                dir: dir.to_path_buf(),
            })?;
        if options.batch_size == 0 {
            return Err(EmbedError::Options("batch_size must be at least 1".into()));
        }

        let config_path = dir.join(CONFIG);
        let config: Config =
            serde_json::from_str(&read_to_string(&config_path)?).map_err(|source| {
                EmbedError::Config {
                    path: config_path,
                    source,
                }
            })?;
        // [CLS] and [SEP] take two places; a text needs at least one more.
        if !(3..=config.max_position_embeddings).contains(&options.max_sequence_length) {
            return Err(EmbedError::Options(format!(
                "max_sequence_length {} is outside 3..={} for {}",
                options.max_sequence_length,
                config.max_position_embeddings,
                dir.display()
            )));
        }
        let pooling = read_pooling(&dir.join(POOLING))?;
        let tokenizer = read_tokenizer(&dir.join(TOKENIZER), options.max_sequence_length)?;

        let weights_error = |source| EmbedError::Weights {
            path: weights_path.clone(),
            source,
        };
        let vb = if weights_path.ends_with(WEIGHTS) {
            // Read into memory rather than mmap: the workspace forbids `unsafe`, and mapping a
            // file is unsafe in Rust because another process may change it underneath.
            let bytes = std::fs::read(&weights_path).map_err(|source| EmbedError::Read {
                path: weights_path.clone(),
                source,
            })?;
            VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
        } else {
            VarBuilder::from_pth(&weights_path, DType::F32, &Device::Cpu)
        }
        .map_err(weights_error)?;
        let model = BertModel::load(vb, &config).map_err(weights_error)?;

        let threads = match options.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embed-math-{i}"))
            .build()
            .map_err(|e| EmbedError::Spawn(std::io::Error::other(e)))?;

        let name = options.name.unwrap_or_else(|| {
            dir.file_name().map_or_else(
                || "local-bert".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        let worker = Worker {
            model: Model {
                bert: model,
                pooling,
                pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
                batch_size: options.batch_size,
                threads,
            },
            tokenizer,
            pool,
        };
        // One thread for the model: its batches spread their matrix products over the pool instead.
        let thread = ModelThreads::spawn(vec![move |texts: &[String]| {
            worker.pool.install(|| worker.embed(texts))
        }])?;

        tracing::info!(
            model = %name,
            dimension = config.hidden_size,
            threads,
            max_sequence_length = options.max_sequence_length,
            "embedding model loaded"
        );
        Ok(LocalBert {
            name,
            dimension: config.hidden_size,
            thread,
        })
    }
}

impl fmt::Debug for LocalBert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBert")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for LocalBert {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.thread.embed(texts).await
    }
}

fn read_to_string(path: &Path) -> Result<String, EmbedError> {
    std::fs::read_to_string(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The fields of sentence-transformers' pooling config that change the vector.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

fn read_pooling(path: &Path) -> Result<Pooling, EmbedError> {
    if !path.is_file() {
        // Plain BERT checkpoints carry no pooling config; mean pooling is the usual choice.
        return Ok(Pooling::Mean);
    }
    let config: PoolingConfig =
        serde_json::from_str(&read_to_string(path)?).map_err(|source| EmbedError::Config {
            path: path.to_path_buf(),
            source,
        })?;
    match (
        config.pooling_mode_cls_token,
        config.pooling_mode_mean_tokens,
        config.pooling_mode_max_tokens || config.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (false, true, false) => Ok(Pooling::Mean),
        (true, false, false) => Ok(Pooling::Cls),
        _ => Err(EmbedError::UnsupportedPooling {
            path: path.to_path_buf(),
        }),
    }
}

/// Loads the tokenizer with its normaliser and vocabulary as the model was trained, but without
/// the file's fixed padding (each pass pads only to its longest text) and with our truncation.
pub(crate) fn read_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer, EmbedError> {
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

/// What the worker thread owns: nothing here is shared with the async side.
struct Worker {
    model: Model,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
}

impl Worker {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = texts
            .iter()
            .map(|text| self.tokenizer.encode_fast(text.as_str(), true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EmbedError::Tokenize)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        self.model.embed_ids(&ids)
    }
}

/// The network and how its output becomes vectors; separate from the tokenizer so batching can
/// be tested with a tiny random network and hand-made token ids.
struct Model {
    bert: BertModel,
    pooling: Pooling,
    pad_id: u32,
    batch_size: usize,
    /// Passes run side by side, one per thread: candle runs only its matrix products on several
    /// threads, the rest of a pass (GELU, softmax, layer norms, copies) on one.
    threads: usize,
}

impl Model {
    /// One unit vector per token sequence, in input order.
    fn embed_ids(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Sorting by length puts texts of similar length in one pass, so short tickets do not
        // pay for padding up to a long one's length.
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len());

        // Enough passes to keep every thread busy, none longer than batch_size.
        let pass_size = sequences
            .len()
            .div_ceil(self.threads.max(1))
            .clamp(1, self.batch_size);
        let passes: Vec<&[usize]> = order.chunks(pass_size).collect();
        let pooled = passes
            .par_iter()
            .map(|pass| {
                let rows: Vec<&[u32]> = pass.iter().map(|&i| sequences[i]).collect();
                self.forward(&rows)
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(EmbedError::Inference)?;

        let mut vectors = vec![Vec::new(); sequences.len()];
        for (pass, pooled) in passes.iter().zip(pooled) {
            for (&i, mut vector) in pass.iter().zip(pooled) {
                normalize(&mut vector)?;
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// One forward pass over `rows`, padded to the longest; returns the pooled vectors.
    fn forward(&self, rows: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            ids.extend_from_slice(row);
            ids.resize(ids.len() + width - row.len(), self.pad_id);
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.resize(mask.len() + width - row.len(), 0);
        }
        let device = &self.bert.device;
        let ids = Tensor::from_vec(ids, (rows.len(), width), device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), width), device)?;
        // Single-segment input: every token is segment 0.
        let segments = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &segments, Some(&mask))?;
        self.pooling.pool(&hidden, &mask)?.to_vec2::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use candle_nn::VarMap;
    use candle_transformers::models::bert::{HiddenAct, PositionEmbeddingType};

    use super::*;

    /// A tiny randomly initialised BERT: its vectors mean nothing, but they are deterministic for
    /// one instance, which is all batching must preserve.
    fn tiny_model(batch_size: usize) -> Model {
        let config = Config {
            vocab_size: 50,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.0,
            max_position_embeddings: 32,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: PositionEmbeddingType::Absolute,
            use_cache: false,
            classifier_dropout: None,
            model_type: Some("bert".into()),
        };
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        Model {
            bert: BertModel::load(vb, &config).unwrap(),
            pooling: Pooling::Mean,
            pad_id: 0,
            batch_size,
            threads: 2,
        }
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn batching_and_padding_do_not_change_vectors() {
        let model = tiny_model(2);
        let sequences: Vec<&[u32]> = vec![
            &[1, 7, 8, 9, 10, 11, 2],
            &[1, 5, 2],
            &[1, 12, 13, 14, 2],
            &[1, 3, 2],
            &[1, 20, 21, 22, 23, 24, 25, 26, 27, 2],
        ];
        let together = model.embed_ids(&sequences).unwrap();
        assert_eq!(together.len(), sequences.len());
        for (sequence, vector) in sequences.iter().zip(&together) {
            let alone = model.embed_ids(&[sequence]).unwrap();
            assert_close(vector, &alone[0]);
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
        // Different texts must not collapse to one vector (a broken mask or pooling would).
        assert!(
            together[1]
                .iter()
                .zip(&together[3])
                .any(|(a, b)| (a - b).abs() > 1e-4)
        );
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

    #[test]
    fn missing_directory_says_how_to_fetch_the_model() {
        let dir = Path::new("/nonexistent/switchboard/model");
        let error = LocalBert::load(dir, LocalBertOptions::default()).unwrap_err();
        assert!(matches!(&error, EmbedError::ModelMissing { dir: d } if d == dir));
        let message = error.to_string();
        assert!(message.contains("scripts/fetch-model.sh"), "{message}");
        assert!(
            message.contains("/nonexistent/switchboard/model"),
            "{message}"
        );
    }

    #[test]
    fn pooling_config_is_read_from_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pooling.json");
        assert_eq!(read_pooling(&path).unwrap(), Pooling::Mean);
        std::fs::write(&path, r#"{"pooling_mode_cls_token": true}"#).unwrap();
        assert_eq!(read_pooling(&path).unwrap(), Pooling::Cls);
        std::fs::write(&path, r#"{"pooling_mode_max_tokens": true}"#).unwrap();
        assert!(matches!(
            read_pooling(&path),
            Err(EmbedError::UnsupportedPooling { .. })
        ));
    }
}
