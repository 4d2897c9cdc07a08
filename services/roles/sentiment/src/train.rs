//! Training: NB-SVM (Wang and Manning, "Baselines and Bigrams", 2012), which is strong on sentiment.
//!
//! 1. Each text becomes its set of feature buckets ([`FEATURES`]), a binary vector scaled to unit length
//!    (÷ √n) so long reviews do not outvote short ones.
//! 2. Naive-Bayes log-count ratio per bucket, r = ln((p/‖p‖₁) / (q/‖q‖₁)), p and q the bucket's document
//!    counts among positive and negative texts plus [`TrainParams::nb_alpha`]: how much a bucket leans one
//!    way. Each feature is scaled by its r, so the linear model starts from what naive Bayes knows.
//! 3. The L2-regularised, L2-loss linear SVM of [`switchboard_learn::svm`] on the scaled vectors.
//!
//! The model stores w·r per bucket, so prediction needs neither r nor a second array.

use switchboard_learn::{Counts, NgramConfig, Solver};

use crate::model::Model;

/// What the model sees of a text: hashed character n-grams 1 to 3 over the whole normalised text, plus word
/// unigrams and bigrams, as a set. Character n-grams carry Chinese, where a two- or three-character window
/// is usually a word or the part of one that carries the tone (不错, 太差, 不推荐), whatever jieba decided;
/// word features add the English words and the Chinese words that span more than the window. Windows run
/// across spaces and the text's edges are marked, so an n-gram knows it opens or closes the review.
/// Features are present or absent, not counted: in a short review a repeated word rarely means more, and
/// the naive-Bayes ratios are defined on presence. 2^20 buckets keep collisions rare for the few hundred
/// thousand n-grams of a review corpus while the weights stay a 4 MiB file.
pub(crate) const FEATURES: NgramConfig = NgramConfig {
    hash_bits: 20,
    char_min: 1,
    char_max: 3,
    word_bounded: false,
    word_ngrams: 2,
    han_char_max: None,
    counts: Counts::Presence,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainParams {
    /// The model file records the hash bits and n-gram lengths; whole-text n-grams and presence are
    /// fixed (see [`FEATURES`]).
    pub features: NgramConfig,
    /// SVM cost: higher fits the training texts harder.
    pub c: f32,
    /// Naive-Bayes smoothing count.
    pub nb_alpha: f32,
    /// Passes at most; training stops earlier once the dual is solved to [`TOLERANCE`].
    pub max_epochs: u32,
    /// Seeds the order of each pass.
    pub seed: u64,
}

impl Default for TrainParams {
    /// The published NB-SVM settings (C = 1, α = 1), fixed before measuring.
    fn default() -> Self {
        Self {
            features: FEATURES,
            c: 1.0,
            nb_alpha: 1.0,
            max_epochs: 30,
            seed: 0x5eed,
        }
    }
}

/// LIBLINEAR's default tolerance for the spread of projected gradients over one pass.
const TOLERANCE: f32 = 0.1;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training needs both positive and negative examples; got {positive} positive, {negative} negative"
    )]
    OneClass { positive: usize, negative: usize },
    #[error("invalid training parameter {name}: {problem}")]
    Param {
        name: &'static str,
        problem: &'static str,
    },
}

/// What training is doing, for progress lines on long runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Features { done: usize, total: usize },
    Epoch { epoch: u32, spread: f32 },
}

