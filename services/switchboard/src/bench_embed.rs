//! `switchboard bench-embed`: the local sentence model alone on a file of texts, as the configured
//! embedder runs it (model directory, sequence length, threads), without the pipeline around it.
//! `scripts/bench-embed-reference.sh` runs sentence-transformers on the same texts beside it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use switchboard_embed::{LocalModelOptions, load_local};

use crate::measure::{Machine, peak_memory_mib, quantile};
use crate::settings::EmbedderSettings;

#[derive(Debug, Clone)]
pub struct BenchEmbedArgs {
    pub texts: PathBuf,
    pub text_column: String,
    /// 1: one call per text, as a lone ticket is embedded. More: every text in one call, which the
    /// model sorts by length and runs this many at a time, as a bulk import is embedded.
    pub batch: usize,
    /// The first this many texts only.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedReport {
    pub machine: Machine,
    pub model: String,
    pub threads: usize,
    pub max_sequence_length: usize,
    pub batch: usize,
    pub texts: usize,
    pub mean_chars: f64,
    pub seconds: f64,
    pub texts_per_second: f64,
    /// Per call with `--batch 1`: what one ticket waits for its vector.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub peak_memory_mib: Option<f64>,
}

pub async fn run(
    settings: &EmbedderSettings,
    args: &BenchEmbedArgs,
) -> anyhow::Result<EmbedReport> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let mut texts = switchboard_knowledge::read_texts(&args.texts, &args.text_column)?;
    if let Some(limit) = args.limit {
        texts.truncate(limit);
    }
    if texts.is_empty() {
        bail!(
            "{} holds no texts in column {}",
            args.texts.display(),
            args.text_column
        );
    }
    let options = LocalModelOptions {
        max_sequence_length: settings.max_sequence_length,
        threads: settings.threads,
        name: None,
    };
    let dir = settings.model_dir.clone();
    let model = tokio::task::spawn_blocking(move || load_local(&dir, options))
        .await?
        .with_context(|| {
            format!(
                "loading the sentence model from {} (scripts/fetch-model.sh fetches one)",
                settings.model_dir.display()
            )
        })?;
    // One pass first, untimed: the first call allocates what later ones reuse.
    model.embed(texts[..1].to_vec()).await?;

    let total = texts.len();
    let mean_chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / total as f64;
    let started = Instant::now();
    let mut calls_ms = Vec::new();
    if args.batch == 1 {
        for (i, text) in texts.into_iter().enumerate() {
            let call = Instant::now();
            model.embed(vec![text]).await?;
            calls_ms.push(call.elapsed().as_secs_f64() * 1000.0);
            if (i + 1) % 500 == 0 {
                eprintln!("bench-embed: {}/{total} embedded", i + 1);
            }
        }
    } else {
        model.embed(texts).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    calls_ms.sort_by(f64::total_cmp);
    let percentile = |p| (!calls_ms.is_empty()).then(|| quantile(&calls_ms, p));
    let machine = Machine::read();
    Ok(EmbedReport {
        threads: match settings.threads {
            0 => machine.cores,
            n => n,
        },
        machine,
        model: model.name().to_owned(),
        max_sequence_length: settings.max_sequence_length,
        batch: args.batch,
        texts: total,
        mean_chars,
        seconds,
        texts_per_second: total as f64 / seconds,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
        peak_memory_mib: peak_memory_mib(),
    })
}

impl std::fmt::Display for EmbedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "machine      {}", self.machine)?;
        writeln!(
            f,
            "model        {}, {} threads, {} tokens at most",
            self.model, self.threads, self.max_sequence_length
        )?;
        writeln!(
            f,
            "texts        {} ({:.0} characters on average), batch {}",
            self.texts, self.mean_chars, self.batch
        )?;
        writeln!(
            f,
            "throughput   {:.1} texts/s ({:.2} s)",
            self.texts_per_second, self.seconds
        )?;
        if let (Some(p50), Some(p99)) = (self.p50_ms, self.p99_ms) {
            writeln!(f, "per text     p50 {p50:.2} ms, p99 {p99:.2} ms")?;
        }
        match self.peak_memory_mib {
            Some(mib) => write!(f, "peak memory  {mib:.0} MiB"),
            None => write!(f, "peak memory  n/a"),
        }
    }
}
