//! Reading CSV by column name: the header every CSV reader here finds its columns in (the history import
//! and the labelled sets the benches score on), and the `(text, label)` rows of a labelled set. Errors
//! name the file, and the line or the missing column.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use csv::{Reader, ReaderBuilder, StringRecord};

use crate::error::KnowledgeError;

/// A CSV file's header, its names cleaned, for finding configured columns in.
#[derive(Debug)]
pub(crate) struct Header {
    path: PathBuf,
    names: Vec<String>,
}

impl Header {
    /// Reads the first record of `reader` as the header.
    pub(crate) fn read<R: io::Read>(
        reader: &mut Reader<R>,
        path: &Path,
    ) -> Result<Self, KnowledgeError> {
        let names = reader
            .byte_headers()
            .map_err(|source| KnowledgeError::Csv {
                path: path.to_owned(),
                source,
            })?
            .iter()
            // Spreadsheet exports start with a BOM; the csv crate strips it in most cases but not when
            // it straddles a read buffer, so the first name is cleaned here as well.
            .map(|name| {
                String::from_utf8_lossy(name)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_owned()
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            names,
        })
    }

    /// The position of `column` (compared trimmed), or an error naming it and listing the header.
    pub(crate) fn find(&self, column: &str) -> Result<usize, KnowledgeError> {
        self.names
            .iter()
            .position(|name| name == column.trim())
            .ok_or_else(|| KnowledgeError::MissingColumn {
                path: self.path.clone(),
                column: column.to_owned(),
                header: self.names.clone(),
            })
    }
}

/// Opens `path` for reading; a missing file keeps its `NotFound` cause.
pub(crate) fn open(path: &Path, builder: &ReaderBuilder) -> Result<Reader<File>, KnowledgeError> {
    let file = File::open(path).map_err(|source| KnowledgeError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(builder.from_reader(file))
}

/// One row of a labelled set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledRow {
    /// The line the row starts on, counting the header as line 1, for errors about its label.
    pub line: u64,
    /// As written: the text is what a split hashes, so it is not trimmed.
    pub text: String,
    /// Trimmed; empty where the row has none (an out-of-scope ticket, for the bench).
    pub label: String,
}

/// Reads the `text_column` and `label_column` of every row of `path` whose text is not blank, in file
/// order. Every row must have as many fields as the header: a row that does not, or that is not UTF-8,
/// is an error naming its line, not a row silently skipped from a benchmark.
pub fn read_labelled(
    path: &Path,
    text_column: &str,
    label_column: &str,
) -> Result<Vec<LabelledRow>, KnowledgeError> {
    let mut reader = open(path, &ReaderBuilder::new())?;
    let header = Header::read(&mut reader, path)?;
    let (text, label) = (header.find(text_column)?, header.find(label_column)?);
    let mut rows = Vec::new();
    let mut record = StringRecord::new();
    loop {
        // Where the next record starts, for an error about it; a record read keeps the same position.
        let line = reader.position().line();
        let more = reader
            .read_record(&mut record)
            .map_err(|source| KnowledgeError::Row {
                path: path.to_owned(),
                line,
                source,
            })?;
        if !more {
            break;
        }
        let row_text = record.get(text).unwrap_or_default();
        if row_text.trim().is_empty() {
            continue;
        }
        rows.push(LabelledRow {
            line: record.position().map_or(line, csv::Position::line),
            text: row_text.to_owned(),
            label: record.get(label).unwrap_or_default().trim().to_owned(),
        });
    }
    Ok(rows)
}

/// The `column` of every row of `path` whose text is not blank, in file order, with the checks of
/// [`read_labelled`] (which it is, labelled by the text itself).
pub fn read_texts(path: &Path, column: &str) -> Result<Vec<String>, KnowledgeError> {
    Ok(read_labelled(path, column, column)?
        .into_iter()
        .map(|row| row.text)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use switchboard_errors::{ErrorKind, ServiceError};

    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write csv");
        path
    }

    #[test]
    fn rows_are_read_by_column_name_with_their_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = "\u{feff}id, department ,text\n\
                   1,cards,my card is blocked\n\
                   2,, \n\
                   3,,\"a question\nover two lines\"\n\
                   4, loans ,  rate too high\n";
        let path = write(dir.path(), "tickets.csv", csv);
        let rows = read_labelled(&path, "text", "department").expect("read");
        let row = |line, text: &str, label: &str| LabelledRow {
            line,
            text: text.to_owned(),
            label: label.to_owned(),
        };
        assert_eq!(
            rows,
            [
                row(2, "my card is blocked", "cards"),
                row(4, "a question\nover two lines", ""),
                row(6, "  rate too high", "loans"),
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named_with_the_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "reviews.csv", "review,label\nok,1\n");
        let err = read_labelled(&path, "review", "positive").expect_err("no such column");
        assert!(
            matches!(&err, KnowledgeError::MissingColumn { column, .. } if column == "positive"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("reviews.csv"), "{message}");
        assert!(message.contains("\"positive\""), "{message}");
        assert!(message.contains("[\"review\", \"label\"]"), "{message}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn a_bad_row_is_located() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "short.csv",
            "text,department\nfine,cards\nno department\n",
        );
        let err = read_labelled(&path, "text", "department").expect_err("short row");
        assert!(
            matches!(&err, KnowledgeError::Row { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{} line 3", path.display())),
            "{err}"
        );
        assert!(err.source().is_some(), "the csv error is kept");

        let path = dir.path().join("latin1.csv");
        std::fs::write(&path, b"text,department\ncaf\xe9,cards\n").expect("write");
        let err = read_labelled(&path, "text", "department").expect_err("not UTF-8");
        assert!(
            matches!(&err, KnowledgeError::Row { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_file_keeps_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err =
            read_labelled(&dir.path().join("nope.csv"), "text", "label").expect_err("missing file");
        assert!(
            matches!(&err, KnowledgeError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
