//! The learned classifier: a linear SVM over hashed character and word n-grams (and the embedding, when
//! the knowledge base has an embedder), trained on CPU from every record in the knowledge base and
//! updated online by each correction or resolution.
//!
//! It is derived state of the knowledge base, like an index, so it lives beside the store and every
//! holder of the store (the retriever stage, feedback, the bench) shares one model. The knowledge base
//! counts its writes (its generation: with a change feed, the revision of the last write any process
//! announced; see [`crate::changes`]); the model remembers the generation it reflects:
//! - a write of a few records (a correction, a resolution) is learnt in place, by this process when it
//!   made the write and by every other process when the change feed brings it: the SVM, which keeps
//!   its dual, is solved again from there for the departments the records touch, reaching what a
//!   retrain would, and the model moves to the new generation; so is a change of weights, in the
//!   process that made it;
//! - any other change (an import, a write the model missed) leaves the model stale, and the trainer
//!   ([`Classifier::train_in_background`]) retrains it from every record. Tickets never wait for it:
//!   they are scored by the model there is, which is at most one retrain behind.

mod centroids;
mod features;
mod model;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use switchboard_proto::{DepartmentScore, Matches, SimilarTicket};

pub use model::FitReport;
use model::{Example, HeldOut, Model, Sample};

use crate::error::KnowledgeError;
use crate::evidence::{Weighing, best_model_weight};
use crate::store::{KnowledgeBase, Query, StoredRecord};

/// Names the method in every model version; the number moves when the same records would give another
/// model (2: the n-grams hashed by `switchboard-learn`).
pub const METHOD: &str = "ngram-svm-2";

/// How many of the classifier's departments travel with a ticket: the router blends them with the
/// similar tickets' shares, and beyond the first ten the probabilities are too small to matter.
pub const MODEL_SCORES: usize = 10;

/// Held-out records the blend weight is chosen on, at most: each costs a search, and a couple of
/// thousand tell the weights apart as well as more would.
const MAX_BLEND_CASES: usize = 2_000;

/// How long the trainer waits after a change before it retrains, so that a burst of writes costs one
/// retrain.
const RETRAIN_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(200);

/// Between two retrains the trainer waits at least this many times as long as the last one took: during a
/// long import it retrains on the history so far, using at most about a fifth of the time.
const RETRAIN_SPACING: u32 = 4;

/// Searches under way at once while choosing the blend weight.
const BLEND_SEARCHES: usize = 4;

/// The background retraining of [`Classifier::train_in_background`]; dropping it stops the task.
#[derive(Debug)]
pub struct Trainer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Trainer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A shared handle: clones use one model.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: RwLock<State>,
    /// One retrain at a time: a second caller waits for the one under way, then finds it current.
    training: tokio::sync::Mutex<()>,
}

/// What training needs from the router's side: how many similar tickets each ticket gets, and how the
/// router weighs them. The held-out records get as many when the blend weight is chosen, weighed the
/// same way, so the weight suits the blend the router applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingPlan {
    pub neighbours: usize,
    pub weighing: Weighing,
}

#[derive(Debug, Default)]
struct State {
    /// `None` until trained, and when the knowledge base holds fewer than two departments.
    model: Option<Model>,
    /// The store generation the model reflects; `None` before the first training.
    generation: Option<u64>,
    /// When the model was trained and how many records it has learnt online since: its version.
    trained_at_ms: i64,
    learned: u64,
    /// The classifier's part in the router's blend, chosen on the held-out tenth (see [`blend_weight`]).
    model_weight: Option<f32>,
    /// What the last retrain did.
    training: Option<Training>,
}

/// What one retrain did.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    pub records: usize,
    pub departments: usize,
    pub seconds: f64,
    /// `None` when there was no model to fit (fewer than two departments).
    pub fit: Option<FitReport>,
    /// The classifier's part in the router's blend chosen on the held-out tenth; `None` without one.
    pub model_weight: Option<f32>,
}

