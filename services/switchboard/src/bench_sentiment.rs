//! `switchboard bench-sentiment` and `switchboard train-sentiment`: the trained sentiment classifier on a
//! labelled CSV, measured against the word-list scorer, or trained on the whole file for
//! `sentiment.model_path`.
//!
//! The split is by text alone, so anyone can reproduce it: FNV-1a 64 of the text's UTF-8 bytes, mod 5 == 0
//! scored, the rest fit (`switchboard_sentiment::part`). `--validate` instead splits the fit part again by
//! the next base-5 digit of the hash and scores on that, for choosing settings without the scored part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;
use serde::Serialize;
use switchboard_sentiment::{
    Confusion, Model, Part, Progress, TrainParams, part, score, train, validation_part,
};

#[derive(Debug, Clone)]
pub struct SentimentData {
    pub data: PathBuf,
    pub text_column: String,
    /// 1/0, true/false or positive/negative.
    pub label_column: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SentimentReport {
    /// `score`: the benchmark split; `validate`: the split inside its fit part.
    pub split: &'static str,
    pub rows_fit: usize,
    pub rows_scored: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub training_seconds: f64,
    pub scoring_texts_per_second: f64,
    /// The word-list scorer on the same rows: positive when its sentiment is above 0, negative below, the
    /// fit part's majority label when it found no sentiment word.
    pub lexicon_accuracy: f64,
    pub lexicon_macro_f1: f64,
}

/// Reads `(text, positive)` rows; rows with an empty text are skipped.
pub fn read_labelled(args: &SentimentData) -> anyhow::Result<Vec<(String, bool)>> {
    let path = &args.data;
    let rows = switchboard_knowledge::read_labelled(path, &args.text_column, &args.label_column)?;
    rows.into_iter()
        .map(|row| {
            let positive = match row.label.to_ascii_lowercase().as_str() {
                "1" | "true" | "positive" | "pos" => true,
                "0" | "false" | "negative" | "neg" => false,
                _ => bail!(
                    "{} line {}: {:?} in column {:?} is not 1/0, true/false or positive/negative",
                    path.display(),
                    row.line,
                    row.label,
                    args.label_column
                ),
            };
            Ok((row.text, positive))
        })
        .collect()
}

fn progress_line(p: Progress) {
    match p {
        Progress::Features { done, total } => {
            eprintln!("bench-sentiment: features {done}/{total}");
        }
        Progress::Epoch { epoch, spread } => {
            eprintln!("bench-sentiment: epoch {epoch}, gradient spread {spread:.3}");
        }
    }
}

/// Splits, trains on the fit part, scores the other.
pub fn run(
    args: &SentimentData,
    params: &TrainParams,
    validate: bool,
) -> anyhow::Result<SentimentReport> {
    let rows = read_labelled(args)?;
    let (mut fit, mut scored) = (Vec::new(), Vec::new());
    for (text, positive) in &rows {
        let side = match (part(text), validate) {
            (Part::Score, true) => continue,
            (Part::Fit, true) => validation_part(text),
            (side, false) => side,
        };
        let row = (text.as_str(), *positive);
        match side {
            Part::Fit => fit.push(row),
            Part::Score => scored.push(row),
        }
    }
    if scored.is_empty() {
        bail!("{} leaves no rows to score", args.data.display());
    }
    eprintln!(
        "bench-sentiment: {} rows, {} to fit, {} to score",
        rows.len(),
        fit.len(),
        scored.len()
    );

    let started = Instant::now();
    let model = train(&fit, params, &mut progress_line)?;
    let training_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut confusion = Confusion::default();
    for (text, positive) in &scored {
        confusion.add(model.margin(text) > 0.0, *positive);
    }
    let scoring_seconds = started.elapsed().as_secs_f64();

    let majority = 2 * fit.iter().filter(|(_, p)| *p).count() >= fit.len();
    let mut lexicon = Confusion::default();
    for (text, positive) in &scored {
        let s = score(text).sentiment;
        let predicted = if s == 0.0 { majority } else { s > 0.0 };
        lexicon.add(predicted, *positive);
    }

    Ok(SentimentReport {
        split: if validate { "validate" } else { "score" },
        rows_fit: fit.len(),
        rows_scored: scored.len(),
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        training_seconds,
        scoring_texts_per_second: scored.len() as f64 / scoring_seconds.max(f64::EPSILON),
        lexicon_accuracy: lexicon.accuracy(),
        lexicon_macro_f1: lexicon.macro_f1(),
    })
}

/// Trains on every row of the file and writes the model to `out`; returns the rows used and the seconds.
pub fn train_to_file(
    args: &SentimentData,
    params: &TrainParams,
    out: &Path,
) -> anyhow::Result<(usize, f64)> {
    let rows = read_labelled(args)?;
    let examples: Vec<(&str, bool)> = rows.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let started = Instant::now();
    let model: Model = train(&examples, params, &mut progress_line)?;
    let seconds = started.elapsed().as_secs_f64();
    model.save(out)?;
    Ok((examples.len(), seconds))
}

impl std::fmt::Display for SentimentReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "rows             {} fit, {} scored ({} split)",
            self.rows_fit, self.rows_scored, self.split
        )?;
        writeln!(f, "accuracy         {:.4}", self.accuracy)?;
        writeln!(f, "macro-F1         {:.4}", self.macro_f1)?;
        writeln!(f, "training         {:.1} s", self.training_seconds)?;
        writeln!(
            f,
            "scoring          {:.0} texts/s",
            self.scoring_texts_per_second
        )?;
        write!(
            f,
            "lexicon scorer   accuracy {:.4}, macro-F1 {:.4}",
            self.lexicon_accuracy, self.lexicon_macro_f1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reviews written for this test, sixty of them, so both sides of the split hold some.
    fn write_csv(dir: &Path) -> PathBuf {
        let good = [
            "房间干净",
            "服务热情",
            "味道不错",
            "staff were lovely",
            "fast delivery",
        ];
        let bad = [
            "房间很脏",
            "态度恶劣",
            "饭菜凉了",
            "staff were rude",
            "late delivery",
        ];
        let mut csv = String::from("review,label\n");
        for i in 0..30 {
            csv.push_str(&format!("\"{}，第{i}次\",1\n", good[i % good.len()]));
            csv.push_str(&format!("\"{}，第{i}次\",0\n", bad[i % bad.len()]));
        }
        let path = dir.join("reviews.csv");
        std::fs::write(&path, csv).expect("write csv");
        path
    }

    fn args(data: PathBuf) -> SentimentData {
        SentimentData {
            data,
            text_column: "review".into(),
            label_column: "label".into(),
        }
    }

    fn small() -> TrainParams {
        let defaults = TrainParams::default();
        TrainParams {
            features: switchboard_sentiment::NgramConfig {
                hash_bits: 14,
                ..defaults.features
            },
            ..defaults
        }
    }

    #[test]
    fn benchmarks_and_trains_a_model_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = args(write_csv(dir.path()));
        let report = run(&data, &small(), false).expect("bench");
        assert_eq!(report.rows_fit + report.rows_scored, 60);
        assert!(report.rows_scored > 0 && report.rows_fit > report.rows_scored);
        assert!(report.accuracy >= 0.8, "{report}");
        let out = dir.path().join("sentiment.model");
        let (rows, _) = train_to_file(&data, &small(), &out).expect("train");
        assert_eq!(rows, 60);
        let model = Model::load(&out).expect("model loads");
        assert!(model.sentiment("服务热情，第99次") > 0.0);
        assert!(model.sentiment("态度恶劣，第99次") < 0.0);
    }

    #[test]
    fn a_bad_label_or_column_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "review,label\nok,maybe\n").expect("write");
        let err = read_labelled(&args(path.clone())).expect_err("bad label");
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let err = read_labelled(&SentimentData {
            label_column: "positive".into(),
            ..args(path)
        })
        .expect_err("missing column");
        assert!(format!("{err:#}").contains("positive"), "{err:#}");
    }
}
