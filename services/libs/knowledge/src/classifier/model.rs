//! A linear support-vector machine over the hashed TF-IDF features, one class against the rest, trained
//! by the dual coordinate descent of [`switchboard_learn::svm`] (liblinear's method, behind scikit-learn's
//! `LinearSVC`): it converges to the exact optimum of its objective in a few passes, and the order and
//! seed are fixed, so the same knowledge base always gives the same model. Margins
//! become probabilities through a softmax whose temperature is fitted on a held-out tenth of the
//! knowledge base, so a confidence of 0.8 is right about 80% of the time on tickets like the history.
//! The same tenth chooses how much the dense embedding weighs against the n-grams.

use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;

use rustc_hash::FxHashMap;
use switchboard_learn::{Block, Solver, SplitMix64};

use super::centroids::Centroids;
use super::features::{Group, extract};

/// The SVM's cost of a margin violation against the weights' size (liblinear's C) for a record of
/// weight 1. The feature vectors have norm 1, so this is scale-free; 0.5 to 1 is where text
/// classifiers over TF-IDF usually do best, and corrections, weighing more, cost more.
const COST: f32 = 1.0;
/// Shuffles and the held-out split come from this seed: training is reproducible.
const SEED: u64 = 0x5317_c4b0_a4d5_0001;
/// liblinear's default tolerance; each class's problem gets its own seed (`SEED ^ class`).
const SOLVER: Solver = Solver {
    tolerance: 0.1,
    max_passes: 200,
    seed: SEED,
};
/// The probes' tolerance: a probe only ranks its dense weight by held-out accuracy, and the fit on
/// every sample starts from the chosen probe's duals and goes on to [`SOLVER`]'s tolerance, so a
/// looser band ends each probe passes earlier without moving the final model's optimum. On banking77
/// it cut training from 8.0 to 5.6–5.9 s with accuracy within run-to-run noise on the three labelled
/// sets (README, "Dense retrieval").
const PROBE_TOLERANCE: f32 = 1.0;
/// Classes solved together in one block: their weights for one feature fill a cache line, and each
/// pass reads the samples once for all of them.
const BLOCK: usize = 16;
/// One record in this many per department is held out to fit the temperature.
const HOLDOUT_EVERY: usize = 10;
/// Fewer held-out records than this fit no temperature worth having: the model keeps temperature 1.
const MIN_HOLDOUT: usize = 30;
/// The weights of the dense embedding's group against each lexical group's 1 that fitting tries on the
/// held-out tenth, the default first so it wins ties. How much an embedding adds depends on the
/// embedder and the language: a sentence model trained on English paraphrases the English tickets its
/// n-grams miss, and adds mostly noise to Chinese ones; zero leaves it out.
const DENSE_WEIGHTS: [f32; 4] = [1.0, 0.5, 2.0, 0.0];

/// A trained model with its own feature weighting (which buckets it knows, and their IDF).
#[derive(Clone)]
pub(crate) struct Model {
    classes: Vec<String>,
    class_index: HashMap<String, usize>,
    /// Bucket to row of `weights`; only buckets seen in training or learning have a row. Every entry
    /// of every vector is looked up here, so a fast hash: the keys are hashed n-grams already.
    rows: FxHashMap<u32, u32>,
    idf: Vec<f32>,
    /// The IDF of a bucket no record had: the highest there is, so an unknown n-gram still weighs in
    /// the norm and dilutes the known ones, lowering confidence in unfamiliar text.
    unseen_idf: f32,
    /// Row-major: `rows × classes`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    temperature: f32,
    /// The dense group's weight against each lexical group's 1, chosen on the held-out tenth.
    dense_weight: f32,
    /// Where each department's tickets lie, in the same features.
    centroids: Centroids,
    /// What the last fit saw, kept so that learning in place reaches the model a retrain would.
    memory: Memory,
}

/// Every record the model was fitted on or has learnt since, as the solver sees it, and each class's
/// dual. A record learnt, replaced or reweighed in place changes the optimum of only the classes whose
/// margin it is inside (its dual above zero, or about to be); the solver goes on from the dual it left
/// there, over every record, and reaches in a few passes the model a retrain would reach in many. A
/// single coordinate step on the record alone cannot: the other records never push back, so a
/// correction raised its department on every word it has, common ones too, and (measured in
/// `switchboard bench-drift`) took other departments' tickets with it.
#[derive(Clone, Default)]
struct Memory {
    /// Record id to its sample.
    ids: HashMap<String, usize>,
    xs: Vec<Vec<(u32, f32)>>,
    classes: Vec<usize>,
    /// The solver's cost of each sample: its weight times [`COST`].
    costs: Vec<f32>,
    /// By class: the samples whose dual is above zero, with it, by sample. The rest are zero, and in a
    /// one-against-the-rest problem most samples are well outside every other class's margin.
    alphas: Vec<Vec<(u32, f32)>>,
}