/// The model's view of one ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelScores {
    /// The most probable departments, best first.
    pub scores: Vec<DepartmentScore>,
    /// Empty when there is no model.
    pub version: String,
    /// See [`Training::model_weight`].
    pub model_weight: Option<f32>,
}

impl Classifier {
    /// Retrains from every record when the store changed since the model was trained; `None` when the
    /// model was already up to date.
    pub async fn refresh(
        &self,
        kb: &KnowledgeBase,
        plan: &TrainingPlan,
    ) -> Result<Option<Training>, KnowledgeError> {
        if self.reflects(kb.generation()) {
            return Ok(None);
        }
        let _turn = self.inner.training.lock().await;
        // Read before the records: a write landing during the scroll leaves the model stale, so the
        // next ticket retrains again instead of trusting a model that may have missed it.
        let generation = kb.generation();
        if self.reflects(generation) {
            return Ok(None);
        }
        let started = Instant::now();
        let records = kb.records().await?;
        let count = records.len();
        let (records, departments, fitted) = tokio::task::spawn_blocking(move || {
            let (departments, fitted) = fit(&records);
            (records, departments, fitted)
        })
        .await
        .map_err(KnowledgeError::Task)?;
        let model_weight = match &fitted {
            Some((model, _, held_out)) => blend_weight(kb, model, &records, held_out, plan).await?,
            None => None,
        };
        let training = Training {
            records: count,
            departments,
            seconds: started.elapsed().as_secs_f64(),
            fit: fitted.as_ref().map(|(_, report, _)| *report),
            model_weight,
        };
        tracing::info!(
            records = count,
            departments,
            seconds = training.seconds,
            holdout_accuracy = ?training.fit.and_then(|f| f.holdout_accuracy),
            temperature = ?training.fit.map(|f| f.temperature),
            dense_weight = ?training.fit.and_then(|f| f.dense_weight),
            model_weight = ?training.model_weight,
            "classifier trained"
        );
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A write learnt in place while this retrain ran moved the model past the generation it read:
        // that model has everything this one has, and more. Installing this one would take the model
        // back a generation, and the next write would find it stale and wait for another retrain.
        if state.generation.is_some_and(|g| g > generation) {
            tracing::debug!(
                generation,
                current = ?state.generation,
                "the model learnt past this retrain in place; it stays"
            );
            return Ok(None);
        }
        *state = State {
            model: fitted.map(|(model, ..)| model),
            generation: Some(generation),
            trained_at_ms: switchboard_runtime::now_ms(),
            learned: 0,
            model_weight,
            training: Some(training.clone()),
        };
        Ok(Some(training))
    }

    /// Keeps the model current for as long as the returned guard lives: retrains whenever the
    /// knowledge base changed in a way the model could not learn in place, one retrain at a time, off
    /// the tickets' path. A failed retrain is logged and tried again on the next change.
    pub fn train_in_background(&self, kb: &KnowledgeBase, plan: TrainingPlan) -> Trainer {
        let (classifier, kb) = (self.clone(), kb.clone());
        let task = tokio::spawn(async move {
            loop {
                let started = Instant::now();
                if let Err(e) = classifier.refresh(&kb, &plan).await {
                    tracing::error!(error = %switchboard_runtime::error_chain(&e), "classifier retrain failed; the current model stays");
                }
                // An import arrives as many writes in a row: waiting a few times as long as the last
                // retrain took keeps retraining to a small share of the CPU however long the burst.
                let pause = (started.elapsed() * RETRAIN_SPACING).max(RETRAIN_DEBOUNCE);
                kb.changed().await;
                tokio::time::sleep(pause).await;
            }
        });
        Trainer { task }
    }

