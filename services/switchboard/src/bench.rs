//! `switchboard bench`: imports a history into a fresh knowledge base, trains its classifier, routes a
//! labelled set through the whole embedded pipeline under a bounded number of tickets in flight, and
//! reports accuracy (overall, in scope, out of scope), macro-F1, automatic routing and its calibration,
//! throughput, latency and peak memory. With `--valid`, a separate labelled set is routed first and the
//! threshold and typicality floor and weight that score best on it are applied to the tickets.

mod cold_start;
mod score;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use prost::Message;
use serde::Serialize;
use switchboard_bus::ConsumerSpec;
use switchboard_embed::Embedder;
use switchboard_intake::{Intake, Submission};
use switchboard_knowledge::{
    ColumnMap, ImportProgress, ImportSummary, KnowledgeBase, TrainingPlan, import_csv,
};
use switchboard_proto::{Outcome, Stage, Ticket};
use switchboard_router::Gate;
use switchboard_runtime::{Subjects, buckets, departments};
use tokio::sync::{Semaphore, mpsc};

pub use cold_start::{ColdStartReport, run_cold_start};
pub use score::{Bin, Fixed, Routed, Scores, best_gate, score};

use crate::measure::{Machine, peak_memory_mib, quantile};
use crate::roles::Roles;
use crate::settings::{BusKind, Settings};

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub history: PathBuf,
    pub tickets: PathBuf,
    /// A labelled set, separate from `tickets`, to choose the threshold and typicality floor and weight on.
    pub valid: Option<PathBuf>,
    /// Parts of the gate fixed instead of taken from `[router]` or chosen on `valid`.
    pub gate: Fixed,
    pub columns: ColumnMap,
    /// Tickets submitted but not yet decided, at most.
    pub in_flight: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub history_rows: u64,
    pub import_seconds: f64,
    pub training_seconds: f64,
    /// The classifier's accuracy on a held-out tenth of the history, trained without it.
    pub model_holdout_accuracy: Option<f32>,
    pub model_temperature: Option<f32>,
    /// The embedding's weight in the classifier against each n-gram group's 1, chosen on that tenth.
    pub model_dense_weight: Option<f32>,
    /// The classifier's part in the router's blend with the similar tickets.
    pub model_blend_weight: f32,
    /// Where it came from: `router.model_weight`, the held-out tenth or the default.
    pub model_blend_weight_from: &'static str,
    pub valid_tickets: usize,
    pub tickets: usize,
    pub threshold: f32,
    /// Where the threshold came from: `--threshold`, `--valid` or `router.threshold`.
    pub threshold_from: &'static str,
    pub min_typicality: f32,
    /// Where the floor came from: `--min-typicality`, `--valid` or `router.min_typicality`.
    pub min_typicality_from: &'static str,
    pub typicality_weight: f32,
    /// Where the weight came from: `--typicality-weight`, `--valid` or `router.typicality_weight`.
    pub typicality_weight_from: &'static str,
    #[serde(flatten)]
    pub scores: Scores,
    pub tickets_per_second: f64,
    /// The embedder alone on the same texts in batches of `embedder.max_batch`, one batch after
    /// another: what the pipeline's throughput compares with. `None` without an embedder.
    pub embedder: Option<String>,
    pub embedder_texts_per_second: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The process's peak resident memory (VmHWM), when the platform reports it.
    pub peak_memory_mib: Option<f64>,
}

struct Gold {
    department: String,
    submitted: Instant,
}

pub(crate) type Decided = mpsc::UnboundedReceiver<(Ticket, Instant)>;

/// The texts of a labelled file, in file order, for a load to submit; none is an error.
pub(crate) fn read_texts(path: &Path, columns: &ColumnMap) -> anyhow::Result<Vec<String>> {
    let texts: Vec<String> = read_labelled(path, columns)?
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    if texts.is_empty() {
        bail!("{} holds no tickets", path.display());
    }
    Ok(texts)
}

/// Reads `text,department` rows (column names as configured); rows with a blank text are skipped, and a
/// blank department is an out-of-scope ticket.
pub fn read_labelled(path: &Path, columns: &ColumnMap) -> anyhow::Result<Vec<(String, String)>> {
    let rows = switchboard_knowledge::read_labelled(path, &columns.text, &columns.department)?;
    Ok(rows.into_iter().map(|row| (row.text, row.label)).collect())
}

