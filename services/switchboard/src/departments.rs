//! `switchboard departments import`: duty descriptions from CSV into the `departments` bucket of the bus
//! the settings name, where admins edit them too and the retriever embeds them.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_bus::{Bus, validate_key};
use switchboard_runtime::{buckets, departments};

/// Describes every department of the file and returns how many. The whole file is checked first: a bad
/// row describes nothing.
pub async fn import(bus: &Arc<dyn Bus>, file: &Path) -> anyhow::Result<usize> {
    let rows = read(file)?;
    let catalog = bus.kv(buckets::DEPARTMENTS).await?;
    for (id, description) in &rows {
        departments::describe(catalog.as_ref(), id, description).await?;
    }
    Ok(rows.len())
}

fn read(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("cannot read {}", file.display()))?;
    let header = reader.headers()?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| {
                format!(
                    "{}: no column {name:?}; the header has {:?}",
                    file.display(),
                    header.iter().collect::<Vec<_>>()
                )
            })
    };
    let (id, description) = (column("id")?, column("description")?);
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("reading {}", file.display()))?;
        let line = row.position().map_or(0, csv::Position::line);
        let department = row.get(id).unwrap_or_default().trim();
        if validate_key(department).is_err() {
            bail!(
                "{} line {line}: id {department:?} must be non-empty letters, digits, - _ = . /",
                file.display()
            );
        }
        let text = row.get(description).unwrap_or_default().trim();
        rows.push((department.to_owned(), text.to_owned()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("departments.csv");
        std::fs::write(&path, "id,description\nbilling,Bills\n,no id\n").expect("write");
        let err = read(&path).expect_err("blank id").to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "department,description\nbilling,Bills\n").expect("write");
        let err = read(&path).expect_err("no id column").to_string();
        assert!(err.contains("\"id\""), "{err}");
    }

    #[test]
    fn the_demo_describes_every_demo_department() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo");
        let rows = read(&root.join("departments.csv")).expect("demo departments");
        let history = std::fs::read_to_string(root.join("history.csv")).expect("history");
        for (id, description) in &rows {
            assert!(
                history.contains(&format!(",{id},")),
                "{id} is not a demo department"
            );
            // Both languages, so Chinese and English tickets both find it.
            assert!(
                description
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{id}"
            );
            assert!(description.chars().any(|c| c.is_ascii_alphabetic()), "{id}");
        }
        assert_eq!(rows.len(), 12);
    }
}
