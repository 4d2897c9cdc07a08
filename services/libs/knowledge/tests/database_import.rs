//! Importing a history from a ticket system's database: a real PostgreSQL server at
//! `SWITCHBOARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`, which
//! `scripts/ensure-postgres.sh` starts when none listens), and MySQL or MariaDB at
//! `SWITCHBOARD_TEST_MYSQL_URL` when that is set. Each test works in a table of its own.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor};
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, Kv};
use switchboard_errors::error_chain;
use switchboard_knowledge::{
    ColumnMap, DatabaseImport, DatabaseImportError, DatabaseQuery, IMPORTS_BUCKET, KnowledgeBase,
    SkipReason, import_database,
};
use tempfile::TempDir;

fn postgres_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A table name no other test run uses.
fn table(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

async fn postgres(sql: &str) {
    let url = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("no PostgreSQL at {url} ({e}); run scripts/ensure-postgres.sh or set SWITCHBOARD_TEST_POSTGRES_URL")
    });
    conn.execute(sql).await.expect(sql);
}

/// Fields drop in order: the store flushes into its directory before the directory goes.
struct Desk {
    kb: KnowledgeBase,
    positions: Arc<dyn Kv>,
    _dir: TempDir,
}

async fn desk() -> Desk {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let bus = MemoryBus::new();
    let positions = bus.kv(IMPORTS_BUCKET).await.expect("kv");
    Desk {
        kb,
        positions,
        _dir: dir,
    }
}

fn columns() -> ColumnMap {
    ColumnMap {
        text: "body".into(),
        department: "team".into(),
        id: Some("ticket".into()),
        created_at: Some("opened".into()),
        resolved_at: Some("closed".into()),
        resolution_minutes: None,
        problem_type: Some("category".into()),
    }
}

fn query_of(table: &str, url: String) -> DatabaseQuery {
    DatabaseQuery {
        url,
        query: format!("SELECT ticket, body, team, opened, closed, category FROM {table};"),
        columns: columns(),
        cursor: None,
    }
}

async fn run(desk: &Desk, source: &DatabaseQuery) -> Result<DatabaseImport, DatabaseImportError> {
    import_database(&desk.kb, desk.positions.clone(), source, &mut |_| {}).await
}