impl Memory {
    /// The samples of `samples` (sample `i` is record `i`) over their vectors.
    fn new(samples: &[Sample], xs: Vec<Vec<(u32, f32)>>) -> Self {
        Self {
            ids: samples
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            xs,
            classes: samples.iter().map(|s| s.class).collect(),
            costs: samples.iter().map(|s| COST * s.weight).collect(),
            alphas: Vec::new(),
        }
    }

    /// Sample `i`'s side in `class`'s problem.
    fn side(&self, i: usize, class: usize) -> f32 {
        if self.classes[i] == class { 1.0 } else { -1.0 }
    }

    /// The dual of `sample` in `class`'s problem.
    fn alpha(&self, class: usize, sample: usize) -> f32 {
        let duals = &self.alphas[class];
        duals
            .binary_search_by_key(&(sample as u32), |&(i, _)| i)
            .map_or(0.0, |at| duals[at].1)
    }

    fn dense_alphas(&self, class: usize) -> Vec<f32> {
        let mut alpha = vec![0.0; self.xs.len()];
        for &(i, a) in &self.alphas[class] {
            alpha[i as usize] = a;
        }
        alpha
    }
}

/// A record to learn in place: its id (a record learnt again replaces its sample), text, embedding,
/// class and weight.
pub(crate) struct Example<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub dense: Option<&'a [f32]>,
    pub class: usize,
    pub weight: f32,
}

/// Millions of weights say nothing in a log line: the shape does.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("classes", &self.classes.len())
            .field("rows", &self.rows.len())
            .field("temperature", &self.temperature)
            .field("dense_weight", &self.dense_weight)
            .finish_non_exhaustive()
    }
}

/// One training record: its id, its text's feature groups, class and sample weight.
pub(crate) struct Sample {
    pub id: String,
    pub groups: [Group; 3],
    pub class: usize,
    pub weight: f32,
}

/// The model's view of one class for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prediction {
    pub class: usize,
    pub probability: f32,
    /// See [`Centroids::typicality`].
    pub typicality: f32,
}

/// A held-out record's departments as the model trained without it ranks them, best first, with their
/// probabilities: what the knowledge base tries its blend weights on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldOut {
    /// Index into the samples.
    pub sample: usize,
    pub ranked: Vec<(usize, f32)>,
}

/// One candidate dense weight tried on the held-out tenth: how it did, and its logits there.
struct Probe {
    right: usize,
    loss: f32,
    temperature: f32,
    weight: f32,
    logits: Vec<Vec<f32>>,
    /// Each class's dual, by sample.
    duals: Vec<Vec<f32>>,
}

/// What fitting found out, for logs and the bench.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitReport {
    /// Accuracy on the held-out tenth, of the model trained without it; `None` when too few records.
    pub holdout_accuracy: Option<f32>,
    pub holdout: usize,
    pub temperature: f32,
    /// The dense embedding's weight against each lexical group's 1; `None` without embeddings.
    pub dense_weight: Option<f32>,
}

/// Where a sample's vector keeps its embedding, so that a fit weighs it anew in place for each dense
/// weight it tries rather than vectorising every sample again: the bucket lookups are most of
/// vectorising's cost (about 0.1 s a pass over banking77's 10,003 records).
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// The embedding's first entry; the lexical groups' entries come before it.
    dense_from: u32,
    /// How many lexical groups had any bucket, seen or not.
    lexical_groups: u8,
    has_dense: bool,
}

impl Shape {
    /// The vector's norm before [`Model::vectorise`] scales it to 1, at dense weight `dense_weight`.
    fn total(&self, dense_weight: f32) -> f32 {
        let dense = if self.has_dense { dense_weight } else { 0.0 };
        (f32::from(self.lexical_groups) + dense * dense).sqrt()
    }

    /// Scales `x`, vectorised at dense weight `from`, to what vectorising at `to` gives. `from` must
    /// not be 0 where the sample has an embedding: its entries are gone.
    fn reweigh(&self, x: &mut Vec<(u32, f32)>, from: f32, to: f32) {
        let (old, new) = (self.total(from), self.total(to));
        if old <= 0.0 || new <= 0.0 {
            x.clear();
            return;
        }
        let (lexical, dense) = x.split_at_mut(self.dense_from as usize);
        lexical.iter_mut().for_each(|(_, v)| *v *= old / new);
        if to > 0.0 {
            let scale = to / from * old / new;
            dense.iter_mut().for_each(|(_, v)| *v *= scale);
        } else {
            x.truncate(self.dense_from as usize);
        }
    }
}

/// The samples' vectors at one dense weight, and where each keeps its embedding: the probes and the
/// final fit weigh them in turn.
struct Weighed {
    memory: Memory,
    shapes: Vec<Shape>,
    at: f32,
}

impl Weighed {
    fn new(model: &Model, samples: &[Sample]) -> Self {
        let (xs, shapes) = model.vectorise_all(samples);
        Self {
            memory: Memory::new(samples, xs),
            shapes,
            at: model.dense_weight,
        }
    }

