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
use crate::store::KnowledgeBase;
use mapping::Mapping;

mod database;
mod mapping;

pub use database::{
    DatabaseImport, DatabaseImportError, DatabaseQuery, IMPORTS_BUCKET, import_database,
};

/// Rows per upsert: large enough to amortise an update's fixed cost, small enough for steady progress.
const BATCH_ROWS: usize = 512;

/// How many skipped rows the summary names; the count covers them all.
const REPORTED_SKIPS: usize = 10;

/// Which of a source's columns (a CSV file's header, a database query's result) hold which fields. Only
/// `text` and `department` are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub text: String,
    pub department: String,
    /// The record id; without it a CSV row's id is `<file stem>:<line>`, a database row's a digest of
    /// its text, department and creation time.
    pub id: Option<String>,
    pub created_at: Option<String>,
    /// Used with `created_at` to derive the resolution time when `resolution_minutes` is not given.
    pub resolved_at: Option<String>,
    pub resolution_minutes: Option<String>,
    /// The ticket system's category or issue type; a row with it blank has no problem type.
    pub problem_type: Option<String>,
}

impl Default for ColumnMap {
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
    /// The line a CSV row starts on, counting the header as line 1; a database row's number in the
    /// query's result this import read, from 1.
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
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

impl ImportSummary {
    /// Stores a batch's records and counts the batch.
    async fn commit(&mut self, kb: &KnowledgeBase, batch: Batch) -> Result<(), KnowledgeError> {
        self.rows_read += batch.rows_read;
        self.skipped += batch.skipped.len() as u64;
        let room = REPORTED_SKIPS.saturating_sub(self.first_skipped.len());
        self.first_skipped
            .extend(batch.skipped.into_iter().take(room));
        self.chinese += batch
            .records
            .iter()
            .filter(|r| switchboard_text::language(&r.text) == "zh")
            .count() as u64;
        self.imported += kb.upsert(batch.records).await? as u64;
        Ok(())
    }

    fn progress(&self) -> ImportProgress {
        ImportProgress {
            rows_read: self.rows_read,
            imported: self.imported,
            skipped: self.skipped,
        }
    }
}

/// Imports `path` into `kb`, calling `progress` after each batch, and flushes the store at the end.
/// Errors only for the file as a whole (unreadable, a configured column missing from the header).
pub async fn import_csv(
    kb: &KnowledgeBase,
    path: &Path,
    columns: &ColumnMap,
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
        summary.commit(kb, batch).await?;
        progress(summary.progress());
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

struct Rows {
    path: PathBuf,
    reader: csv::Reader<File>,
    mapping: Mapping,
    /// Default ids are `<stem>:<line>`: unique within a file and the same on every re-import of it.
    stem: String,
    row: ByteRecord,
}

#[derive(Default)]
struct Batch {
    rows_read: u64,
    records: Vec<KnowledgeRecord>,
    skipped: Vec<SkippedRow>,
}

impl Rows {
    fn open(path: PathBuf, columns: &ColumnMap) -> Result<Self, KnowledgeError> {
        // Flexible: a short row is a row with missing values, skipped and reported like any other.
        let mut reader = csv_read::open(&path, ReaderBuilder::new().flexible(true))?;
        let header = Header::read(&mut reader, &path)?;
        let mapping = Mapping::resolve(columns, |name| header.find(name))?;
        let stem = path
            .file_stem()
            .map_or_else(|| "csv".to_owned(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            path,
            reader,
            mapping,
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
            match self.mapping.record(&self.row) {
                Ok(mut record) => {
                    if record.id.is_empty() {
                        record.id = format!("{}:{line}", self.stem);
                    }
                    batch.records.push(record);
                }
                Err(reason) => batch.skipped.push(SkippedRow { line, reason }),
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod properties;