/// Trains on `(text, positive)` pairs.
pub fn train(
    examples: &[(&str, bool)],
    params: &TrainParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, TrainError> {
    check(params)?;
    let positive = examples.iter().filter(|(_, p)| *p).count();
    let negative = examples.len() - positive;
    if positive == 0 || negative == 0 {
        return Err(TrainError::OneClass { positive, negative });
    }
    let buckets = params.features.buckets();
    let mut docs = Vec::with_capacity(examples.len());
    for (i, (text, _)) in examples.iter().enumerate() {
        docs.push(params.features.extract_set(text));
        if (i + 1) % 2000 == 0 || i + 1 == examples.len() {
            progress(Progress::Features {
                done: i + 1,
                total: examples.len(),
            });
        }
    }
    let positives: Vec<bool> = examples.iter().map(|(_, p)| *p).collect();
    let ratios = nb_ratios(&docs, &positives, buckets, params.nb_alpha);
    // xᵢ's value on bucket b is r[b] / √nᵢ.
    let xs: Vec<Vec<(u32, f32)>> = docs
        .iter()
        .map(|d| {
            let scale = 1.0 / (d.len().max(1) as f32).sqrt();
            d.iter().map(|&b| (b, ratios[b as usize] * scale)).collect()
        })
        .collect();
    let solver = Solver {
        tolerance: TOLERANCE,
        max_passes: params.max_epochs,
        seed: params.seed,
    };
    let costs = vec![params.c; xs.len()];
    let order: Vec<usize> = (0..xs.len()).collect();
    let fitted = solver.fit(buckets, &xs, &positives, &costs, &order, &mut |pass| {
        progress(Progress::Epoch {
            epoch: pass.number,
            spread: pass.spread,
        })
    });
    let weights = fitted
        .weights
        .iter()
        .zip(&ratios)
        .map(|(w, r)| w * r)
        .collect();
    Ok(Model::new(params.features, fitted.bias, weights))
}

fn check(params: &TrainParams) -> Result<(), TrainError> {
    let problem = if !(params.c > 0.0 && params.c.is_finite()) {
        Some(("c", "must be a positive number"))
    } else if !(params.nb_alpha > 0.0 && params.nb_alpha.is_finite()) {
        Some(("nb_alpha", "must be a positive number"))
    } else if params.max_epochs == 0 {
        Some(("max_epochs", "must be at least 1"))
    } else if params.features.word_bounded || params.features.counts != Counts::Presence {
        Some((
            "features",
            "the sentiment model takes whole-text n-grams as a set",
        ))
    } else {
        params.features.problem().map(|p| ("features", p))
    };
    match problem {
        Some((name, problem)) => Err(TrainError::Param { name, problem }),
        None => Ok(()),
    }
}

fn nb_ratios(docs: &[Vec<u32>], positives: &[bool], buckets: usize, alpha: f32) -> Vec<f32> {
    let mut p = vec![f64::from(alpha); buckets];
    let mut q = vec![f64::from(alpha); buckets];
    for (doc, &positive) in docs.iter().zip(positives) {
        let counts = if positive { &mut p } else { &mut q };
        for &b in doc {
            counts[b as usize] += 1.0;
        }
    }
    let (p_sum, q_sum): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter()
        .zip(&q)
        .map(|(p, q)| ((p / p_sum) / (q / q_sum)).ln() as f32)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A handful of reviews written for these tests, in both languages.
    pub(crate) const EXAMPLES: &[(&str, bool)] = &[
        ("房间干净，服务热情，下次还来", true),
        ("早餐丰富，位置方便，很满意", true),
        ("送餐很快，味道不错，推荐", true),
        ("前台小姐姐很耐心，体验很好", true),
        ("性价比高，环境安静，值得推荐", true),
        ("The staff were friendly and the room was spotless", true),
        ("Great food, fast delivery, will order again", true),
        ("Really helpful support, problem solved quickly", true),
        ("房间有异味，隔音太差，不会再来", false),
        ("送餐慢了一个小时，饭菜都凉了", false),
        ("服务态度恶劣，前台爱理不理", false),
        ("菜太咸了，分量也少，很失望", false),
        ("设施陈旧，热水时有时无，不推荐", false),
        ("The room was dirty and the staff were rude", false),
        ("Cold food, late delivery, never again", false),
        ("Terrible support, nobody answered for days", false),
    ];

    pub(crate) fn tiny_params() -> TrainParams {
        TrainParams {
            features: NgramConfig {
                hash_bits: 16,
                ..FEATURES
            },
            ..TrainParams::default()
        }
    }

    pub(crate) fn tiny_model() -> Model {
        train(EXAMPLES, &tiny_params(), &mut |_| {}).expect("tiny model trains")
    }

    #[test]
    fn learns_its_training_sentences_and_generalises_a_little() {
        let model = tiny_model();
        for (text, positive) in EXAMPLES {
            assert_eq!(model.margin(text) > 0.0, *positive, "{text}");
        }
        assert!(model.sentiment("服务热情，很满意") > 0.0);
        assert!(model.sentiment("隔音太差，很失望") < 0.0);
        assert!(model.sentiment("friendly staff, great food") > 0.0);
        assert!(model.sentiment("rude staff and cold food") < 0.0);
    }

    #[test]
    fn training_is_deterministic() {
        assert_eq!(tiny_model(), tiny_model());
    }

    #[test]
    fn refuses_one_class_and_bad_parameters() {
        let positive_only = &EXAMPLES[..3];
        assert!(matches!(
            train(positive_only, &tiny_params(), &mut |_| {}),
            Err(TrainError::OneClass {
                positive: 3,
                negative: 0
            })
        ));
        let params = TrainParams {
            c: 0.0,
            ..tiny_params()
        };
        assert!(matches!(
            train(EXAMPLES, &params, &mut |_| {}),
            Err(TrainError::Param { name: "c", .. })
        ));
        // The model file could not say the features were taken otherwise.
        let mut params = tiny_params();
        params.features.word_bounded = true;
        assert!(matches!(
            train(EXAMPLES, &params, &mut |_| {}),
            Err(TrainError::Param {
                name: "features",
                ..
            })
        ));
    }
}