    /// The [`MODEL_SCORES`] most probable departments for the query, by the current model (none before
    /// the first training).
    pub async fn scores(
        &self,
        kb: &KnowledgeBase,
        query: &Query,
    ) -> Result<ModelScores, KnowledgeError> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        // The embedder is part of the model: the same weights over another embedder's vectors would be
        // another model.
        let method = match kb.embedder().map(|e| e.name()) {
            Some(embedder) => format!("{METHOD}+{embedder}"),
            None => METHOD.to_owned(),
        };
        // Featurising (jieba) and scoring every department are CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            let state = inner.state.read().unwrap_or_else(PoisonError::into_inner);
            let Some(model) = &state.model else {
                return ModelScores::default();
            };
            let scores = model
                .predict(&query.text, query.dense.as_deref(), MODEL_SCORES)
                .into_iter()
                .map(|p| DepartmentScore {
                    department: model.classes()[p.class].clone(),
                    probability: p.probability,
                    typicality: Some(p.typicality),
                })
                .collect();
            ModelScores {
                scores,
                version: format!("{method}@{}+{}", state.trained_at_ms, state.learned),
                model_weight: state.model_weight,
            }
        })
        .await
        .map_err(KnowledgeError::Task)
    }

    /// Whether the current model was trained on tickets of `department` (false before the first
    /// training).
    pub fn knows(&self, department: &str) -> bool {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        state
            .model
            .as_ref()
            .is_some_and(|model| model.class(department).is_some())
    }

    /// Folds records just written to the store (with their embeddings, when the store has an
    /// embedder) into the model. `generation` is the store's generation after that write: when the
    /// model reflected the one before, it learns the records and moves up; when it already reflects
    /// `generation`, it has them; before the first training there is nothing to learn into; otherwise
    /// (another write came between, or a department is new to it) it leaves the model stale for the
    /// trainer.
    pub(crate) async fn learn(&self, records: Vec<StoredRecord>, generation: u64) {
        let inner = Arc::clone(&self.inner);
        let learnt = tokio::task::spawn_blocking(move || {
            let mut state = inner.state.write().unwrap_or_else(PoisonError::into_inner);
            // Already learnt (the feed brought this process's own write back), or never trained (a
            // process that only writes, such as feedback alone): nothing to fold in.
            if state.generation.is_none_or(|g| g >= generation) {
                return Some(true);
            }
            if state.generation != generation.checked_sub(1) {
                return None;
            }
            let model = state.model.as_mut()?;
            let examples = records
                .iter()
                .map(|StoredRecord { record, dense }| {
                    Some(Example {
                        id: &record.id,
                        text: &record.text,
                        dense: dense.as_deref(),
                        class: model.class(record.department.trim())?,
                        weight: if record.weight > 0.0 {
                            record.weight
                        } else {
                            1.0
                        },
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            model.learn(&examples);
            state.generation = Some(generation);
            state.learned += records.len() as u64;
            Some(false)
        })
        .await;
        match learnt {
            Ok(Some(false)) => tracing::debug!(generation, "classifier learnt the records"),
            Ok(Some(true)) => {}
            Ok(None) => tracing::info!(
                generation,
                "classifier left stale; it retrains in the background"
            ),
            Err(error) => {
                tracing::error!(%error, "classifier learning failed; it retrains in the background")
            }
        }
    }

    /// Moves records to new weights in place: each change is a stored record and its new weight.
    /// `generation` is the store's generation after the write, as for [`Self::learn`]: a model one
    /// write behind follows; one further behind, or that has not seen one of the records, is left
    /// stale for the trainer.
    pub(crate) async fn reweigh(&self, changes: Vec<(StoredRecord, f32)>, generation: u64) {
        let inner = Arc::clone(&self.inner);
        let followed = tokio::task::spawn_blocking(move || {
            let mut state = inner.state.write().unwrap_or_else(PoisonError::into_inner);
            if state.generation.is_none_or(|g| g >= generation) {
                return true;
            }
            if state.generation != generation.checked_sub(1) {
                return false;
            }
            let Some(model) = state.model.as_mut() else {
                return false;
            };
            let weights: Vec<(&str, f32)> = changes
                .iter()
                .map(|(r, to)| (r.record.id.as_str(), *to))
                .collect();
            if !model.reweigh(&weights) {
                return false;
            }
            state.generation = Some(generation);
            true
        })
        .await;
        match followed {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                generation,
                "classifier left stale; it retrains in the background"
            ),
            Err(error) => {
                tracing::error!(%error, "classifier reweighing failed; it retrains in the background")
            }
        }
    }

    /// What the last retrain did; `None` before the first.
    pub fn last_training(&self) -> Option<Training> {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        state.training.clone()
    }

    /// Whether the model reflects the knowledge base's current generation.
    pub fn is_current(&self, kb: &KnowledgeBase) -> bool {
        self.reflects(kb.generation())
    }

    fn reflects(&self, generation: u64) -> bool {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        state.generation == Some(generation)
    }
}

/// The classifier's part in the router's blend under which the blend gives the held-out records'
/// departments the most probability (see [`best_model_weight`]), each record given
/// its similar tickets (itself left out) and the ranking of the model trained without it. How much
/// the similar tickets add depends on how well the store finds them for this language and embedder,
/// which only the records can tell.
async fn blend_weight(
    kb: &KnowledgeBase,
    model: &Model,
    records: &[StoredRecord],
    held_out: &[HeldOut],
    plan: &TrainingPlan,
) -> Result<Option<f32>, KnowledgeError> {
    let neighbours = plan.neighbours;
    // Evenly spread over the tenth, which is in record order.
    let step = held_out.len().div_ceil(MAX_BLEND_CASES).max(1);
    let held: Vec<(&HeldOut, &StoredRecord)> = held_out
        .iter()
        .step_by(step)
        .map(|h| (h, &records[h.sample]))
        .collect();
    // Each search owns what it needs, and they are collected before streaming: a stream holding the
    // mapping closure across an await is not `Send` for every lifetime, as the stage needs.
    let searches: Vec<_> = held
        .iter()
        .map(|(_, StoredRecord { record, dense })| {
            let kb = kb.clone();
            let query = Query {
                text: record.text.clone(),
                dense: dense.clone(),
            };
            let id = record.id.clone();
            async move {
                let mut similar = kb.similar_to(&query, neighbours + 1).await?;
                similar.retain(|s| s.id != id);
                similar.truncate(neighbours);
                Ok::<_, KnowledgeError>(similar)
            }
        })
        .collect();
    let found: Vec<Vec<SimilarTicket>> = futures::stream::iter(searches)
        .buffered(BLEND_SEARCHES)
        .try_collect()
        .await?;
    let cases: Vec<(Matches, String)> = held
        .into_iter()
        .zip(found)
        .map(|((h, StoredRecord { record, .. }), similar)| {
            let model_scores = h
                .ranked
                .iter()
                .take(MODEL_SCORES)
                .map(|&(class, probability)| DepartmentScore {
                    department: model.classes()[class].clone(),
                    probability,
                    typicality: None,
                })
                .collect();
            let matches = Matches {
                similar,
                model_scores,
                ..Matches::default()
            };
            (matches, record.department.clone())
        })
        .collect();
    // Blending every case under every weight is CPU work: off the async threads.
    let weighing = plan.weighing;
    tokio::task::spawn_blocking(move || {
        best_model_weight(&cases, &weighing, switchboard_runtime::now_ms())
    })
    .await
    .map_err(KnowledgeError::Task)
}

/// The departments found, and the model when there are two or more. Sample weight is the record's
/// weight, so corrections count more here as they do in the similarity evidence. Sample `i` is record
/// `i`.
fn fit(records: &[StoredRecord]) -> (usize, Option<(Model, FitReport, Vec<HeldOut>)>) {
    let mut classes: Vec<String> = records
        .iter()
        .map(|r| r.record.department.clone())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let samples: Vec<Sample> = records
        .iter()
        .map(|StoredRecord { record: r, dense }| Sample {
            id: r.id.clone(),
            groups: features::extract(&r.text, dense.as_deref()),
            class: classes
                .binary_search(&r.department)
                .expect("the classes are every record's department"),
            weight: if r.weight > 0.0 { r.weight } else { 1.0 },
        })
        .collect();
    (classes.len(), Model::fit(classes, &samples))
}
