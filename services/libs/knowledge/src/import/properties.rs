//! Property tests of reading a history CSV for import, the part that needs no store: any file is read
//! to its end or stopped by an error naming the file and the line; every skipped row names its line and
//! its column; and rows written by a CSV writer (quotes, commas and line breaks in the text included)
//! come back as written, less the surrounding blanks.

use std::path::Path;

use proptest::prelude::*;

use super::{ColumnMap, Rows, SkipReason, SkippedRow};

fn columns() -> ColumnMap {
    ColumnMap {
        id: Some("id".into()),
        created_at: Some("created_at".into()),
        resolved_at: Some("resolved_at".into()),
        problem_type: Some("problem_type".into()),
        ..ColumnMap::default()
    }
}

const HEADER: &str = "id,text,department,created_at,resolved_at,problem_type\n";

/// Every row of `path`, or the error that stopped the reading.
fn read_all(path: &Path) -> Result<(Vec<super::KnowledgeRecord>, Vec<SkippedRow>), String> {
    let mut rows = Rows::open(path.to_owned(), &columns()).map_err(|e| e.to_string())?;
    let (mut records, mut skipped) = (Vec::new(), Vec::new());
    loop {
        let batch = rows.next_batch().map_err(|e| e.to_string())?;
        if batch.rows_read == 0 {
            return Ok((records, skipped));
        }
        records.extend(batch.records);
        skipped.extend(batch.skipped);
    }
}

fn names_a_column(row: &SkippedRow) -> bool {
    let known = [
        "id",
        "text",
        "department",
        "created_at",
        "resolved_at",
        "problem_type",
    ];
    match &row.reason {
        SkipReason::Missing { column }
        | SkipReason::NotUtf8 { column }
        | SkipReason::BadTime { column, .. }
        | SkipReason::BadNumber { column, .. } => known.contains(&column.as_str()),
        SkipReason::ResolvedBeforeCreated => true,
    }
}

/// CSV-ish bytes: the header's own separators and quotes, line breaks, text and invalid UTF-8.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b",".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(b"2026-12-01T10:30:00Z".to_vec()),
        "\\PC{0,8}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_file_is_read_or_stopped_by_an_error_naming_its_line(body in csv_bytes()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(&path, [HEADER.as_bytes(), &body].concat()).unwrap();
        match read_all(&path) {
            Ok((_, skipped)) => {
                for row in &skipped {
                    prop_assert!(row.line >= 2 && names_a_column(row), "{}", row);
                }
            }
            Err(e) => {
                let named = e.starts_with(&format!("{} line ", path.display()));
                prop_assert!(named, "{}", e);
            }
        }
    }

    #[test]
    fn any_header_is_read_or_names_the_missing_column(header in "\\PC{0,40}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(&path, format!("{header}\nx,y\n")).unwrap();
        if let Err(e) = Rows::open(path.clone(), &columns()) {
            let e = e.to_string();
            prop_assert!(e.contains(" is not in the header; the header has "), "{}", e);
        }
    }

    #[test]
    fn rows_written_by_a_csv_writer_come_back_as_written(
        rows in prop::collection::vec(("[a-z0-9-]{1,8}", "\\PC{1,30}", "[a-z_]{1,10}"), 1..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        let mut writer = csv::Writer::from_path(&path).unwrap();
        writer.write_record(["id", "text", "department", "created_at", "resolved_at", "problem_type"]).unwrap();
        for (id, text, department) in &rows {
            writer.write_record([id.as_str(), text, department, "", "", ""]).unwrap();
        }
        writer.flush().unwrap();
        let (records, skipped) = read_all(&path).unwrap();
        let kept: Vec<_> = rows.iter().filter(|(_, text, _)| !text.trim().is_empty()).collect();
        prop_assert_eq!(records.len(), kept.len());
        prop_assert_eq!(skipped.len(), rows.len() - kept.len());
        for (record, (id, text, department)) in records.iter().zip(kept) {
            prop_assert_eq!(&record.id, id);
            prop_assert_eq!(record.text.as_str(), text.trim());
            prop_assert_eq!(&record.department, department);
        }
    }
}
