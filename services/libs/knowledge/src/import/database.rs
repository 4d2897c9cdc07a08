//! Importing historical tickets straight from a ticket system's own database (PostgreSQL or MySQL /
//! MariaDB): the user's query, its columns mapped as a CSV header's are, read in the order of a cursor
//! column (the creation time unless told otherwise). After every batch the import saves how far it got in
//! the bus's `imports` bucket, so an interrupted import resumes there and a later one reads only the rows
//! added since.
//!
//! The query runs wrapped, `SELECT CAST(q.col AS TEXT), … FROM (<query>) AS q WHERE q.cursor >= $1
//! ORDER BY q.cursor`: the database turns every value, whatever its type, into the text a CSV export
//! would hold, and compares the cursor in its own type. Rows at exactly the saved cursor are read again
//! (a batch may have ended among them) and those the last import read, known by a digest of their
//! values, are passed over.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{
    Column, ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments, Row,
    Statement, Type, TypeInfo,
};
use switchboard_bus::{BusError, Kv};
use switchboard_proto::KnowledgeRecord;

use super::mapping::Mapping;
use super::{BATCH_ROWS, Batch, ColumnMap, ImportProgress, ImportSummary, SkippedRow};
use crate::error::KnowledgeError;
use crate::store::KnowledgeBase;

/// The bus bucket holding each database import's position, by source.
pub const IMPORTS_BUCKET: &str = "imports";

/// What to import: a database, a query over it and how its columns map.
#[derive(Debug, Clone)]
pub struct DatabaseQuery {
    /// `postgres://…`, `postgresql://…`, `mysql://…` or `mariadb://…`.
    pub url: String,
    pub query: String,
    pub columns: ColumnMap,
    /// The column rows are read in the order of; a later import reads only rows at or past where the
    /// last one stopped. Defaults to `columns.created_at`.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseImport {
    pub summary: ImportSummary,
    /// Where this import started: the cursor value the last one stopped at, `None` for a first import.
    pub resumed_after: Option<String>,
    /// Where the next import starts.
    pub position: Option<String>,
    /// Rows at the saved position that an earlier import had already read, passed over.
    pub already_read: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseImportError {
    #[error(
        "{url}: not a database URL this import reads; it takes postgres://, postgresql://, mysql:// \
         or mariadb://"
    )]
    Scheme { url: String },
    #[error("cannot connect to the database at {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database refused the query")]
    Query(#[source] sqlx::Error),
    #[error("the query returns no column {column:?}; it returns {returned:?}")]
    MissingColumn {
        column: String,
        returned: Vec<String>,
    },
    #[error(
        "a database import reads rows in the order of a column and starts the next import where this \
         one stopped: name it with --created-at-column or --cursor-column"
    )]
    NoCursor,
    #[error("reading the query's rows failed after {rows} rows")]
    Read {
        rows: u64,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot {action} the import's position in the bus bucket {IMPORTS_BUCKET:?}")]
    Position {
        action: &'static str,
        #[source]
        source: BusError,
    },
    #[error("the saved position of this import is not one it wrote: {0}")]
    BadPosition(String),
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
}