    /// Brings the vectors to `model`'s dense weight: in place, or by vectorising again where weight 0
    /// dropped the embeddings' entries.
    fn weigh(&mut self, model: &Model, samples: &[Sample]) {
        let to = model.dense_weight;
        if to == self.at {
            return;
        }
        if self.at > 0.0 {
            for (x, shape) in self.memory.xs.iter_mut().zip(&self.shapes) {
                shape.reweigh(x, self.at, to);
            }
        } else {
            // One sample at a time, so that the old vectors go as the new ones come rather than
            // both sets being held at once.
            for ((x, shape), sample) in self.memory.xs.iter_mut().zip(&mut self.shapes).zip(samples)
            {
                (*x, *shape) = model.vectorise_shaped(&sample.groups);
            }
        }
        self.at = to;
    }
}

impl Model {
    /// Fits on every sample: first without a stratified tenth, once per candidate weight of the dense
    /// group, to choose that weight and fit the temperature on the tenth; then on all. Returns the
    /// tenth's predictions by the chosen model trained without it (none when too few records to hold
    /// out). `None` with fewer than two classes, where there is nothing to decide between.
    pub(crate) fn fit(
        classes: Vec<String>,
        samples: &[Sample],
    ) -> Option<(Self, FitReport, Vec<HeldOut>)> {
        if classes.len() < 2 || samples.is_empty() {
            return None;
        }
        let mut model = Self::empty(classes, samples);
        let dense = samples.iter().any(|s| !s.groups[2].is_empty());
        let holdout = holdout(samples);
        let mut report = FitReport {
            holdout_accuracy: None,
            holdout: holdout.len(),
            temperature: 1.0,
            dense_weight: dense.then_some(model.dense_weight),
        };
        let mut held_out = Vec::new();
        // The chosen probe's duals, where the fit on every sample starts: the held-out tenth joins at
        // zero, a few passes from that fit's optimum.
        let mut start = None;
        let mut weighed: Option<Weighed> = None;
        if holdout.len() >= MIN_HOLDOUT {
            let held: std::collections::HashSet<usize> = holdout.iter().copied().collect();
            let train: Vec<usize> = (0..samples.len()).filter(|i| !held.contains(i)).collect();
            let gold: Vec<(usize, f32)> = holdout
                .iter()
                .map(|&i| (samples[i].class, samples[i].weight))
                .collect();
            let candidates = if dense {
                &DENSE_WEIGHTS[..]
            } else {
                &DENSE_WEIGHTS[..1]
            };
            // The most accurate on the tenth; between equals, the lower log-loss at its temperature.
            // Each probe starts from the last one's duals: another weight of the embedding moves the
            // optimum only a little, so it is a few passes away rather than a fit from zero.
            let mut best: Option<Probe> = None;
            let mut last = None;
            for &weight in candidates {
                let mut probe = model.clone();
                probe.dense_weight = weight;
                let weighed = weighed.get_or_insert_with(|| Weighed::new(&probe, samples));
                weighed.weigh(&probe, samples);
                let memory = &weighed.memory;
                let started = std::time::Instant::now();
                let duals = probe.train(memory, &train, last.take(), PROBE_TOLERANCE);
                let logits: Vec<Vec<f32>> = holdout
                    .iter()
                    .map(|&i| probe.logits(&memory.xs[i]))
                    .collect();
                let right = logits
                    .iter()
                    .zip(&gold)
                    .filter(|(l, (c, _))| argmax(l) == *c)
                    .count();
                let (temperature, loss) = fit_temperature(&logits, &gold);
                tracing::debug!(
                    weight,
                    right,
                    seconds = started.elapsed().as_secs_f32(),
                    "classifier probe"
                );
                if best
                    .as_ref()
                    .is_none_or(|b| right > b.right || (right == b.right && loss < b.loss))
                {
                    best = Some(Probe {
                        right,
                        loss,
                        temperature,
                        weight,
                        logits,
                        duals: duals.clone(),
                    });
                }
                last = Some(duals);
            }
            if let Some(Probe {
                right,
                temperature,
                weight,
                logits,
                duals,
                ..
            }) = best
            {
                start = Some(duals);
                report.holdout_accuracy = Some(right as f32 / holdout.len() as f32);
                report.temperature = temperature;
                model.dense_weight = weight;
                report.dense_weight = dense.then_some(weight);
                held_out = holdout
                    .iter()
                    .zip(logits)
                    .map(|(&sample, logits)| HeldOut {
                        sample,
                        ranked: rank(logits, temperature),
                    })
                    .collect();
            }
        }
        let mut memory = match weighed {
            Some(mut weighed) => {
                weighed.weigh(&model, samples);
                weighed.memory
            }
            None => Memory::new(samples, model.vectorise_all(samples).0),
        };
        let all: Vec<usize> = (0..samples.len()).collect();
        let started = std::time::Instant::now();
        let alphas = model.train(&memory, &all, start, SOLVER.tolerance);
        tracing::debug!(
            seconds = started.elapsed().as_secs_f32(),
            "classifier fit on every sample"
        );
        memory.alphas = alphas.into_iter().map(sparse).collect();
        model.temperature = report.temperature;
        let classes: Vec<usize> = samples.iter().map(|s| s.class).collect();
        model.centroids = Centroids::fit(&memory.xs, &classes, model.classes.len());
        model.memory = memory;
        Some((model, report, held_out))
    }

