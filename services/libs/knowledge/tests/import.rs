//! CSV import into a knowledge base on a temporary directory.

use std::error::Error as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use switchboard_knowledge::{
    ColumnMap, ImportProgress, KnowledgeBase, KnowledgeError, SkipReason, import_csv,
};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(content).expect("write");
    path
}

fn custom_columns() -> ColumnMap {
    ColumnMap {
        text: "body".into(),
        department: "team".into(),
        id: Some("ticket".into()),
        created_at: Some("opened".into()),
        resolved_at: Some("closed".into()),
        resolution_minutes: None,
        problem_type: None,
    }
}

#[tokio::test]
async fn imports_custom_columns_and_reports_skipped_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "\
ticket,opened,closed,team,body
T-1,2024-05-01T08:00:00+08:00,2024-05-01T09:30:00+08:00,billing,\"Charged twice, please refund\"
T-2,2024-05-01 01:00:00,,delivery,Parcel never arrived
T-3,1714525200,1714528800,account,我无法登录账号
T-4,2024-05-01,,,Missing the team
T-5,last tuesday,,billing,Bad opening time
,2024-05-01,,billing,No ticket id
T-7,2024-05-02T00:00:00Z,2024-05-01T00:00:00Z,billing,Closed before opened
T-8,2024-05-01
";
    let path = write(dir.path(), "export.csv", csv.as_bytes());
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let mut calls = Vec::new();
    let summary = import_csv(&kb, &path, &custom_columns(), &mut |p| calls.push(p))
        .await
        .expect("import");

    assert_eq!(
        (summary.rows_read, summary.imported, summary.skipped),
        (8, 3, 5)
    );
    assert_eq!(
        calls,
        vec![ImportProgress {
            rows_read: 8,
            imported: 3,
            skipped: 5
        }]
    );
    let skipped: Vec<(u64, &SkipReason)> = summary
        .first_skipped
        .iter()
        .map(|s| (s.line, &s.reason))
        .collect();
    assert_eq!(skipped.len(), 5);
    assert_eq!(
        skipped[0],
        (
            5,
            &SkipReason::Missing {
                column: "team".into()
            }
        )
    );
    assert_eq!(
        skipped[1],
        (
            6,
            &SkipReason::BadTime {
                column: "opened".into(),
                value: "last tuesday".into()
            }
        )
    );
    assert_eq!(
        skipped[2],
        (
            7,
            &SkipReason::Missing {
                column: "ticket".into()
            }
        )
    );
    assert_eq!(skipped[3], (8, &SkipReason::ResolvedBeforeCreated));
    assert_eq!(
        skipped[4],
        (
            9,
            &SkipReason::Missing {
                column: "body".into()
            }
        ),
        "a short row"
    );
    assert!(summary.first_skipped[1].to_string().starts_with("line 6: "));

    assert_eq!(kb.count().await.expect("count"), 3);
    let billing = &kb
        .similar("refund charged twice", 1)
        .await
        .expect("similar")[0];
    assert_eq!(billing.id, "T-1");
    assert_eq!(billing.created_at_ms, 1_714_521_600_000);
    assert_eq!(billing.resolution_minutes, Some(90));
    assert_eq!(billing.source, "history");
    let delivery = &kb.similar("parcel", 1).await.expect("similar")[0];
    assert_eq!(
        (delivery.id.as_str(), delivery.resolution_minutes),
        ("T-2", None)
    );
    let account = &kb.similar("登录不了账号", 1).await.expect("similar")[0];
    assert_eq!(
        (account.id.as_str(), account.resolution_minutes),
        ("T-3", Some(60))
    );
}

#[tokio::test]
async fn streams_in_batches_with_progress_and_default_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("department,text,minutes\n");
    for i in 0..1200 {
        if i % 100 == 0 {
            csv.push_str("billing,,5\n");
        } else {
            csv.push_str(&format!(
                "dept{},ticket number {i} about widget {},{}\n",
                i % 3,
                i % 11,
                i % 50
            ));
        }
    }
    let path = write(dir.path(), "history.csv", csv.as_bytes());
    let columns = ColumnMap {
        resolution_minutes: Some("minutes".into()),
        ..ColumnMap::default()
    };
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let mut calls: Vec<ImportProgress> = Vec::new();
    let summary = import_csv(&kb, &path, &columns, &mut |p| calls.push(p))
        .await
        .expect("import");
    assert_eq!(
        (summary.rows_read, summary.imported, summary.skipped),
        (1200, 1188, 12)
    );
    assert_eq!(
        summary.first_skipped.len(),
        10,
        "only the first few are named"
    );
    assert_eq!(summary.first_skipped[0].line, 2);
    assert_eq!(summary.first_skipped[1].line, 102);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].rows_read, 512);
    assert_eq!(
        calls[2],
        ImportProgress {
            rows_read: 1200,
            imported: 1188,
            skipped: 12
        }
    );
    assert!(calls.windows(2).all(|w| w[0].rows_read < w[1].rows_read));

    let hit = &kb
        .similar("ticket number 7 about widget", 1)
        .await
        .expect("similar")[0];
    assert_eq!(hit.id, "history:9", "row 7 is on line 9");
    assert_eq!(hit.resolution_minutes, Some(7));

    // Default ids are stable, so importing the same file again overwrites instead of duplicating.
    import_csv(&kb, &path, &columns, &mut |_| {})
        .await
        .expect("re-import");
    assert_eq!(kb.count().await.expect("count"), 1188);
}