/// Imports the rows of `source` past the position saved in `positions`, saving the new position after
/// each batch, calling `progress` after each batch, and flushes the store at the end.
pub async fn import_database(
    kb: &KnowledgeBase,
    positions: Arc<dyn Kv>,
    source: &DatabaseQuery,
    progress: &mut (dyn FnMut(ImportProgress) + Send),
) -> Result<DatabaseImport, DatabaseImportError> {
    let shown = redact(&source.url);
    let dialect = Dialect::of(&source.url)
        .ok_or_else(|| DatabaseImportError::Scheme { url: shown.clone() })?;
    let cursor = source
        .cursor
        .as_ref()
        .or(source.columns.created_at.as_ref())
        .ok_or(DatabaseImportError::NoCursor)?;
    let mut conn =
        Conn::open(dialect, &source.url)
            .await
            .map_err(|source| DatabaseImportError::Connect {
                url: shown.clone(),
                source,
            })?;
    let query = source.query.trim().trim_end_matches(';');
    let returned = conn
        .columns(query)
        .await
        .map_err(DatabaseImportError::Query)?;
    let plan = Plan::new(dialect, query, &source.columns, cursor, &returned)?;

    let key = position_key(&shown, query, cursor);
    let saved = load_position(positions.as_ref(), &key).await?;
    let mut import = DatabaseImport {
        resumed_after: saved.as_ref().map(|p| p.cursor.clone()),
        ..DatabaseImport::default()
    };
    let mut at = saved.unwrap_or_default();
    let sql = plan.sql(import.resumed_after.is_some());
    let mut rows = conn.rows(&sql, import.resumed_after.as_deref());
    let mut batch = Batch::default();
    let mut read = 0;
    while let Some(row) = rows.next().await {
        let row = row.map_err(|source| DatabaseImportError::Read { rows: read, source })?;
        read += 1;
        let cursor_value = row[plan.cursor].clone();
        let digest = row_digest(&row);
        if cursor_value.as_deref() == Some(at.cursor.as_str()) && at.rows.contains(&digest) {
            import.already_read += 1;
            continue;
        }
        batch.rows_read += 1;
        at.advance(cursor_value, digest);
        match plan.mapping.record(row.as_slice()) {
            Ok(mut record) => {
                if record.id.is_empty() {
                    record.id = digest_id(&record);
                }
                batch.records.push(record);
            }
            Err(reason) => batch.skipped.push(SkippedRow {
                line: import.summary.rows_read + batch.rows_read,
                reason,
            }),
        }
        if batch.rows_read == BATCH_ROWS as u64 {
            import
                .summary
                .commit(kb, std::mem::take(&mut batch))
                .await?;
            save_position(positions.as_ref(), &key, &at, &shown, query).await?;
            progress(import.summary.progress());
        }
    }
    drop(rows);
    if batch.rows_read > 0 {
        import.summary.commit(kb, batch).await?;
        save_position(positions.as_ref(), &key, &at, &shown, query).await?;
        progress(import.summary.progress());
    }
    kb.flush().await;
    import.position = (!at.cursor.is_empty()).then_some(at.cursor);
    tracing::info!(
        database = %shown,
        rows = import.summary.rows_read,
        imported = import.summary.imported,
        skipped = import.summary.skipped,
        already_read = import.already_read,
        position = import.position.as_deref().unwrap_or(""),
        "database import finished"
    );
    Ok(import)
}

#[derive(Debug, Clone, Copy)]
enum Dialect {
    Postgres,
    MySql,
}

impl Dialect {
    fn of(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    fn quote(self, name: &str) -> String {
        match self {
            Self::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Self::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }

    fn as_text(self, expr: &str) -> String {
        match self {
            Self::Postgres => format!("CAST({expr} AS TEXT)"),
            Self::MySql => format!("CAST({expr} AS CHAR)"),
        }
    }

    /// The filter on the cursor, its value bound as text: PostgreSQL compares only like types, so the
    /// text goes back to the column's own; MySQL converts it itself.
    fn at_or_past(self, expr: &str, type_name: &str) -> String {
        match self {
            Self::Postgres => format!("{expr} >= CAST($1 AS {type_name})"),
            Self::MySql => format!("{expr} >= ?"),
        }
    }

    /// A first import also takes rows without a cursor value; later ones cannot place them. MySQL
    /// orders NULL first already.
    fn order(self, expr: &str) -> String {
        match self {
            Self::Postgres => format!("{expr} NULLS FIRST"),
            Self::MySql => expr.to_owned(),
        }
    }

    /// Times as text in UTC, so the same instant reads the same in every session.
    fn session_setup(self) -> &'static str {
        match self {
            Self::Postgres => "SET TIME ZONE 'UTC'",
            Self::MySql => "SET time_zone = '+00:00'",
        }
    }
}

/// The wrapped query: which of its text columns feed the mapping and which is the cursor.
struct Plan {
    dialect: Dialect,
    select: String,
    cursor_expr: String,
    cursor_type: String,
    cursor: usize,
    mapping: Mapping,
}

impl Plan {
    fn new(
        dialect: Dialect,
        query: &str,
        columns: &ColumnMap,
        cursor: &str,
        returned: &[(String, String)],
    ) -> Result<Self, DatabaseImportError> {
        let mut selected: Vec<&str> = Vec::new();
        let mut place = |name: &str| {
            if !returned.iter().any(|(n, _)| n == name) {
                return Err(DatabaseImportError::MissingColumn {
                    column: name.to_owned(),
                    returned: returned.iter().map(|(n, _)| n.clone()).collect(),
                });
            }
            Ok(selected.iter().position(|s| *s == name).unwrap_or_else(|| {
                selected.push(
                    returned
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("", |c| &c.0),
                );
                selected.len() - 1
            }))
        };
        let mapping = Mapping::resolve(columns, &mut place)?;
        let cursor_at = place(cursor)?;
        let column = |name: &str| format!("q.{}", dialect.quote(name));
        let list = selected
            .iter()
            .map(|name| dialect.as_text(&column(name)))
            .collect::<Vec<_>>()
            .join(", ");
        let cursor_type = returned
            .iter()
            .find(|(n, _)| n == cursor)
            .map_or_else(String::new, |(_, t)| t.clone());
        Ok(Self {
            dialect,
            select: format!("SELECT {list} FROM ({query}) AS q"),
            cursor_expr: column(cursor),
            cursor_type,
            cursor: cursor_at,
            mapping,
        })
    }