    /// Rows and IDF from every sample's buckets, weights at zero.
    fn empty(classes: Vec<String>, samples: &[Sample]) -> Self {
        let mut rows = FxHashMap::default();
        let mut df: Vec<u32> = Vec::new();
        for s in samples {
            for &(bucket, _) in s.groups.iter().flatten() {
                let next = rows.len() as u32;
                let row = *rows.entry(bucket).or_insert(next);
                if row == next {
                    df.push(0);
                }
                df[row as usize] += 1;
            }
        }
        // scikit-learn's smoothed IDF: as if one extra document held every term.
        let n = samples.len() as f32;
        let idf = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let k = classes.len();
        let class_index = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Self {
            class_index,
            weights: vec![0.0; df.len() * k],
            bias: vec![0.0; k],
            rows,
            idf,
            unseen_idf: (1.0 + n).ln() + 1.0,
            classes,
            temperature: 1.0,
            dense_weight: DENSE_WEIGHTS[0],
            centroids: Centroids::default(),
            memory: Memory::default(),
        }
    }

    pub(crate) fn classes(&self) -> &[String] {
        &self.classes
    }

    pub(crate) fn class(&self, department: &str) -> Option<usize> {
        self.class_index.get(department).copied()
    }

    /// TF-IDF, each group L2-normalised and scaled by its weight (1 for the lexical groups, the dense
    /// weight for the embedding), the whole scaled to norm 1. Buckets the model has no row for count in
    /// their group's norm and are then dropped: their weights would be zero.
    fn vectorise(&self, groups: &[Group; 3]) -> Vec<(u32, f32)> {
        self.vectorise_shaped(groups).0
    }

    /// [`Model::vectorise`], and where the vector keeps its embedding.
    fn vectorise_shaped(&self, groups: &[Group; 3]) -> (Vec<(u32, f32)>, Shape) {
        let weights = [1.0, 1.0, self.dense_weight];
        let mut shape = Shape {
            dense_from: 0,
            lexical_groups: groups[..2].iter().filter(|g| !g.is_empty()).count() as u8,
            has_dense: !groups[2].is_empty(),
        };
        let total = shape.total(self.dense_weight);
        // Sized for every entry up front: grown by doubling, a knowledge base's vectors held up to
        // twice their size, the largest part of a fit's peak memory (measured with heaptrack).
        let mut out = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        if total <= 0.0 {
            return (out, shape);
        }
        for (i, (group, weight)) in groups.iter().zip(weights).enumerate() {
            if i == 2 {
                shape.dense_from = out.len() as u32;
            }
            let weighted: Vec<(Option<u32>, f32)> = group
                .iter()
                .map(|&(bucket, tf)| match self.rows.get(&bucket) {
                    Some(&row) => (Some(row), tf * self.idf[row as usize]),
                    None => (None, tf * self.unseen_idf),
                })
                .collect();
            let norm = weighted.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
            if norm > 0.0 && weight > 0.0 {
                let scale = weight / (norm * total);
                out.extend(
                    weighted
                        .into_iter()
                        .filter_map(|(row, v)| row.map(|r| (r, v * scale))),
                );
            }
        }
        (out, shape)
    }

    fn vectorise_all(&self, samples: &[Sample]) -> (Vec<Vec<(u32, f32)>>, Vec<Shape>) {
        samples
            .iter()
            .map(|s| self.vectorise_shaped(&s.groups))
            .unzip()
    }

    fn logits(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let k = self.classes.len();
        let mut logits = self.bias.clone();
        for &(row, v) in x {
            let w = &self.weights[row as usize * k..(row as usize + 1) * k];
            for (l, w) in logits.iter_mut().zip(w) {
                *l += w * v;
            }
        }
        logits
    }

    /// The `limit` most probable classes of `text` (with its embedding, when the model was trained
    /// with them), best first, each with how typical the text is of the class's records.
    pub(crate) fn predict(
        &self,
        text: &str,
        dense: Option<&[f32]>,
        limit: usize,
    ) -> Vec<Prediction> {
        let x = self.vectorise(&extract(text, dense));
        // Typicality costs a pass over the ticket's features per class: only for those returned.
        rank(self.logits(&x), self.temperature)
            .into_iter()
            .take(limit)
            .map(|(class, probability)| Prediction {
                class,
                probability,
                typicality: self.centroids.typicality(&x, class),
            })
            .collect()
    }

