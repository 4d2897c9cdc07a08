//! From a row of a ticket system's export to a knowledge record: which of the row's fields hold which of
//! the record's facts, and the checks every source's rows pass the same way (a CSV file's or a database
//! query's).

use switchboard_proto::KnowledgeRecord;
use switchboard_text::timestamp::parse_ms;

use super::{ColumnMap, SkipReason};
use crate::point::HISTORY_SOURCE;

/// A row's fields by position, as bytes: `None` past the row's end.
pub(crate) trait Fields {
    fn field(&self, index: usize) -> Option<&[u8]>;
}

impl Fields for csv::ByteRecord {
    fn field(&self, index: usize) -> Option<&[u8]> {
        self.get(index)
    }
}

impl Fields for [Option<String>] {
    fn field(&self, index: usize) -> Option<&[u8]> {
        self.get(index)?.as_deref().map(str::as_bytes)
    }
}

/// A configured column: its position in the row and its name, for skip reasons.
type Column = (usize, String);

/// The positions of the configured columns in a source's rows.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    text: Column,
    department: Column,
    id: Option<Column>,
    created_at: Option<Column>,
    resolved_at: Option<Column>,
    resolution_minutes: Option<Column>,
    problem_type: Option<Column>,
}

impl Mapping {
    /// Places each configured column with `find`, stopping at the first error it returns.
    pub(crate) fn resolve<E>(
        columns: &ColumnMap,
        mut find: impl FnMut(&str) -> Result<usize, E>,
    ) -> Result<Self, E> {
        let mut place = |name: &str| find(name).map(|i| (i, name.to_owned()));
        let text = place(&columns.text)?;
        let department = place(&columns.department)?;
        let mut optional = |name: &Option<String>| name.as_deref().map(&mut place).transpose();
        Ok(Self {
            text,
            department,
            id: optional(&columns.id)?,
            created_at: optional(&columns.created_at)?,
            resolved_at: optional(&columns.resolved_at)?,
            resolution_minutes: optional(&columns.resolution_minutes)?,
            problem_type: optional(&columns.problem_type)?,
        })
    }

    /// The row as a record, or why it is skipped. Without an id column the record's id is empty: each
    /// source derives its own.
    pub(crate) fn record<R: Fields + ?Sized>(
        &self,
        row: &R,
    ) -> Result<KnowledgeRecord, SkipReason> {
        let text = required(row, &self.text)?;
        let department = required(row, &self.department)?;
        let id = match &self.id {
            Some(column) => required(row, column)?.to_owned(),
            None => String::new(),
        };
        let problem_type = match &self.problem_type {
            Some(column) => value(row, column)?.unwrap_or_default().to_owned(),
            None => String::new(),
        };
        let created_at_ms = time(row, self.created_at.as_ref())?;
        let resolution_minutes = match &self.resolution_minutes {
            Some(column) => minutes(row, column)?,
            None => match (created_at_ms, time(row, self.resolved_at.as_ref())?) {
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
}

/// The trimmed value, `None` when the row has no such field or it is blank.
fn value<'r, R: Fields + ?Sized>(
    row: &'r R,
    (index, name): &Column,
) -> Result<Option<&'r str>, SkipReason> {
    let Some(bytes) = row.field(*index) else {
        return Ok(None);
    };
    let value = std::str::from_utf8(bytes)
        .map_err(|_| SkipReason::NotUtf8 {
            column: name.clone(),
        })?
        .trim();
    Ok((!value.is_empty()).then_some(value))
}

fn required<'r, R: Fields + ?Sized>(row: &'r R, column: &Column) -> Result<&'r str, SkipReason> {
    value(row, column)?.ok_or_else(|| SkipReason::Missing {
        column: column.1.clone(),
    })
}

fn time<R: Fields + ?Sized>(row: &R, column: Option<&Column>) -> Result<Option<i64>, SkipReason> {
    let Some(column) = column else {
        return Ok(None);
    };
    let Some(value) = value(row, column)? else {
        return Ok(None);
    };
    parse_ms(value)
        .map(Some)
        .ok_or_else(|| SkipReason::BadTime {
            column: column.1.clone(),
            value: value.to_owned(),
        })
}

fn minutes<R: Fields + ?Sized>(row: &R, column: &Column) -> Result<Option<i64>, SkipReason> {
    let Some(value) = value(row, column)? else {
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
