//! A trained sentiment model and its file format.
//!
//! The model is linear over the features of [`crate::train::FEATURES`]: margin = Σ w[b] / √n + bias over the n
//! buckets the text lights up (the naive-Bayes ratios of [`crate::train`] are already folded into `w`).
//! Sentiment is tanh(margin), which is 2p − 1 for p = σ(2·margin): a margin of ±1, the edge of the SVM's
//! margin, reads as ±0.76. p is a logistic link of the margin, not a calibrated probability.
//!
//! File, all little-endian: magic `SWBSENT\0` (8 bytes), format version u32, hash_bits u8, char_min u8,
//! char_max u8, word_ngrams u8, bias f32, then 2^hash_bits weights as f32. The length must match exactly.

use std::io::Write;
use std::path::Path;

use switchboard_learn::NgramConfig;

use crate::train::FEATURES;

const MAGIC: &[u8; 8] = b"SWBSENT\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a Switchboard sentiment model (bad magic)")]
    Magic,
    #[error("model format version {found}, this build reads version {VERSION}")]
    Version { found: u32 },
    #[error("invalid feature settings in the header: {0}")]
    Header(&'static str),
    #[error("model is {actual} bytes, its header implies {expected}")]
    Length { expected: usize, actual: usize },
    #[error("model holds a weight that is not a finite number")]
    NotFinite,
}

#[derive(Clone, PartialEq)]
pub struct Model {
    features: NgramConfig,
    bias: f32,
    weights: Vec<f32>,
}

/// A million weights are no use in a log line.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("features", &self.features)
            .field("bias", &self.bias)
            .field("weights", &self.weights.len())
            .finish()
    }
}

impl Model {
    /// `weights` must have one entry per bucket of `features`; [`crate::train`] guarantees it.
    pub(crate) fn new(features: NgramConfig, bias: f32, weights: Vec<f32>) -> Self {
        debug_assert_eq!(weights.len(), features.buckets());
        Self {
            features,
            bias,
            weights,
        }
    }

    /// Positive for a positive text; the SVM's margin edges are ±1.
    pub fn margin(&self, text: &str) -> f32 {
        self.margin_of(&self.features.extract_set(text))
    }

    pub(crate) fn margin_of(&self, buckets: &[u32]) -> f32 {
        if buckets.is_empty() {
            return self.bias;
        }
        let sum: f32 = buckets
            .iter()
            .map(|&b| self.weights.get(b as usize).copied().unwrap_or(0.0))
            .sum();
        sum / (buckets.len() as f32).sqrt() + self.bias
    }

    /// σ(2·margin), in 0..1: above one half means positive.
    pub fn probability(&self, text: &str) -> f32 {
        1.0 / (1.0 + (-2.0 * self.margin(text)).exp())
    }

    /// 2p − 1 = tanh(margin), in −1..1, the scale of `Assessment.sentiment`.
    pub fn sentiment(&self, text: &str) -> f32 {
        self.margin(text).tanh()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 4 * self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        let f = self.features;
        out.extend_from_slice(&[f.hash_bits, f.char_min, f.char_max, f.word_ngrams]);
        out.extend_from_slice(&self.bias.to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(ModelError::Magic);
        }
        let word = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let found = u32::from_le_bytes(word(8));
        if found != VERSION {
            return Err(ModelError::Version { found });
        }
        // The header records what training may vary; the rest is the same in every model.
        let features = NgramConfig {
            hash_bits: bytes[12],
            char_min: bytes[13],
            char_max: bytes[14],
            word_ngrams: bytes[15],
            ..FEATURES
        };
        if let Some(problem) = features.problem() {
            return Err(ModelError::Header(problem));
        }
        let expected = HEADER_LEN + 4 * features.buckets();
        if bytes.len() != expected {
            return Err(ModelError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        let bias = f32::from_le_bytes(word(16));
        let weights: Vec<f32> = bytes[HEADER_LEN..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::NotFinite);
        }
        Ok(Self::new(features, bias, weights))
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Writes to a sibling temporary file and renames it over `path`, so a reader never sees half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let write = |source| ModelError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let mut file = std::fs::File::create(&tmp).map_err(write)?;
        file.write_all(&self.to_bytes()).map_err(write)?;
        file.sync_all().map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Model {
        let features = NgramConfig {
            hash_bits: 8,
            ..FEATURES
        };
        let weights = (0..features.buckets())
            .map(|i| i as f32 / 100.0 - 1.0)
            .collect();
        Model::new(features, 0.25, weights)
    }

    #[test]
    fn round_trips_through_bytes_and_files() {
        let model = tiny();
        assert_eq!(
            Model::from_bytes(&model.to_bytes()).ok(),
            Some(model.clone())
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sentiment.model");
        model.save(&path).expect("save");
        assert_eq!(Model::load(&path).ok(), Some(model));
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let good = tiny().to_bytes();
        assert!(matches!(Model::from_bytes(b"{}"), Err(ModelError::Magic)));
        let mut version = good.clone();
        version[8] = 9;
        assert!(matches!(
            Model::from_bytes(&version),
            Err(ModelError::Version { found: 9 })
        ));
        assert!(matches!(
            Model::from_bytes(&good[..good.len() - 4]),
            Err(ModelError::Length { .. })
        ));
        let mut bits = good.clone();
        bits[12] = 40;
        assert!(matches!(
            Model::from_bytes(&bits),
            Err(ModelError::Header(_))
        ));
        let mut nan = good;
        let at = nan.len() - 4;
        nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            Model::from_bytes(&nan),
            Err(ModelError::NotFinite)
        ));
        let missing = Model::load(Path::new("/nonexistent/sentiment.model"));
        assert!(matches!(missing, Err(ModelError::Read { .. })));
    }

    #[test]
    fn the_features_a_model_file_names_keep_their_buckets() {
        // Computed independently (Python: FNV-1a 64 of the tag and the UTF-8, high half folded in,
        // masked to 20 bits). A change here makes every saved model mean something else: it needs a new
        // VERSION, so that old files are refused instead of misread.
        let buckets = FEATURES.extract_set("Ab  c");
        assert_eq!(
            buckets,
            [
                76556, 174282, 202409, 223894, 414291, 422280, 422664, 528337, 530647, 543513,
                547278, 548279, 548452, 563201, 678405, 920282, 999750
            ]
        );
    }

    #[test]
    fn sentiment_is_two_p_minus_one() {
        let model = tiny();
        for text in ["好", "bad service", ""] {
            let p = model.probability(text);
            assert!(
                (2.0 * p - 1.0 - model.sentiment(text)).abs() < 1e-5,
                "{text}"
            );
        }
    }
}