    /// Fits every class against the rest on the samples of `memory` in `order`, starting from the
    /// duals `start` (by class, then sample; zero for samples outside `order`) or from zero. Returns
    /// each class's dual, by sample, fitted to `tolerance` (see [`Solver::tolerance`]).
    fn train(
        &mut self,
        memory: &Memory,
        order: &[usize],
        start: Option<Vec<Vec<f32>>>,
        tolerance: f32,
    ) -> Vec<Vec<f32>> {
        self.weights.fill(0.0);
        self.bias.fill(0.0);
        let k = self.classes.len();
        let jobs = match start {
            // Any duals at or above zero are a feasible start, and the solver converges from there to
            // the one optimum; the weights are what the duals give over these vectors.
            Some(duals) => {
                for (class, alpha) in duals.iter().enumerate() {
                    for (i, &a) in alpha.iter().enumerate().filter(|(_, a)| **a > 0.0) {
                        let d = a * memory.side(i, class);
                        for &(row, v) in &memory.xs[i] {
                            self.weights[row as usize * k + class] += d * v;
                        }
                        self.bias[class] += d;
                    }
                }
                duals.into_iter().enumerate().collect()
            }
            None => (0..k)
                .map(|class| (class, vec![0.0; memory.xs.len()]))
                .collect(),
        };
        self.solve(memory, order, jobs, tolerance)
            .into_iter()
            .map(|(_, alpha)| alpha)
            .collect()
    }