pub async fn run(mut settings: Settings, args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let tickets = read_labelled(&args.tickets, &args.columns)?;
    if tickets.is_empty() {
        bail!("{} holds no tickets", args.tickets.display());
    }
    let valid = match &args.valid {
        Some(path) => read_labelled(path, &args.columns)?,
        None => Vec::new(),
    };
    let fixed = args.gate;
    fixed.apply(&mut settings.router);
    settings.router.validate().map_err(|error| {
        anyhow::anyhow!(
            "{error} (--threshold, --min-typicality and --typicality-weight set router.threshold, \
             router.min_typicality and router.typicality_weight)"
        )
    })?;
    let Pipeline {
        running,
        kb,
        intake,
        mut decided,
        summary,
        import_seconds,
        _data: data,
        ..
    } = Pipeline::start(
        &mut settings,
        &args.history,
        &args.columns,
        BusUse::Volatile,
        &[],
    )
    .await?;
    let training = kb.classifier().last_training();
    let fit = training.as_ref().and_then(|t| t.fit);
    let chosen = training.as_ref().and_then(|t| t.model_weight);
    let model_blend_weight = settings.router.weighing().blend_weight(chosen);
    let model_blend_weight_from = match (settings.router.model_weight, chosen) {
        (Some(_), _) => "router.model_weight",
        (None, Some(_)) => "the held-out tenth",
        (None, None) => "the default",
    };

    let runtime_gate = settings.router.gate();
    let (gate, valid_tickets) = if valid.is_empty() {
        (runtime_gate, 0)
    } else {
        let n = valid.len();
        let pass = route_all(&intake, &mut decided, "valid", valid, args, runtime_gate).await?;
        (best_gate(&pass.results, fixed), n)
    };
    let from = |fixed: Option<f32>, flag: &'static str, key: &'static str| match fixed {
        Some(_) => flag,
        None if valid_tickets > 0 => "--valid",
        None => key,
    };
    let threshold_from = from(fixed.threshold, "--threshold", "router.threshold");
    let min_typicality_from = from(
        fixed.min_typicality,
        "--min-typicality",
        "router.min_typicality",
    );
    let typicality_weight_from = from(
        fixed.typicality_weight,
        "--typicality-weight",
        "router.typicality_weight",
    );
    let texts: Vec<String> = tickets.iter().map(|(text, _)| text.clone()).collect();
    let pass = route_all(&intake, &mut decided, "test", tickets, args, runtime_gate).await?;
    running.shutdown().await;
    let embedder_texts_per_second = match kb.embedder() {
        Some(e) => Some(embedder_throughput(e, texts, settings.embedder.max_batch).await?),
        None => None,
    };

    let mut latencies = pass.latencies_ms;
    latencies.sort_by(f64::total_cmp);
    let report = BenchReport {
        machine: Machine::read(),
        history_rows: summary.imported,
        import_seconds,
        training_seconds: training.as_ref().map_or(0.0, |t| t.seconds),
        model_holdout_accuracy: fit.and_then(|f| f.holdout_accuracy),
        model_temperature: fit.map(|f| f.temperature),
        model_dense_weight: fit.and_then(|f| f.dense_weight),
        model_blend_weight,
        model_blend_weight_from,
        valid_tickets,
        tickets: pass.results.len(),
        threshold: gate.threshold,
        threshold_from,
        min_typicality: gate.min_typicality,
        min_typicality_from,
        typicality_weight: gate.typicality_weight,
        typicality_weight_from,
        scores: score(&pass.results, gate),
        tickets_per_second: pass.results.len() as f64 / pass.seconds,
        embedder: kb.embedder().map(|e| e.name().to_owned()),
        embedder_texts_per_second,
        p50_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
        peak_memory_mib: peak_memory_mib(),
    };
    close_store(kb, data).await;
    Ok(report)
}

/// The store writes its segments out when its last handle goes: that must happen before the scratch
/// directory is deleted, or it panics writing into a directory that is gone. Tasks the shutdown
/// stopped may still hold a handle for a moment while they wind down.
pub(crate) async fn close_store(kb: KnowledgeBase, data: tempfile::TempDir) {
    if !kb.close(Duration::from_secs(10)).await {
        tracing::warn!("the knowledge base was still in use 10 s after the shutdown");
    }
    drop(data);
}

