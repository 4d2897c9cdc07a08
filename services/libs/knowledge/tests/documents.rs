//! Policy documents into a passages store: every format read, passages findable with their document,
//! position and departments, a re-import replacing a document's passages and a removal deleting them,
//! and bad files refused naming the problem.

use std::path::{Path, PathBuf};

use switchboard_knowledge::KnowledgeBase;
use switchboard_knowledge::documents::{
    DocumentError, PassageRef, import_document, list_documents, remove_document,
};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

/// A one-page PDF showing `text` in Helvetica, with a correct cross-reference table.
fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

const MARKDOWN: &str = "Departments: housing_fund\n\n# Withdrawals\n\nA withdrawal for a home purchase \
needs the signed purchase contract.\n\n# Loans\n\nA housing fund loan needs twelve months of \
contributions.\n";

#[tokio::test]
async fn documents_of_every_format_become_passages_that_are_found_replaced_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(&dir.path().join("policies"), None, 0.0).expect("open");
    let md = write(dir.path(), "fund.md", MARKDOWN.as_bytes());
    let txt = write(
        dir.path(),
        "outage.txt",
        "部门：water_electricity\n\n计划停电会提前三天在社区公告栏通知。\n\n抢修电话全天有人值守。\n"
            .as_bytes(),
    );
    let html = write(
        dir.path(),
        "refunds.html",
        b"<html><body><h1>Refunds</h1><p>A duplicate charge is refunded within five working days.</p></body></html>",
    );
    let pdf_path = write(
        dir.path(),
        "tax.pdf",
        &pdf("The annual tax settlement closes on the thirtieth of June."),
    );

    let fund = import_document(&kb, &md, &[]).await.expect("markdown");
    assert_eq!(fund.passages, 2);
    assert_eq!(fund.departments, ["housing_fund"]);
    let outage = import_document(&kb, &txt, &[]).await.expect("text");
    assert_eq!(outage.departments, ["water_electricity"]);
    assert_eq!(outage.passages, 1, "two short paragraphs make one passage");
    let refunds = import_document(&kb, &html, &["billing".to_owned()])
        .await
        .expect("html");
    assert_eq!(refunds.departments, ["billing"]);
    let tax = import_document(&kb, &pdf_path, &["tax_service".to_owned()])
        .await
        .expect("pdf");
    assert_eq!(tax.passages, 1);

    let hits = kb
        .similar("when does the annual tax settlement close", 1)
        .await
        .expect("search");
    let found = PassageRef::of(&hits[0]);
    assert_eq!(found.document, tax.document);
    assert_eq!(found.position, "page 1, passage 1");
    assert_eq!(found.departments, ["tax_service"]);
    assert!(
        hits[0].text.contains("thirtieth of June"),
        "{}",
        hits[0].text
    );

    let hits = kb
        .similar("purchase contract withdrawal", 1)
        .await
        .expect("search");
    assert_eq!(
        PassageRef::of(&hits[0]).position,
        "§ Withdrawals, passage 1"
    );
    let hits = kb
        .similar("duplicate charge refunded", 1)
        .await
        .expect("search");
    assert_eq!(PassageRef::of(&hits[0]).document, refunds.document);

    // A changed document replaces its passages: the loans section is gone with it.
    std::fs::write(
        &md,
        "# Withdrawals\n\nWithdrawals now need only an ID card.\n",
    )
    .expect("edit");
    let again = import_document(&kb, &md, &["housing_fund".to_owned()])
        .await
        .expect("re-import");
    assert_eq!((again.passages, again.replaced), (1, 2));
    let listed = list_documents(&kb).await.expect("list");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.contains(&(fund.document.clone(), 1)), "{listed:?}");
    let hits = kb
        .similar("housing fund loan contributions", 3)
        .await
        .expect("search");
    assert!(
        hits.iter().all(|h| !h.text.contains("twelve months")),
        "the old passage is still found: {hits:?}"
    );

    assert_eq!(
        remove_document(&kb, &tax.document).await.expect("remove"),
        1
    );
    assert_eq!(remove_document(&kb, &tax.document).await.expect("again"), 0);
    let left = again.passages + outage.passages + refunds.passages;
    assert_eq!(kb.count().await.expect("count"), left);
    drop(kb);
}

#[tokio::test]
async fn bad_documents_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(&dir.path().join("policies"), None, 0.0).expect("open");
    let docx = write(dir.path(), "policy.docx", b"PK\x03\x04");
    let err = import_document(&kb, &docx, &[]).await.expect_err("docx");
    assert!(matches!(err, DocumentError::Format { .. }), "{err}");
    assert!(err.to_string().contains(".pdf"), "{err}");

    let broken = write(dir.path(), "broken.pdf", b"%PDF-1.4\nthis is no PDF at all");
    let err = import_document(&kb, &broken, &[])
        .await
        .expect_err("broken pdf");
    assert!(matches!(err, DocumentError::Content { .. }), "{err}");

    let empty = write(dir.path(), "empty.md", b"# Only a heading\n");
    let err = import_document(&kb, &empty, &[])
        .await
        .expect_err("no text");
    assert!(err.to_string().contains("no text"), "{err}");

    let latin1 = write(dir.path(), "latin1.txt", b"caf\xe9 policy");
    let err = import_document(&kb, &latin1, &[])
        .await
        .expect_err("not utf-8");
    assert!(err.to_string().contains("UTF-8"), "{err}");

    let fine = write(dir.path(), "fine.txt", b"Some policy text.");
    let err = import_document(&kb, &fine, &["no spaces allowed".to_owned()])
        .await
        .expect_err("bad department");
    assert!(matches!(err, DocumentError::Department { .. }), "{err}");

    let missing = dir.path().join("missing.md");
    let err = import_document(&kb, &missing, &[])
        .await
        .expect_err("missing");
    assert!(matches!(err, DocumentError::Read { .. }), "{err}");
    assert_eq!(
        kb.count().await.expect("count"),
        0,
        "nothing bad was stored"
    );
    drop(kb);
}