    /// Runs the solver for each job's class (one against the rest, from its weights and the job's
    /// dual, over the samples in `order`) to the optimum. The classes go in blocks of [`BLOCK`], solved
    /// together (see [`Block`]), the blocks spread over the cores: each is its own problem, sharing only
    /// the read-only samples. Blocks and seeds follow the jobs, not the cores, so every machine fits
    /// the same model. Returns the jobs with their duals moved, in the order given.
    fn solve(
        &mut self,
        memory: &Memory,
        order: &[usize],
        jobs: Vec<(usize, Vec<f32>)>,
        tolerance: f32,
    ) -> Vec<(usize, Vec<f32>)> {
        struct Part {
            classes: Vec<usize>,
            weights: Vec<f32>,
            bias: Vec<f32>,
            alphas: Vec<Vec<f32>>,
        }
        let k = self.classes.len();
        let rows = self.idf.len();
        let mut parts: Vec<std::sync::Mutex<Part>> = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let (classes, alphas): (Vec<usize>, Vec<Vec<f32>>) = jobs.by_ref().take(BLOCK).unzip();
            let weights = (0..rows)
                .flat_map(|r| classes.iter().map(move |&c| (r, c)))
                .map(|(r, c)| self.weights[r * k + c])
                .collect();
            let bias = classes.iter().map(|&c| self.bias[c]).collect();
            parts.push(std::sync::Mutex::new(Part {
                classes,
                weights,
                bias,
                alphas,
            }));
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(parts.len())
            .max(1);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while let Some(part) =
                        parts.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let mut part = part.lock().unwrap_or_else(PoisonError::into_inner);
                        let Part {
                            classes,
                            weights,
                            bias,
                            alphas,
                        } = &mut *part;
                        let solver = Solver {
                            seed: SEED ^ classes[0] as u64,
                            tolerance,
                            ..SOLVER
                        };
                        let block = Block {
                            classes,
                            weights,
                            bias,
                            alphas,
                        };
                        solver.resume(
                            &memory.xs,
                            &memory.classes,
                            &memory.costs,
                            order,
                            block,
                            &mut |_| {},
                        );
                    }
                });
            }
        });
        parts
            .into_iter()
            .flat_map(|part| {
                let part = part.into_inner().unwrap_or_else(PoisonError::into_inner);
                let b = part.classes.len();
                for (j, &class) in part.classes.iter().enumerate() {
                    for row in 0..rows {
                        self.weights[row * k + class] = part.weights[row * b + j];
                    }
                    self.bias[class] = part.bias[j];
                }
                part.classes
                    .into_iter()
                    .zip(part.alphas)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Learns records in place: each joins (or, learnt before under its id, replaces) its sample at its
    /// own cost (its weight times [`COST`]), and every class whose optimum that changes is solved again
    /// from where it was (see [`Memory`]). Buckets the model has not seen get rows, so new wording is
    /// learnt too.
    pub(crate) fn learn(&mut self, examples: &[Example<'_>]) {
        let k = self.classes.len();
        let mut touched = BTreeSet::new();
        for e in examples {
            let groups = extract(e.text, e.dense);
            for &(bucket, _) in groups.iter().flatten() {
                if !self.rows.contains_key(&bucket) {
                    let row = self.idf.len();
                    self.rows.insert(bucket, row as u32);
                    self.idf.push(self.unseen_idf);
                    self.weights.extend(std::iter::repeat_n(0.0, k));
                }
            }
            let x = self.vectorise(&groups);
            self.centroids.add(&x, e.class);
            let sample = match self.memory.ids.get(e.id) {
                Some(&i) => {
                    // The old sample leaves every problem it had a part in.
                    touched.extend(self.forget(i));
                    i
                }
                None => {
                    let i = self.memory.xs.len();
                    self.memory.ids.insert(e.id.to_owned(), i);
                    self.memory.xs.push(Vec::new());
                    self.memory.classes.push(e.class);
                    self.memory.costs.push(0.0);
                    i
                }
            };
            // A class whose margin the sample is outside keeps its optimum: its dual stays 0.
            for (class, margin) in self.logits(&x).into_iter().enumerate() {
                let y = if class == e.class { 1.0 } else { -1.0 };
                if y * margin < 1.0 {
                    touched.insert(class);
                }
            }
            self.memory.xs[sample] = x;
            self.memory.classes[sample] = e.class;
            self.memory.costs[sample] = COST * e.weight;
        }
        self.resolve(touched);
    }

    /// Moves records the model knows (by id) to new weights in place: each class in whose problem one
    /// has a part (its dual above zero) is solved again from where it was. `false`, changing nothing,
    /// when a record is unknown to the model: only a retrain can weigh it.
    pub(crate) fn reweigh(&mut self, changes: &[(&str, f32)]) -> bool {
        let Some(samples) = changes
            .iter()
            .map(|(id, _)| self.memory.ids.get(*id).copied())
            .collect::<Option<Vec<usize>>>()
        else {
            return false;
        };
        let mut touched = BTreeSet::new();
        for (&sample, &(_, weight)) in samples.iter().zip(changes) {
            self.memory.costs[sample] = COST * weight;
            touched.extend(
                (0..self.classes.len()).filter(|&class| self.memory.alpha(class, sample) > 0.0),
            );
        }
        self.resolve(touched);
        true
    }

    /// Takes sample `i`'s part out of every class's weights and dual; returns the classes it was in.
    fn forget(&mut self, i: usize) -> Vec<usize> {
        let k = self.classes.len();
        let mut left = Vec::new();
        for class in 0..k {
            let duals = &mut self.memory.alphas[class];
            let Ok(at) = duals.binary_search_by_key(&(i as u32), |&(s, _)| s) else {
                continue;
            };
            let (_, alpha) = duals.remove(at);
            let y = self.memory.side(i, class);
            for &(row, v) in &self.memory.xs[i] {
                self.weights[row as usize * k + class] -= alpha * y * v;
            }
            self.bias[class] -= alpha * y;
            left.push(class);
        }
        left
    }

    /// Solves the `touched` classes again from their duals, over every sample the model knows.
    fn resolve(&mut self, touched: BTreeSet<usize>) {
        if touched.is_empty() {
            return;
        }
        let jobs = touched
            .into_iter()
            .map(|class| (class, self.memory.dense_alphas(class)))
            .collect();
        let memory = std::mem::take(&mut self.memory);
        let all: Vec<usize> = (0..memory.xs.len()).collect();
        let solved = self.solve(&memory, &all, jobs, SOLVER.tolerance);
        self.memory = memory;
        for (class, alpha) in solved {
            self.memory.alphas[class] = sparse(alpha);
        }
    }
}

/// A dual by sample, as its samples above zero.
fn sparse(alpha: Vec<f32>) -> Vec<(u32, f32)> {
    alpha
        .into_iter()
        .enumerate()
        .filter(|&(_, a)| a > 0.0)
        .map(|(i, a)| (i as u32, a))
        .collect()
}

/// Per department, every [`HOLDOUT_EVERY`]-th record in a seeded shuffle: a stratified tenth.
fn holdout(samples: &[Sample]) -> Vec<usize> {
    let mut by_class: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_class.entry(s.class).or_default().push(i);
    }
    let mut classes: Vec<_> = by_class.into_iter().collect();
    classes.sort_unstable_by_key(|(c, _)| *c);
    let mut rng = SplitMix64::new(SEED ^ 0xff);
    let mut held = Vec::new();
    for (_, mut members) in classes {
        rng.shuffle(&mut members);
        held.extend(
            members
                .into_iter()
                .enumerate()
                .filter(|(n, _)| n % HOLDOUT_EVERY == HOLDOUT_EVERY - 1)
                .map(|(_, i)| i),
        );
    }
    held.sort_unstable();
    held
}

/// The temperature minimising the weighted log-loss of the held-out logits: golden-section search over
/// its logarithm (the loss is unimodal in it), between 1/100 and 100: SVM margins lie around ±1, so
/// the temperature that makes them probabilities is usually well below 1. Returns the temperature and
/// the loss at it.
fn fit_temperature(logits: &[Vec<f32>], gold: &[(usize, f32)]) -> (f32, f32) {
    let loss = |log_t: f32| -> f32 {
        let t = log_t.exp();
        logits
            .iter()
            .zip(gold)
            .map(|(l, &(c, w))| {
                let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = l.iter().map(|v| ((v - max) / t).exp()).sum();
                w * (sum.ln() - (l[c] - max) / t)
            })
            .sum()
    };
    let (mut lo, mut hi) = (-(100f32.ln()), 100f32.ln());
    let phi = (5f32.sqrt() - 1.0) / 2.0;
    for _ in 0..40 {
        let a = hi - phi * (hi - lo);
        let b = lo + phi * (hi - lo);
        if loss(a) < loss(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    let log_t = (lo + hi) / 2.0;
    (log_t.exp(), loss(log_t))
}

/// Classes by probability at `temperature`, best first (of equals, the lower index).
fn rank(mut logits: Vec<f32>, temperature: f32) -> Vec<(usize, f32)> {
    for l in &mut logits {
        *l /= temperature;
    }
    softmax(&mut logits);
    let mut ranked: Vec<(usize, f32)> = logits.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rows: &[(&str, usize)]) -> Vec<Sample> {
        rows.iter()
            .enumerate()
            .map(|(i, &(text, class))| Sample {
                id: format!("row-{i}"),
                groups: extract(text, None),
                class,
                weight: 1.0,
            })
            .collect()
    }

    const ROWS: &[(&str, usize)] = &[
        ("I was charged twice for my subscription", 0),
        ("refund the duplicate payment on my card", 0),
        ("the invoice amount is wrong", 0),
        ("an extra charge on my bank statement", 0),
        ("my parcel has not arrived yet", 1),
        ("the courier lost my package", 1),
        ("tracking shows no update for my delivery", 1),
        ("the box arrived damaged", 1),
        ("我的会员费被重复扣款了", 0),
        ("快递一直没有送到", 1),
    ];

    fn model() -> Model {
        let (m, report, held_out) =
            Model::fit(vec!["billing".into(), "delivery".into()], &samples(ROWS)).expect("fits");
        assert_eq!(report.holdout_accuracy, None, "too few records to hold out");
        assert!(held_out.is_empty());
        m
    }

    /// A vector reweighed in place is the vector vectorised at the new weight, down to weight 0 (the
    /// embedding's entries dropped) and for a sample without an embedding.
    #[test]
    fn reweighing_in_place_gives_what_vectorising_at_the_weight_gives() {
        let with = |text: &str, dense: Option<&[f32]>| Sample {
            id: text.into(),
            groups: extract(text, dense),
            class: 0,
            weight: 1.0,
        };
        let samples = vec![
            with("my card was charged twice", Some(&[0.6, -0.8, 0.0])),
            with("parcel lost", Some(&[0.1, 0.2, 0.3])),
            with("no embedding here", None),
        ];
        let mut model = Model::empty(vec!["a".into(), "b".into()], &samples);
        let mut at = 1.0;
        model.dense_weight = at;
        let (mut xs, shapes) = model.vectorise_all(&samples);
        for to in [0.5, 2.0, 0.0] {
            model.dense_weight = to;
            for ((x, shape), sample) in xs.iter_mut().zip(&shapes).zip(&samples) {
                shape.reweigh(x, at, to);
                let expected = model.vectorise(&sample.groups);
                assert_eq!(x.len(), expected.len(), "{} at {to}", sample.id);
                for (got, want) in x.iter().zip(&expected) {
                    assert_eq!(got.0, want.0);
                    assert!(
                        (got.1 - want.1).abs() < 1e-6,
                        "{} at {to}: {got:?} {want:?}",
                        sample.id
                    );
                }
            }
            at = to;
        }
    }

    #[test]
    fn learns_the_training_set_with_probabilities_that_sum_to_one() {
        let m = model();
        for &(text, class) in ROWS {
            let p = m.predict(text, None, usize::MAX);
            assert_eq!(p[0].class, class, "{text}: {p:?}");
            let sum: f32 = p.iter().map(|p| p.probability).sum();
            assert!((sum - 1.0).abs() < 1e-4);
        }
        assert_eq!(m.predict("refund my double charge", None, 1)[0].class, 0);
        let parcel = m.predict("包裹还没送到", None, 2);
        assert_eq!(parcel[0].class, 1);
        // Like the delivery tickets, unlike the billing ones.
        assert!(parcel[0].typicality > parcel[1].typicality, "{parcel:?}");
    }

    #[test]
    fn training_is_reproducible() {
        let (a, b) = (model(), model());
        assert_eq!(
            a.predict("charged for a parcel", None, usize::MAX),
            b.predict("charged for a parcel", None, usize::MAX)
        );
    }

    fn example(id: &str, text: &'static str, class: usize, weight: f32) -> Example<'static> {
        Example {
            id: Box::leak(id.to_owned().into_boxed_str()),
            text,
            dense: None,
            class,
            weight,
        }
    }

    /// The top class and its probability for every text, by two models, agree.
    fn assert_close(a: &Model, b: &Model, texts: &[&str]) {
        for text in texts {
            let (pa, pb) = (a.predict(text, None, 1)[0], b.predict(text, None, 1)[0]);
            assert_eq!(pa.class, pb.class, "{text}");
            assert!(
                (pa.probability - pb.probability).abs() < 0.02,
                "{text}: {} in place, {} retrained",
                pa.probability,
                pb.probability
            );
        }
    }

    fn texts() -> Vec<&'static str> {
        ROWS.iter().map(|&(t, _)| t).collect()
    }

    #[test]
    fn learning_in_place_reaches_what_a_retrain_would() {
        let mut m = model();
        // Every word of it is known, so the retrain's IDF is the same as the model's.
        let text = "my parcel amount is wrong";
        let before = m.predict(text, None, 1)[0].class;
        let target = 1 - before;
        m.learn(&[example("new", text, target, 3.0)]);
        assert_eq!(m.predict(text, None, 1)[0].class, target);
        let mut rows = samples(ROWS);
        rows.push(Sample {
            id: "new".into(),
            groups: extract(text, None),
            class: target,
            weight: 3.0,
        });
        let (retrained, ..) =
            Model::fit(vec!["billing".into(), "delivery".into()], &rows).expect("fits");
        let mut all = texts();
        all.push(text);
        assert_close(&m, &retrained, &all);
        // Learnt again under its id, the record is replaced, not added: back to its first class.
        m.learn(&[example("new", text, before, 3.0)]);
        assert_eq!(m.predict(text, None, 1)[0].class, before);
        assert_eq!(m.memory.xs.len(), ROWS.len() + 1);
    }

    #[test]
    fn a_lighter_record_counts_less_as_in_a_retrain() {
        let text = ROWS[0].0;
        let p = |m: &Model| m.predict(text, None, usize::MAX)[0].probability;
        let mut m = model();
        let trained = p(&m);
        assert!(m.reweigh(&[("row-0", 0.05)]));
        assert!(p(&m) < trained, "{} < {trained}", p(&m));
        let mut light = samples(ROWS);
        light[0].weight = 0.05;
        let (retrained, ..) =
            Model::fit(vec!["billing".into(), "delivery".into()], &light).expect("fits");
        assert_close(&m, &retrained, &texts());
        // And back: the record's weight restored, it counts as before.
        assert!(m.reweigh(&[("row-0", 1.0)]));
        assert_close(&m, &model(), &texts());
        // A record the model never saw cannot be moved in place.
        assert!(!m.reweigh(&[("row-0", 0.5), ("unknown", 0.5)]));
    }

    /// 900 records of 3 classes: the class shows in the text's words, in the embedding, or both, and
    /// the other carries only noise.
    fn mixed_samples(words_tell: bool, dense_tells: bool) -> Vec<Sample> {
        let mut rng = SplitMix64::new(7);
        let mut noise = move || (rng.next_u64() % 1000) as f32 / 1000.0 - 0.5;
        (0..900)
            .map(|i| {
                let class = i % 3;
                // Noise words come from a small vocabulary, so the model learns chance associations.
                let mut text = format!("w{} w{}", rng_word(i), rng_word(i * 31 + 5));
                // The telling word names the class nine times in ten, the next class otherwise.
                if words_tell {
                    let topic = if i % 10 == 9 { (class + 1) % 3 } else { class };
                    text.push_str(&format!(" topic{topic}"));
                }
                let dense: Vec<f32> = (0..6)
                    .map(|d| noise() + if dense_tells && d == class { 0.5 } else { 0.0 })
                    .collect();
                Sample {
                    id: format!("mixed-{i}"),
                    groups: extract(&text, Some(&dense)),
                    class,
                    weight: 1.0,
                }
            })
            .collect()
    }

    fn rng_word(seed: usize) -> u64 {
        SplitMix64::new(seed as u64).next_u64() % 12
    }

    fn classes3() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    #[test]
    fn the_held_out_tenth_chooses_how_much_the_embedding_weighs() {
        let (_, report, _) = Model::fit(classes3(), &mixed_samples(false, true)).expect("fits");
        assert_eq!(report.dense_weight, Some(2.0), "{report:?}");
        let samples = mixed_samples(true, false);
        let (_, report, held_out) = Model::fit(classes3(), &samples).expect("fits");
        assert!(report.dense_weight < Some(1.0), "{report:?}");
        // The tenth's predictions are those the accuracy was measured on.
        assert_eq!(held_out.len(), report.holdout);
        let right = held_out
            .iter()
            .filter(|h| h.ranked[0].0 == samples[h.sample].class)
            .count();
        assert_eq!(
            report.holdout_accuracy,
            Some(right as f32 / held_out.len() as f32)
        );
        let total: f32 = held_out[0].ranked.iter().map(|&(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
    }

    #[test]
    fn one_class_fits_nothing() {
        assert!(Model::fit(vec!["only".into()], &samples(&[("a b c", 0)])).is_none());
    }

    #[test]
    fn temperature_fit_sharpens_underconfident_logits() {
        // Always right with small margins: the log-loss falls as the temperature drops.
        let logits = vec![vec![0.2, 0.0]; 50];
        let gold = vec![(0, 1.0); 50];
        assert!(fit_temperature(&logits, &gold).0 < 0.1);
        // Right only half the time: sharper would cost more than it gains.
        let mixed: Vec<(usize, f32)> = (0..50).map(|i| (i % 2, 1.0)).collect();
        assert!(fit_temperature(&logits, &mixed).0 > 5.0);
    }
}