    fn sql(&self, resuming: bool) -> String {
        let order = self.dialect.order(&self.cursor_expr);
        if resuming {
            let filter = self
                .dialect
                .at_or_past(&self.cursor_expr, &self.cursor_type);
            format!("{} WHERE {filter} ORDER BY {order}", self.select)
        } else {
            format!("{} ORDER BY {order}", self.select)
        }
    }
}

/// One connection of either kind. Each method is one generic body for both.
enum Conn {
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

impl Conn {
    async fn open(dialect: Dialect, url: &str) -> Result<Self, sqlx::Error> {
        let mut conn = match dialect {
            Dialect::Postgres => Self::Postgres(PgConnection::connect(url).await?),
            Dialect::MySql => Self::MySql(MySqlConnection::connect(url).await?),
        };
        let setup = dialect.session_setup();
        match &mut conn {
            Self::Postgres(c) => c.execute(setup).await.map(drop)?,
            Self::MySql(c) => c.execute(setup).await.map(drop)?,
        }
        Ok(conn)
    }

    /// The query's columns, name and type, from the database's own description of it.
    async fn columns(&mut self, query: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
        Ok(match self {
            Self::Postgres(c) => named_columns(&c.prepare(query).await?),
            Self::MySql(c) => named_columns(&c.prepare(query).await?),
        })
    }

    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        after: Option<&str>,
    ) -> BoxStream<'a, Result<Vec<Option<String>>, sqlx::Error>> {
        let after = after.map(str::to_owned);
        match self {
            Self::Postgres(c) => text_rows(c, sql, after),
            Self::MySql(c) => text_rows(c, sql, after),
        }
    }
}

fn named_columns<'q, S: Statement<'q>>(statement: &S) -> Vec<(String, String)> {
    statement
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect()
}

/// The rows of `sql` (with `after` bound when given), every column read as text.
fn text_rows<'a, E>(
    conn: E,
    sql: &'a str,
    after: Option<String>,
) -> BoxStream<'a, Result<Vec<Option<String>>, sqlx::Error>>
where
    E: Executor<'a> + 'a,
    for<'q> <E::Database as Database>::Arguments<'q>: IntoArguments<'q, E::Database>,
    for<'q> String: Encode<'q, E::Database> + Type<E::Database>,
    for<'r> Option<String>: Decode<'r, E::Database> + Type<E::Database>,
    usize: ColumnIndex<<E::Database as Database>::Row>,
{
    let query = sqlx::query(sql);
    let query = match after {
        Some(after) => query.bind(after),
        None => query,
    };
    conn.fetch(query)
        .map(|row| {
            let row = row?;
            (0..row.len()).map(|i| row.try_get(i)).collect()
        })
        .boxed()
}

/// Where an import stands: the last cursor value it read and digests of the rows it read at that value,
/// so rows at exactly the value are read again but counted once.
#[derive(Debug, Default)]
struct Position {
    cursor: String,
    rows: Vec<String>,
}

impl Position {
    fn advance(&mut self, value: Option<String>, row: String) {
        let Some(value) = value else { return };
        if value != self.cursor {
            self.cursor = value;
            self.rows.clear();
        }
        self.rows.push(row);
    }
}

/// A row's values, digested: the same row reads the same on every import, a changed one differently.
fn row_digest(row: &[Option<String>]) -> String {
    let mut hasher = Sha256::new();
    // A tag and a length before each value keep NULL apart from the empty text and ("ab", "c") apart
    // from ("a", "bc").
    for value in row {
        match value {
            Some(text) => {
                hasher.update([1]);
                hasher.update((text.len() as u64).to_le_bytes());
                hasher.update(text);
            }
            None => hasher.update([0]),
        }
    }
    hex(&hasher.finalize()[..12])
}