/// Every decision published under `subjects`, routed or for review, with the time it arrived here.
pub(crate) async fn decisions(
    bus: &Arc<dyn switchboard_bus::Bus>,
    subjects: &Subjects,
) -> anyhow::Result<Decided> {
    let (tx, decided) = mpsc::unbounded_channel();
    for stage in [Stage::Routed, Stage::Review] {
        let consumer = bus
            .consumer(ConsumerSpec {
                durable: format!("bench-{}", stage.as_str_name().to_lowercase()),
                filter: subjects.stage(stage),
                ack_wait: Duration::from_secs(60),
            })
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(d) = consumer.next().await {
                let _ = d.acker.ack().await;
                if let Ok(t) = Ticket::decode(d.payload)
                    && tx.send((t, Instant::now())).is_err()
                {
                    break;
                }
            }
        });
    }
    Ok(decided)
}

/// Which bus a [`Pipeline`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusUse {
    /// A fresh in-process bus that keeps nothing: what accuracy benches use, so their speed is the
    /// pipeline's, not the disk's.
    Volatile,
    /// The bus the settings name, as `switchboard run` connects to it: the embedded one stored in
    /// the scratch data directory, or NATS.
    Configured,
}

/// A fresh embedded pipeline on a scratch bus and a scratch knowledge base, with a history
/// imported and the classifier trained on it: what every bench routes through.
pub(crate) struct Pipeline {
    pub running: crate::Running,
    pub bus: Arc<dyn switchboard_bus::Bus>,
    pub kb: KnowledgeBase,
    pub intake: Arc<Intake>,
    /// Every decision, routed or for review.
    pub decided: Decided,
    pub summary: ImportSummary,
    pub import_seconds: f64,
    /// Deleted when the pipeline is dropped.
    pub _data: tempfile::TempDir,
}

impl Pipeline {
    /// Starts every role on `settings` (its data directory and listeners made scratch) on the bus
    /// `bus` says, with `duties` as the departments' duty descriptions, imports `history` and trains the classifier before the first ticket, so that
    /// training time is not counted as latency.
    pub(crate) async fn start(
        settings: &mut Settings,
        history: &Path,
        columns: &ColumnMap,
        bus: BusUse,
        duties: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir().context("cannot create a scratch data directory")?;
        settings.data_dir = data.path().to_path_buf();
        settings.http.addr = ([127, 0, 0, 1], 0).into();
        settings.grpc.addr = ([127, 0, 0, 1], 0).into();
        let bus: Arc<dyn switchboard_bus::Bus> = match bus {
            BusUse::Volatile => {
                settings.bus.kind = BusKind::Memory;
                Arc::new(switchboard_bus::memory::MemoryBus::new())
            }
            BusUse::Configured => crate::app::connect_bus(settings).await?,
        };
        // Described before the roles start, so the retriever has them embedded for the first ticket.
        let catalog = bus.kv(buckets::DEPARTMENTS).await?;
        for (department, description) in duties {
            departments::describe(catalog.as_ref(), department, description).await?;
        }
        let running = crate::app::start(settings, &Roles::all(), bus.clone()).await?;
        let kb = running
            .shared
            .kb
            .clone()
            .context("the retriever opened no knowledge base")?;
        let started = Instant::now();
        let summary = import_csv(&kb, history, columns, &mut |p: ImportProgress| {
            eprintln!(
                "import: {} rows read, {} imported, {} skipped",
                p.rows_read, p.imported, p.skipped
            );
        })
        .await
        .with_context(|| format!("importing {}", history.display()))?;
        let import_seconds = started.elapsed().as_secs_f64();
        // The background trainer may have started on the import already; either way this returns
        // once the model is current.
        let plan = TrainingPlan {
            neighbours: settings.retriever.top_k,
            weighing: settings.router.weighing(),
        };
        kb.classifier().refresh(&kb, &plan).await?;

        let decided = decisions(&bus, &Subjects::new(&settings.subject_prefix)).await?;
        let intake = running.intake.clone().context("intake is not running")?;
        Ok(Self {
            running,
            bus,
            kb,
            intake,
            decided,
            summary,
            import_seconds,
            _data: data,
        })
    }

