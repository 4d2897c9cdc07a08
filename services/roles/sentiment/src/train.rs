//! Training: NB-SVM (Wang and Manning, "Baselines and Bigrams", 2012), which is strong on sentiment.
//!
//! 1. Each text becomes its set of feature buckets ([`crate::features`]), a binary vector scaled to unit
//!    length (÷ √n) so long reviews do not outvote short ones.
//! 2. Naive-Bayes log-count ratio per bucket, r = ln((p/‖p‖₁) / (q/‖q‖₁)), p and q the bucket's document
//!    counts among positive and negative texts plus [`TrainParams::nb_alpha`]: how much a bucket leans one
//!    way. Each feature is scaled by its r, so the linear model starts from what naive Bayes knows.
//! 3. An L2-regularised, L2-loss linear SVM on the scaled vectors, solved by dual coordinate descent (Hsieh
//!    et al. 2008, the LIBLINEAR default): no learning rate to tune, deterministic for a given seed, and a few
//!    passes converge. The bias is a weight on a constant feature 1, regularised like the others.
//!
//! The model stores w·r per bucket, so prediction needs neither r nor a second array.

use crate::features::FeatureConfig;
use crate::model::Model;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainParams {
    pub features: FeatureConfig,
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
            features: FeatureConfig::default(),
            c: 1.0,
            nb_alpha: 1.0,
            max_epochs: 30,
            seed: 0x5eed,
        }
    }
}

/// LIBLINEAR's stopping rule: the spread of projected gradients over one pass.
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
        docs.push(params.features.extract(text));
        if (i + 1) % 2000 == 0 || i + 1 == examples.len() {
            progress(Progress::Features {
                done: i + 1,
                total: examples.len(),
            });
        }
    }
    let labels: Vec<f32> = examples
        .iter()
        .map(|(_, p)| if *p { 1.0 } else { -1.0 })
        .collect();
    let ratios = nb_ratios(&docs, &labels, buckets, params.nb_alpha);
    let (w, bias) = dual_cd(&docs, &labels, &ratios, params, progress);
    let weights = w.iter().zip(&ratios).map(|(w, r)| w * r).collect();
    Ok(Model::new(params.features, bias, weights))
}

fn check(params: &TrainParams) -> Result<(), TrainError> {
    let problem = if !(params.c > 0.0 && params.c.is_finite()) {
        Some(("c", "must be a positive number"))
    } else if !(params.nb_alpha > 0.0 && params.nb_alpha.is_finite()) {
        Some(("nb_alpha", "must be a positive number"))
    } else if params.max_epochs == 0 {
        Some(("max_epochs", "must be at least 1"))
    } else {
        params.features.problem().map(|p| ("features", p))
    };
    match problem {
        Some((name, problem)) => Err(TrainError::Param { name, problem }),
        None => Ok(()),
    }
}

fn nb_ratios(docs: &[Vec<u32>], labels: &[f32], buckets: usize, alpha: f32) -> Vec<f32> {
    let mut p = vec![f64::from(alpha); buckets];
    let mut q = vec![f64::from(alpha); buckets];
    for (doc, &y) in docs.iter().zip(labels) {
        let counts = if y > 0.0 { &mut p } else { &mut q };
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

/// Dual coordinate descent for the L2-loss SVM: for each example in turn, the exact minimiser of the dual
/// along its coordinate, keeping w = Σ αᵢ yᵢ xᵢ up to date.
fn dual_cd(
    docs: &[Vec<u32>],
    labels: &[f32],
    ratios: &[f32],
    params: &TrainParams,
    progress: &mut dyn FnMut(Progress),
) -> (Vec<f32>, f32) {
    let diag = 0.5 / params.c;
    // xᵢ's value on bucket b is r[b] / √nᵢ, plus the constant bias feature 1.
    let scale: Vec<f32> = docs
        .iter()
        .map(|d| 1.0 / (d.len().max(1) as f32).sqrt())
        .collect();
    let q_diag: Vec<f32> = docs
        .iter()
        .zip(&scale)
        .map(|(d, s)| {
            d.iter()
                .map(|&b| (ratios[b as usize] * s).powi(2))
                .sum::<f32>()
                + 1.0
                + diag
        })
        .collect();
    let mut w = vec![0.0f32; ratios.len()];
    let mut bias = 0.0f32;
    let mut alpha = vec![0.0f32; docs.len()];
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut rng = SplitMix(params.seed);
    for epoch in 1..=params.max_epochs {
        shuffle(&mut order, &mut rng);
        let (mut pg_max, mut pg_min) = (f32::NEG_INFINITY, f32::INFINITY);
        for &i in &order {
            let (doc, y, s) = (&docs[i], labels[i], scale[i]);
            let dot: f32 = doc
                .iter()
                .map(|&b| w[b as usize] * ratios[b as usize])
                .sum::<f32>()
                * s
                + bias;
            let g = y * dot - 1.0 + diag * alpha[i];
            let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / q_diag[i]).max(0.0);
                let step = (alpha[i] - old) * y;
                for &b in doc {
                    w[b as usize] += step * ratios[b as usize] * s;
                }
                bias += step;
            }
        }
        let spread = pg_max - pg_min;
        progress(Progress::Epoch { epoch, spread });
        if spread <= TOLERANCE {
            break;
        }
    }
    (w, bias)
}

/// SplitMix64: a tiny, well-mixed generator, enough for shuffling and the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Fisher–Yates.
fn shuffle(items: &mut [usize], rng: &mut SplitMix) {
    for i in (1..items.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
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
            features: FeatureConfig {
                hash_bits: 16,
                ..FeatureConfig::default()
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
    }
}
