//! Importing historical tickets from the CSV a ticket system exports: streamed in batches, so a file of
//! any size imports in bounded memory, with rows that lack a required value skipped and reported rather
//! than failing the whole import.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use csv::{ByteRecord, ReaderBuilder};
use switchboard_proto::KnowledgeRecord;

use crate::csv_read::{self, Header};
use crate::error::KnowledgeError;
use crate::point::HISTORY_SOURCE;
use crate::store::KnowledgeBase;
use switchboard_text::timestamp::parse_ms;

/// Rows per upsert: large enough to amortise an update's fixed cost, small enough for steady progress.
const BATCH_ROWS: usize = 512;

/// How many skipped rows the summary names; the count covers them all.
const REPORTED_SKIPS: usize = 10;

/// Which header names hold which fields. Only `text` and `department` are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    pub text: String,
    pub department: String,
    /// The record id; without it a row's id is `<file stem>:<line>`.
    pub id: Option<String>,
    pub created_at: Option<String>,
    /// Used with `created_at` to derive the resolution time when `resolution_minutes` is not given.
    pub resolved_at: Option<String>,
    pub resolution_minutes: Option<String>,
    /// The ticket system's category or issue type; a row with it blank has no problem type.
    pub problem_type: Option<String>,
}

impl Default for CsvColumns {
    fn default() -> Self {
        Self {
            text: "text".to_owned(),
            department: "department".to_owned(),
            id: None,
            created_at: None,
            resolved_at: None,
            resolution_minutes: None,
            problem_type: None,
        }
    }
}

/// Running totals, reported after every batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    pub rows_read: u64,
    pub imported: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows_read: u64,
    pub imported: u64,
    pub skipped: u64,
    /// Imported rows written in Chinese ([`switchboard_text::language`]): whether the sentence model
    /// must read Chinese for its similar tickets to mean anything.
    pub chinese: u64,
    /// The first few skipped rows, in file order, so a user can find and fix them.
    pub first_skipped: Vec<SkippedRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// The line the row starts on, counting the header as line 1.
    pub line: u64,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Missing { column: String },
    NotUtf8 { column: String },
    BadTime { column: String, value: String },
    BadNumber { column: String, value: String },
    ResolvedBeforeCreated,
}

impl fmt::Display for SkippedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.reason {
            SkipReason::Missing { column } => write!(f, "no value in column {column:?}"),
            SkipReason::NotUtf8 { column } => write!(f, "column {column:?} is not UTF-8"),
            SkipReason::BadTime { column, value } => {
                write!(f, "column {column:?}: {value:?} is not a time")
            }
            SkipReason::BadNumber { column, value } => {
                write!(f, "column {column:?}: {value:?} is not a number of minutes")
            }
            SkipReason::ResolvedBeforeCreated => f.write_str("resolved before it was created"),
        }
    }
}