    /// Stops every role, then the store, then deletes the scratch directory.
    pub(crate) async fn stop(self) {
        self.running.shutdown().await;
        close_store(self.kb, self._data).await;
    }

    /// Submits one ticket under the idempotency key `key` and waits for its decision: for replays in
    /// which each ticket must see what the ones before it taught.
    pub(crate) async fn route_one(&mut self, key: String, text: &str) -> anyhow::Result<Ticket> {
        let submission = Submission {
            text: text.as_bytes().to_vec(),
            channel: "api".into(),
            idempotency_key: key.clone(),
            ..Submission::default()
        };
        self.intake
            .submit(submission)
            .await
            .context("submitting a ticket")?;
        let (ticket, _) = tokio::time::timeout(Duration::from_secs(60), self.decided.recv())
            .await
            .context("no decision for 60 s")?
            .context("decision stream ended")?;
        ensure!(
            ticket.idempotency_key == key,
            "decision for another ticket than the one submitted: {}",
            ticket.id
        );
        Ok(ticket)
    }
}

/// Texts per second the embedder alone turns into vectors, batch after batch.
async fn embedder_throughput(
    embedder: &dyn Embedder,
    texts: Vec<String>,
    batch: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let total = texts.len();
    for chunk in texts.chunks(batch.max(1)) {
        embedder
            .embed(chunk.to_vec())
            .await
            .context("embedding the tickets alone")?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

struct Pass {
    results: Vec<Routed>,
    latencies_ms: Vec<f64>,
    seconds: f64,
}

/// Submits `rows` with at most `in_flight` undecided and collects every decision. Checks that each
/// runtime outcome is the one the offline scoring gives at the runtime gate.
async fn route_all(
    intake: &Arc<Intake>,
    decided: &mut Decided,
    name: &'static str,
    rows: Vec<(String, String)>,
    args: &BenchArgs,
    runtime_gate: Gate,
) -> anyhow::Result<Pass> {
    let gold: Arc<Mutex<HashMap<String, Gold>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let total = rows.len();
    let started = Instant::now();
    let submitter = {
        let (gold, permits, intake) = (gold.clone(), permits.clone(), intake.clone());
        tokio::spawn(async move {
            for (i, (text, department)) in rows.into_iter().enumerate() {
                let permit = permits.acquire().await.context("bench stopped")?;
                permit.forget();
                // Keyed by the idempotency key, known before submitting: the decision may arrive before
                // `submit` returns the ticket id.
                let key = format!("bench-{name}-{i}");
                gold.lock().unwrap_or_else(PoisonError::into_inner).insert(
                    key.clone(),
                    Gold {
                        department,
                        submitted: Instant::now(),
                    },
                );
                let submission = Submission {
                    text: text.into_bytes(),
                    channel: "api".into(),
                    idempotency_key: key,
                    ..Submission::default()
                };
                intake
                    .submit(submission)
                    .await
                    .context("submitting a ticket")?;
            }
            anyhow::Ok(())
        })
    };

    let mut results = Vec::with_capacity(total);
    let mut latencies_ms = Vec::with_capacity(total);
    while results.len() < total {
        let (ticket, at) = tokio::time::timeout(Duration::from_secs(60), decided.recv())
            .await
            .context("no decision for 60 s")?
            .context("decision stream ended")?;
        let Some(g) = gold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ticket.idempotency_key)
        else {
            bail!(
                "decision for a ticket the bench did not submit: {}",
                ticket.id
            );
        };
        permits.add_permits(1);
        latencies_ms.push(at.duration_since(g.submitted).as_secs_f64() * 1000.0);
        let d = ticket.decision.unwrap_or_default();
        let routed = Routed {
            gold: g.department,
            department: d.department.clone(),
            confidence: d.confidence,
            typicality: d.typicality,
        };
        ensure!(
            switchboard_router::routes(
                &routed.department,
                routed.confidence,
                routed.typicality,
                runtime_gate
            ) == (d.outcome() == Outcome::Routed),
            "ticket {}: the router's outcome {:?} disagrees with offline scoring at {runtime_gate:?}",
            ticket.id,
            d.outcome()
        );
        results.push(routed);
        if results.len() % 500 == 0 {
            eprintln!("bench {name}: {}/{total} decided", results.len());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    submitter.await.context("submitter panicked")??;
    Ok(Pass {
        results,
        latencies_ms,
        seconds,
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.scores;
        writeln!(f, "machine            {}", self.machine)?;
        writeln!(
            f,
            "history            {} tickets imported in {:.1} s, classifier trained in {:.1} s",
            self.history_rows, self.import_seconds, self.training_seconds
        )?;
        if let Some(accuracy) = self.model_holdout_accuracy {
            writeln!(
                f,
                "classifier         held-out history accuracy {accuracy:.4}, temperature {:.2}{}",
                self.model_temperature.unwrap_or(1.0),
                self.model_dense_weight
                    .map(|w| format!(", embedding weight {w}"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(
            f,
            "blend              classifier weight {} against the similar tickets, from {}",
            self.model_blend_weight, self.model_blend_weight_from
        )?;
        writeln!(
            f,
            "tickets            {} (threshold {:.2} from {}, typicality floor {:.2} from {}, \
             typicality weight {:.2} from {}{})",
            self.tickets,
            self.threshold,
            self.threshold_from,
            self.min_typicality,
            self.min_typicality_from,
            self.typicality_weight,
            self.typicality_weight_from,
            if self.valid_tickets > 0 {
                format!(", {} validation tickets", self.valid_tickets)
            } else {
                String::new()
            }
        )?;
        writeln!(f, "accuracy           {:.4}", s.accuracy)?;
        writeln!(f, "in-scope accuracy  {:.4}", s.in_scope_accuracy)?;
        match s.out_of_scope_recall {
            Some(recall) => writeln!(f, "out-of-scope recall {recall:.4}")?,
            None => writeln!(
                f,
                "out-of-scope recall n/a (no ticket without a department)"
            )?,
        }
        writeln!(f, "macro-F1           {:.4}", s.macro_f1)?;
        writeln!(f, "top-1 accuracy     {:.4}", s.top1_accuracy)?;
        writeln!(
            f,
            "auto-routed        {:.4} of tickets, precision {:.4}",
            s.auto_route_rate, s.auto_route_precision
        )?;
        if let Some(all) = s.reliability.first() {
            write!(
                f,
                "reliability        routed {}: mean confidence {:.3}, precision {:.3} |",
                all.routed, all.mean_confidence, all.precision
            )?;
            for b in s.reliability.iter().skip(1).filter(|b| b.routed > 0) {
                write!(
                    f,
                    " ≥{:.1}: {} at {:.3} vs {:.3}",
                    b.low, b.routed, b.mean_confidence, b.precision
                )?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "throughput         {:.1} tickets/s",
            self.tickets_per_second
        )?;
        match (&self.embedder, self.embedder_texts_per_second) {
            (Some(name), Some(alone)) => writeln!(
                f,
                "embedder           {name}: {alone:.1} texts/s alone; the pipeline runs at {:.0}% of it",
                100.0 * self.tickets_per_second / alone
            )?,
            _ => writeln!(f, "embedder           none (BM25 only)")?,
        }
        writeln!(
            f,
            "latency            p50 {:.1} ms, p99 {:.1} ms",
            self.p50_ms, self.p99_ms
        )?;
        match self.peak_memory_mib {
            Some(mib) => write!(f, "peak memory        {mib:.0} MiB"),
            None => write!(f, "peak memory        n/a"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_tickets_keep_out_of_scope_ones_and_name_a_missing_column() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tickets.csv");
        std::fs::write(
            &path,
            "body,team\nmy card is blocked,cards\nwhat is the weather,\n,loans\n",
        )
        .expect("write");
        let columns = ColumnMap {
            text: "body".into(),
            department: "team".into(),
            ..ColumnMap::default()
        };
        let rows = read_labelled(&path, &columns).expect("read");
        assert_eq!(
            rows,
            [
                ("my card is blocked".to_owned(), "cards".to_owned()),
                ("what is the weather".to_owned(), String::new()),
            ]
        );
        let err = read_labelled(&path, &ColumnMap::default()).expect_err("no text column");
        let message = format!("{err:#}");
        assert!(message.contains("tickets.csv"), "{message}");
        assert!(message.contains("\"text\""), "{message}");
        assert!(message.contains("[\"body\", \"team\"]"), "{message}");
    }
}