#[tokio::test]
async fn postgres_rows_import_once_each_and_later_imports_read_only_new_rows() {
    let t = table("sb_history");
    postgres(&format!(
        "CREATE TABLE {t} (ticket TEXT PRIMARY KEY, body TEXT, team VARCHAR(40), \
         opened TIMESTAMPTZ, closed TIMESTAMPTZ, category TEXT);
         INSERT INTO {t} VALUES
           ('T-1', 'Charged twice, please refund', 'billing', '2024-05-01 08:00:00+08', '2024-05-01 09:30:00+08', 'refund'),
           ('T-2', '我无法登录账号', 'account', '2024-05-01 02:00:00+00', NULL, NULL),
           ('T-3', 'No team on this one', NULL, '2024-05-01 03:00:00+00', NULL, NULL),
           ('T-4', 'Parcel never arrived', 'delivery', '2024-05-01 04:00:00+00', '2024-05-01 03:00:00+00', NULL);"
    ))
    .await;
    let desk = desk().await;
    let source = query_of(&t, postgres_url());

    let first = run(&desk, &source).await.expect("first import");
    assert_eq!(first.resumed_after, None);
    assert_eq!(
        (
            first.summary.rows_read,
            first.summary.imported,
            first.summary.skipped
        ),
        (4, 2, 2)
    );
    let skipped: Vec<_> = first
        .summary
        .first_skipped
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                3,
                SkipReason::Missing {
                    column: "team".into()
                }
            ),
            (4, SkipReason::ResolvedBeforeCreated),
        ]
    );
    // The cursor is the last row's creation time as the database writes it, in UTC.
    assert_eq!(first.position.as_deref(), Some("2024-05-01 04:00:00+00"));

    let mut records: Vec<_> = desk
        .kb
        .records()
        .await
        .expect("records")
        .into_iter()
        .map(|s| s.record)
        .collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(records.len(), 2);
    let refund = &records[0];
    assert_eq!(refund.id, "T-1");
    assert_eq!(refund.department, "billing");
    assert_eq!(refund.created_at_ms, 1_714_521_600_000);
    assert_eq!(refund.resolution_minutes, Some(90));
    assert_eq!(refund.problem_type, "refund");
    assert_eq!(records[1].text, "我无法登录账号");
    assert_eq!(first.summary.chinese, 1);

    // Nothing new: the rows at the saved time are read again and passed over, none stored twice.
    let again = run(&desk, &source).await.expect("second import");
    assert_eq!(
        again.resumed_after.as_deref(),
        Some("2024-05-01 04:00:00+00")
    );
    assert_eq!(again.summary.imported, 0);

    // One row at the same time as the last import's last row, one later: both, and only they.
    postgres(&format!(
        "INSERT INTO {t} VALUES
           ('T-5', 'Same second as T-4', 'delivery', '2024-05-01 04:00:00+00', NULL, NULL),
           ('T-6', 'Refund still missing', 'billing', '2024-05-02 10:00:00+00', NULL, NULL);"
    ))
    .await;
    let later = run(&desk, &source).await.expect("third import");
    assert_eq!(
        (later.summary.rows_read, later.summary.imported),
        (2, 2),
        "{later:?}"
    );
    assert_eq!(later.position.as_deref(), Some("2024-05-02 10:00:00+00"));
    assert_eq!(desk.kb.count().await.expect("count"), 4);
    postgres(&format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn an_interrupted_postgres_import_resumes_where_it_stopped() {
    let t = table("sb_resume");
    let rows = 1500;
    postgres(&format!(
        "CREATE TABLE {t} (ticket TEXT, body TEXT, team TEXT, opened TIMESTAMP, closed TIMESTAMP, \
         category TEXT);
         INSERT INTO {t} SELECT 'R-' || n, 'ticket number ' || n, 'team-' || (n % 7), \
           TIMESTAMP '2024-01-01' + n * INTERVAL '1 minute', NULL, NULL \
           FROM generate_series(1, {rows}) AS n;"
    ))
    .await;
    let desk = desk().await;
    let source = query_of(&t, postgres_url());

    // Stopped as soon as the first batch is stored and its position saved.
    let (kb, positions, first_source) = (desk.kb.clone(), desk.positions.clone(), source.clone());
    let (stored, on_stored) = tokio::sync::oneshot::channel();
    let mut stored = Some(stored);
    let task = tokio::spawn(async move {
        import_database(&kb, positions, &first_source, &mut |_| {
            if let Some(tell) = stored.take() {
                let _ = tell.send(());
            }
        })
        .await
    });
    on_stored.await.expect("a first batch");
    task.abort();
    let partial = desk.kb.count().await.expect("count");
    assert!(
        partial > 0 && partial < rows,
        "{partial} stored before the stop"
    );

    let resumed = run(&desk, &source).await.expect("resumed import");
    assert!(resumed.resumed_after.is_some());
    assert!(
        resumed.summary.rows_read < rows as u64,
        "read every row again: {resumed:?}"
    );
    assert_eq!(desk.kb.count().await.expect("count"), rows);
    assert_eq!(
        resumed.position.as_deref(),
        Some("2024-01-02 01:00:00"),
        "the last row's time"
    );
    postgres(&format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn bad_sources_are_refused_naming_the_problem() {
    let t = table("sb_bad");
    postgres(&format!(
        "CREATE TABLE {t} (ticket TEXT, body TEXT, team TEXT, opened TIMESTAMPTZ, closed TIMESTAMPTZ, \
         category TEXT)"
    ))
    .await;
    let desk = desk().await;
    let good = query_of(&t, postgres_url());

    let wrong_scheme = DatabaseQuery {
        url: "sqlite://tickets.db".into(),
        ..good.clone()
    };
    let err = run(&desk, &wrong_scheme).await.expect_err("sqlite");
    assert!(matches!(err, DatabaseImportError::Scheme { .. }), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");

    let nobody = DatabaseQuery {
        url: "postgres://postgres:hunter2@127.0.0.1:1/test".into(),
        ..good.clone()
    };
    let err = run(&desk, &nobody).await.expect_err("no server");
    let text = error_chain(&err);
    assert!(matches!(err, DatabaseImportError::Connect { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "the password shows: {text}");

    let typo = DatabaseQuery {
        query: format!("SELEC ticket FROM {t}"),
        ..good.clone()
    };
    let err = run(&desk, &typo).await.expect_err("bad query");
    assert!(matches!(err, DatabaseImportError::Query(_)), "{err}");
    assert!(
        error_chain(&err).contains("syntax error"),
        "{}",
        error_chain(&err)
    );

    let no_table = DatabaseQuery {
        query: "SELECT * FROM no_such_table_here".into(),
        ..good.clone()
    };
    let err = run(&desk, &no_table).await.expect_err("missing table");
    assert!(
        error_chain(&err).contains("no_such_table_here"),
        "{}",
        error_chain(&err)
    );

    let missing = DatabaseQuery {
        query: format!("SELECT ticket, body, opened FROM {t}"),
        ..good.clone()
    };
    let err = run(&desk, &missing).await.expect_err("missing column");
    match &err {
        DatabaseImportError::MissingColumn { column, returned } => {
            assert_eq!(column, "team");
            assert_eq!(returned, &["ticket", "body", "opened"]);
        }
        other => panic!("{other}"),
    }

    let no_cursor = DatabaseQuery {
        columns: ColumnMap {
            created_at: None,
            ..columns()
        },
        ..good.clone()
    };
    let err = run(&desk, &no_cursor).await.expect_err("no cursor");
    assert!(matches!(err, DatabaseImportError::NoCursor), "{err}");
    assert!(
        err.source().is_none(),
        "a refusal of the arguments has no cause"
    );
    postgres(&format!("DROP TABLE {t}")).await;
}

/// MySQL or MariaDB, when `SWITCHBOARD_TEST_MYSQL_URL` names one (scripts/test.sh sets it when a
/// server listens on 127.0.0.1:3306).
#[tokio::test]
async fn mysql_rows_import_and_resume() {
    let Ok(url) = std::env::var("SWITCHBOARD_TEST_MYSQL_URL") else {
        eprintln!(
            "SWITCHBOARD_TEST_MYSQL_URL is not set: the MySQL import is not tested in this run"
        );
        return;
    };
    let t = table("sb_mysql");
    let mut conn = sqlx::MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("no MySQL at {url}: {e}"));
    conn.execute(
        format!(
            "CREATE TABLE {t} (ticket VARCHAR(20) PRIMARY KEY, body TEXT, team VARCHAR(40), \
             opened DATETIME, closed DATETIME, category TEXT)"
        )
        .as_str(),
    )
    .await
    .expect("create");
    conn.execute(
        format!(
            "INSERT INTO {t} VALUES \
             ('M-1', 'Invoice shows the wrong address', 'billing', '2024-05-01 08:00:00', \
              '2024-05-01 10:00:00', 'invoice'), \
             ('M-2', '验证码收不到', 'account', '2024-05-01 09:00:00', NULL, NULL)"
        )
        .as_str(),
    )
    .await
    .expect("insert");
    let desk = desk().await;
    let source = query_of(&t, url.clone());

    let first = run(&desk, &source).await.expect("first import");
    assert_eq!((first.summary.imported, first.summary.skipped), (2, 0));
    assert_eq!(first.position.as_deref(), Some("2024-05-01 09:00:00"));
    let mut records: Vec<_> = desk.kb.records().await.expect("records");
    records.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    assert_eq!(records[0].record.resolution_minutes, Some(120));
    assert_eq!(records[1].record.text, "验证码收不到");

    conn.execute(
        format!(
            "INSERT INTO {t} VALUES ('M-3', 'Refund pending', 'billing', '2024-05-03 08:00:00', NULL, NULL)"
        )
        .as_str(),
    )
    .await
    .expect("insert");
    let later = run(&desk, &source).await.expect("second import");
    assert_eq!((later.summary.rows_read, later.summary.imported), (1, 1));
    assert_eq!(desk.kb.count().await.expect("count"), 3);
    conn.execute(format!("DROP TABLE {t}").as_str())
        .await
        .expect("drop");
}