/// Imports `path` into `kb`, calling `progress` after each batch, and flushes the store at the end.
/// Errors only for the file as a whole (unreadable, a configured column missing from the header).
pub async fn import_csv(
    kb: &KnowledgeBase,
    path: &Path,
    columns: &CsvColumns,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportSummary, KnowledgeError> {
    let (path_buf, columns) = (path.to_owned(), columns.clone());
    // File reads block: every read, the header's included, runs on the blocking pool.
    let mut rows = tokio::task::spawn_blocking(move || Rows::open(path_buf, &columns))
        .await
        .map_err(KnowledgeError::Task)??;
    let mut summary = ImportSummary::default();
    loop {
        let (returned, batch) = tokio::task::spawn_blocking(move || {
            let batch = rows.next_batch();
            (rows, batch)
        })
        .await
        .map_err(KnowledgeError::Task)?;
        rows = returned;
        let batch = batch?;
        if batch.rows_read == 0 {
            break;
        }
        summary.rows_read += batch.rows_read;
        summary.skipped += batch.skipped.len() as u64;
        let room = REPORTED_SKIPS.saturating_sub(summary.first_skipped.len());
        summary
            .first_skipped
            .extend(batch.skipped.into_iter().take(room));
        summary.chinese += batch
            .records
            .iter()
            .filter(|r| switchboard_text::language(&r.text) == "zh")
            .count() as u64;
        summary.imported += kb.upsert(batch.records).await? as u64;
        progress(ImportProgress {
            rows_read: summary.rows_read,
            imported: summary.imported,
            skipped: summary.skipped,
        });
    }
    kb.flush().await;
    tracing::info!(
        path = %path.display(),
        rows = summary.rows_read,
        imported = summary.imported,
        skipped = summary.skipped,
        "knowledge base import finished"
    );
    Ok(summary)
}

/// The header's positions of the configured columns, with their names for skip reasons.
struct Layout {
    text: (usize, String),
    department: (usize, String),
    id: Option<(usize, String)>,
    created_at: Option<(usize, String)>,
    resolved_at: Option<(usize, String)>,
    resolution_minutes: Option<(usize, String)>,
    problem_type: Option<(usize, String)>,
}

struct Rows {
    path: PathBuf,
    reader: csv::Reader<File>,
    layout: Layout,
    /// Default ids are `<stem>:<line>`: unique within a file and the same on every re-import of it.
    stem: String,
    row: ByteRecord,
}

struct Batch {
    rows_read: u64,
    records: Vec<KnowledgeRecord>,
    skipped: Vec<SkippedRow>,
}

impl Rows {
    fn open(path: PathBuf, columns: &CsvColumns) -> Result<Self, KnowledgeError> {
        // Flexible: a short row is a row with missing values, skipped and reported like any other.
        let mut reader = csv_read::open(&path, ReaderBuilder::new().flexible(true))?;
        let header = Header::read(&mut reader, &path)?;
        let find = |column: &str| header.find(column).map(|i| (i, column.to_owned()));
        let optional = |column: &Option<String>| column.as_deref().map(find).transpose();
        let layout = Layout {
            text: find(&columns.text)?,
            department: find(&columns.department)?,
            id: optional(&columns.id)?,
            created_at: optional(&columns.created_at)?,
            resolved_at: optional(&columns.resolved_at)?,
            resolution_minutes: optional(&columns.resolution_minutes)?,
            problem_type: optional(&columns.problem_type)?,
        };
        let stem = path
            .file_stem()
            .map_or_else(|| "csv".to_owned(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            path,
            reader,
            layout,
            stem,
            row: ByteRecord::new(),
        })
    }

    fn next_batch(&mut self) -> Result<Batch, KnowledgeError> {
        let mut batch = Batch {
            rows_read: 0,
            records: Vec::with_capacity(BATCH_ROWS),
            skipped: Vec::new(),
        };
        while batch.rows_read < BATCH_ROWS as u64 {
            let line = self.reader.position().line();
            let more = self
                .reader
                .read_byte_record(&mut self.row)
                .map_err(|source| KnowledgeError::Row {
                    path: self.path.clone(),
                    line,
                    source,
                })?;
            if !more {
                break;
            }
            batch.rows_read += 1;
            let line = self.row.position().map_or(0, csv::Position::line);
            match self.record(line) {
                Ok(record) => batch.records.push(record),
                Err(reason) => batch.skipped.push(SkippedRow { line, reason }),
            }
        }
        Ok(batch)
    }

    fn record(&self, line: u64) -> Result<KnowledgeRecord, SkipReason> {
        let layout = &self.layout;
        let text = self.required(&layout.text)?;
        let department = self.required(&layout.department)?;
        let id = match &layout.id {
            Some(column) => self.required(column)?.to_owned(),
            None => format!("{}:{line}", self.stem),
        };
        let problem_type = match &layout.problem_type {
            Some(column) => self.value(column)?.unwrap_or_default().to_owned(),
            None => String::new(),
        };
        let created_at_ms = self.time(layout.created_at.as_ref())?;
        let resolution_minutes = match &layout.resolution_minutes {
            Some(column) => self.minutes(column)?,
            None => match (created_at_ms, self.time(layout.resolved_at.as_ref())?) {
                (Some(created), Some(resolved)) if resolved < created => {
                    return Err(SkipReason::ResolvedBeforeCreated);
                }
                (Some(created), Some(resolved)) => Some((resolved - created) / 60_000),
                _ => None,
            },
        };
        Ok(KnowledgeRecord {
            id,
            text: text.to_owned(),
            department: department.to_owned(),
            created_at_ms: created_at_ms.unwrap_or_default(),
            resolution_minutes,
            source: HISTORY_SOURCE.to_owned(),
            weight: 1.0,
            problem_type,
        })
    }

    /// The trimmed value, `None` when the row has no such field or it is blank.
    fn value(&self, (index, name): &(usize, String)) -> Result<Option<&str>, SkipReason> {
        let Some(bytes) = self.row.get(*index) else {
            return Ok(None);
        };
        let value = std::str::from_utf8(bytes)
            .map_err(|_| SkipReason::NotUtf8 {
                column: name.clone(),
            })?
            .trim();
        Ok((!value.is_empty()).then_some(value))
    }

    fn required(&self, column: &(usize, String)) -> Result<&str, SkipReason> {
        self.value(column)?.ok_or_else(|| SkipReason::Missing {
            column: column.1.clone(),
        })
    }

    fn time(&self, column: Option<&(usize, String)>) -> Result<Option<i64>, SkipReason> {
        let Some(column) = column else {
            return Ok(None);
        };
        let Some(value) = self.value(column)? else {
            return Ok(None);
        };
        parse_ms(value)
            .map(Some)
            .ok_or_else(|| SkipReason::BadTime {
                column: column.1.clone(),
                value: value.to_owned(),
            })
    }

    fn minutes(&self, column: &(usize, String)) -> Result<Option<i64>, SkipReason> {
        let Some(value) = self.value(column)? else {
            return Ok(None);
        };
        let minutes = value
            .parse::<f64>()
            .ok()
            .filter(|m| m.is_finite() && (0.0..9.0e15).contains(m))
            .ok_or_else(|| SkipReason::BadNumber {
                column: column.1.clone(),
                value: value.to_owned(),
            })?;
        // Whole minutes; the range check above keeps the conversion exact.
        Ok(Some(minutes.round() as i64))
    }
}

#[cfg(test)]
mod properties;