/// The bucket key of a source: a digest of the database (without its password), the query and the
/// cursor column, so a changed query starts over.
fn position_key(shown_url: &str, query: &str, cursor: &str) -> String {
    let digest = Sha256::new()
        .chain_update(shown_url)
        .chain_update([0])
        .chain_update(query)
        .chain_update([0])
        .chain_update(cursor)
        .finalize();
    format!("database-{}", hex(&digest[..16]))
}

async fn load_position(kv: &dyn Kv, key: &str) -> Result<Option<Position>, DatabaseImportError> {
    let entry = kv
        .get(key)
        .await
        .map_err(|source| DatabaseImportError::Position {
            action: "read",
            source,
        })?;
    let Some(entry) = entry else { return Ok(None) };
    let bad = |what: &str| DatabaseImportError::BadPosition(format!("{key}: {what}"));
    let value: serde_json::Value =
        serde_json::from_slice(&entry.value).map_err(|e| bad(&e.to_string()))?;
    let cursor = value["cursor"].as_str().ok_or_else(|| bad("no cursor"))?;
    let rows = value["rows"]
        .as_array()
        .ok_or_else(|| bad("no rows"))?
        .iter()
        .map(|row| {
            row.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad("a row is not text"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(Position {
        cursor: cursor.to_owned(),
        rows,
    }))
}

async fn save_position(
    kv: &dyn Kv,
    key: &str,
    at: &Position,
    shown_url: &str,
    query: &str,
) -> Result<(), DatabaseImportError> {
    if at.cursor.is_empty() {
        return Ok(());
    }
    // The source is written out too, so whoever lists the bucket sees what each position is of.
    let value = serde_json::json!({
        "database": shown_url,
        "query": query,
        "cursor": at.cursor,
        "rows": at.rows,
    });
    kv.put(key, Bytes::from(value.to_string()))
        .await
        .map(drop)
        .map_err(|source| DatabaseImportError::Position {
            action: "save",
            source,
        })
}

/// A row's id when the query has no id column: the same row gets the same id on every import.
fn digest_id(record: &KnowledgeRecord) -> String {
    let digest = Sha256::new()
        .chain_update(&record.text)
        .chain_update([0])
        .chain_update(&record.department)
        .chain_update([0])
        .chain_update(record.created_at_ms.to_le_bytes())
        .finalize();
    format!("db:{}", hex(&digest[..12]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The URL without its password, for messages, logs and the position's key.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/tickets?sslmode=require"),
            "postgres://app@db.example:5432/tickets?sslmode=require"
        );
        assert_eq!(
            redact("mysql://root@localhost/t"),
            "mysql://root@localhost/t"
        );
        assert_eq!(redact("postgres://localhost/t"), "postgres://localhost/t");
    }

    #[test]
    fn only_known_schemes_are_databases() {
        assert!(matches!(
            Dialect::of("postgresql://h/d"),
            Some(Dialect::Postgres)
        ));
        assert!(matches!(Dialect::of("MariaDB://h/d"), Some(Dialect::MySql)));
        assert!(Dialect::of("sqlite://x.db").is_none());
        assert!(Dialect::of("tickets.csv").is_none());
    }

    #[test]
    fn names_are_quoted_so_no_name_ends_the_quote() {
        assert_eq!(Dialect::Postgres.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
    }

    #[test]
    fn the_wrapped_query_selects_each_column_once_as_text() {
        let columns = ColumnMap {
            created_at: Some("opened".into()),
            ..ColumnMap::default()
        };
        let returned = [
            ("text".to_owned(), "TEXT".to_owned()),
            ("department".to_owned(), "VARCHAR".to_owned()),
            ("opened".to_owned(), "TIMESTAMPTZ".to_owned()),
        ];
        let plan = Plan::new(
            Dialect::Postgres,
            "SELECT * FROM t",
            &columns,
            "opened",
            &returned,
        )
        .expect("plan");
        assert_eq!(
            plan.sql(true),
            "SELECT CAST(q.\"text\" AS TEXT), CAST(q.\"department\" AS TEXT), \
             CAST(q.\"opened\" AS TEXT) FROM (SELECT * FROM t) AS q \
             WHERE q.\"opened\" >= CAST($1 AS TIMESTAMPTZ) ORDER BY q.\"opened\" NULLS FIRST"
        );
        assert_eq!(plan.cursor, 2);
        let missing = Plan::new(Dialect::MySql, "SELECT 1", &columns, "closed", &returned);
        assert!(
            matches!(&missing, Err(DatabaseImportError::MissingColumn { column, .. }) if column == "closed"),
            "{:?}",
            missing.err()
        );
    }
}
