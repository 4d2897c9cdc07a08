//! `switchboard import`: a history into the knowledge base, from a CSV export or the ticket system's
//! database, with progress on stderr and a summary naming the first rows skipped and why.

use std::path::Path;

use switchboard_knowledge::{
    ColumnMap, DatabaseQuery, IMPORTS_BUCKET, ImportProgress, ImportSummary, KnowledgeBase,
    import_csv, import_database,
};

use crate::Settings;

fn show_progress(p: ImportProgress) {
    eprintln!(
        "import: {} rows read, {} imported, {} skipped",
        p.rows_read, p.imported, p.skipped
    );
}

/// Imports a CSV file and prints what came of it.
pub async fn csv_file(settings: &Settings, file: &Path, columns: &ColumnMap) -> anyhow::Result<()> {
    let kb = crate::knowledge::open(settings).await?;
    let summary = import_csv(&kb, file, columns, &mut show_progress).await?;
    println!(
        "imported {} of {} rows into {} ({} skipped)",
        summary.imported,
        summary.rows_read,
        settings.knowledge_location(),
        summary.skipped
    );
    for row in &summary.first_skipped {
        println!("  skipped {row}");
    }
    language_notice(&kb, &summary).await
}

/// Imports the rows of a database query past the last import's position (kept in the bus the settings
/// name) and prints what came of it.
pub async fn database(settings: &Settings, source: &DatabaseQuery) -> anyhow::Result<()> {
    let kb = crate::knowledge::open(settings).await?;
    let bus = crate::app::connect_bus(settings).await?;
    let positions = bus.kv(IMPORTS_BUCKET).await?;
    let import = import_database(&kb, positions, source, &mut show_progress).await?;
    let summary = &import.summary;
    if let Some(after) = &import.resumed_after {
        println!("resumed at {after} (where the last import of this query stopped)");
    }
    println!(
        "imported {} of {} new rows into {} ({} skipped)",
        summary.imported,
        summary.rows_read,
        settings.knowledge_location(),
        summary.skipped
    );
    for row in &summary.first_skipped {
        println!("  skipped row {}: {}", row.line, row.reason);
    }
    if let Some(position) = &import.position {
        println!("the next import of this query starts at {position}");
    }
    language_notice(&kb, summary).await
}

async fn language_notice(kb: &KnowledgeBase, summary: &ImportSummary) -> anyhow::Result<()> {
    if let Some(notice) = crate::knowledge::language_notice(kb, summary).await? {
        println!("{notice}");
    }
    Ok(())
}