#[tokio::test]
async fn a_problem_type_column_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "\
id,category,text,department
P-1, double charge ,\"Charged twice, please refund\",billing
P-2,快递延误,快递一直没有送到,delivery
P-3,,Parcel arrived damaged,delivery
";
    let path = write(dir.path(), "typed.csv", csv.as_bytes());
    let columns = ColumnMap {
        id: Some("id".into()),
        problem_type: Some("category".into()),
        ..ColumnMap::default()
    };
    let kb_dir = dir.path().join("kb");
    let kb = KnowledgeBase::open(&kb_dir, None, 0.0).expect("open");
    let summary = import_csv(&kb, &path, &columns, &mut |_| {})
        .await
        .expect("import");
    assert_eq!(
        (summary.imported, summary.skipped),
        (3, 0),
        "a blank type is no reason to skip"
    );

    let billing = &kb
        .similar("refund charged twice", 1)
        .await
        .expect("similar")[0];
    assert_eq!(
        (billing.id.as_str(), billing.problem_type.as_str()),
        ("P-1", "double charge"),
        "trimmed like every value"
    );
    let delivery = &kb.similar("快递没有送到", 1).await.expect("similar")[0];
    assert_eq!(delivery.problem_type, "快递延误");
    drop(kb);

    // Stored with the record: it survives a reopen and comes back on the records the classifier reads.
    let kb = KnowledgeBase::open(&kb_dir, None, 0.0).expect("reopen");
    let mut types: Vec<(String, String)> = kb
        .records()
        .await
        .expect("records")
        .into_iter()
        .map(|r| (r.record.id, r.record.problem_type))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            ("P-1".to_owned(), "double charge".to_owned()),
            ("P-2".to_owned(), "快递延误".to_owned()),
            ("P-3".to_owned(), String::new()),
        ]
    );

    // A configured column the file lacks is named, like any other.
    let err = import_csv(
        &kb,
        &write(
            dir.path(),
            "untyped.csv",
            b"id,text,department\n1,hello,billing\n",
        ),
        &columns,
        &mut |_| {},
    )
    .await
    .expect_err("no category column");
    assert!(
        matches!(&err, KnowledgeError::MissingColumn { column, .. } if column == "category"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_column_is_named_with_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.csv", b"id,text,dept\n1,hello,billing\n");
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let err = import_csv(&kb, &path, &ColumnMap::default(), &mut |_| {})
        .await
        .expect_err("no department column");
    match &err {
        KnowledgeError::MissingColumn { column, header, .. } => {
            assert_eq!(column, "department");
            assert_eq!(header, &["id", "text", "dept"]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("\"department\"") && message.contains("dept"),
        "{message}"
    );
    assert_eq!(kb.count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_utf8_bom_before_the_header_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = "\u{feff}text,department\n快递丢了,delivery\n\"refund, please\",billing\n";
    let path = write(dir.path(), "bom.csv", content.as_bytes());
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let summary = import_csv(&kb, &path, &ColumnMap::default(), &mut |_| {})
        .await
        .expect("import");
    assert_eq!((summary.imported, summary.skipped), (2, 0));
    assert_eq!(
        kb.similar("快递", 1).await.expect("similar")[0].department,
        "delivery"
    );
}

#[tokio::test]
async fn an_unopenable_file_keeps_the_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(&dir.path().join("kb"), None, 0.0).expect("open");
    let missing = dir.path().join("nope.csv");
    let err = import_csv(&kb, &missing, &ColumnMap::default(), &mut |_| {})
        .await
        .expect_err("missing file");
    assert!(matches!(err, KnowledgeError::Open { .. }), "{err:?}");
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("io source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::NotFound);
}
