//! Policy documents as evidence: Markdown, plain text, HTML and PDF files turned into passages of a few
//! paragraphs, each stored with its document, its position in it and the departments the document
//! concerns, in a knowledge base of their own (so passages never count as past tickets). Re-importing a
//! document replaces all its passages; removing it deletes them.
//!
//! A passage's id is `<document>#<position>`: the document as it was named on import, and where the
//! passage is in it ("page 3, passage 7", "§ Refunds, passage 2", "passage 4"), so the decision board
//! can say where a relevant passage comes from without a second lookup.

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use switchboard_proto::{KnowledgeRecord, SimilarTicket};

use crate::error::KnowledgeError;
use crate::store::KnowledgeBase;

/// The `source` of every passage record.
pub const POLICY_SOURCE: &str = "policy";

/// Longest passage, in characters: a few paragraphs, about what a sentence model reads at once.
const MAX_PASSAGE_CHARS: usize = 800;

/// Lines at the top of a document searched for a `Departments:` line.
const HEADER_LINES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(
        "{path}: not a document this import reads; it takes .md, .markdown, .txt, .text, .html, .htm and .pdf"
    )]
    Format { path: String },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Content { path: String, problem: String },
    #[error("{path}: department {department:?} must be non-empty letters, digits, - _ = . /")]
    Department { path: String, department: String },
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
}

/// What an import did to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentImport {
    pub document: String,
    pub passages: usize,
    /// Passages of an earlier import of the document, deleted.
    pub replaced: usize,
    pub departments: Vec<String>,
}

/// A relevant passage as a ticket's evidence shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PassageRef {
    pub document: String,
    pub position: String,
    pub departments: Vec<String>,
}

impl PassageRef {
    /// Reads a passage's document, position and departments back from its stored record.
    pub fn of(hit: &SimilarTicket) -> Self {
        let (document, position) = hit.id.rsplit_once('#').unwrap_or((&hit.id, ""));
        Self {
            document: document.to_owned(),
            position: position.to_owned(),
            departments: departments_of(&hit.department),
        }
    }
}

/// The departments a passage record names (stored comma-separated: department ids hold no commas).
pub fn departments_of(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Imports the document at `path`, concerning `departments` and any its own `Departments:` line names,
/// replacing the passages of an earlier import of the same path.
pub async fn import_document(
    kb: &KnowledgeBase,
    path: &Path,
    departments: &[String],
) -> Result<DocumentImport, DocumentError> {
    let document = document_name(path);
    let owned = path.to_owned();
    let sections = tokio::task::spawn_blocking(move || read_sections(&owned))
        .await
        .map_err(KnowledgeError::Task)??;
    let mut concerned: Vec<String> = departments.to_vec();
    for section in &sections {
        concerned.extend(stated_departments(&section.1));
    }
    concerned.sort();
    concerned.dedup();
    if let Some(bad) = concerned
        .iter()
        .find(|d| switchboard_bus::validate_key(d).is_err())
    {
        return Err(DocumentError::Department {
            path: document,
            department: bad.clone(),
        });
    }
    let passages = passages(&sections);
    if passages.is_empty() {
        return Err(DocumentError::Content {
            path: document,
            problem: "holds no text".into(),
        });
    }
    let replaced = remove_document(kb, &document).await?;
    let records: Vec<KnowledgeRecord> = passages
        .into_iter()
        .map(|(position, text)| KnowledgeRecord {
            id: format!("{document}#{position}"),
            text,
            department: concerned.join(","),
            source: POLICY_SOURCE.to_owned(),
            weight: 1.0,
            ..KnowledgeRecord::default()
        })
        .collect();
    let count = kb.upsert(records).await?;
    kb.flush().await;
    Ok(DocumentImport {
        document,
        passages: count,
        replaced,
        departments: concerned,
    })
}

/// Deletes every passage of `document` (named as on import) and returns how many there were.
pub async fn remove_document(kb: &KnowledgeBase, document: &str) -> Result<usize, KnowledgeError> {
    let prefix = format!("{document}#");
    let ids: Vec<String> = kb
        .records()
        .await?
        .into_iter()
        .map(|s| s.record.id)
        .filter(|id| id.starts_with(&prefix) && !id[prefix.len()..].contains('#'))
        .collect();
    kb.delete(&ids).await?;
    kb.flush().await;
    Ok(ids.len())
}

/// Every imported document with its number of passages, by name.
pub async fn list_documents(kb: &KnowledgeBase) -> Result<Vec<(String, usize)>, KnowledgeError> {
    let mut counts = std::collections::BTreeMap::new();
    for stored in kb.records().await? {
        if let Some((document, _)) = stored.record.id.rsplit_once('#') {
            *counts.entry(document.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// The path as given, without a leading `./`: the name a re-import must use to replace it.
fn document_name(path: &Path) -> String {
    let name = path.to_string_lossy();
    name.strip_prefix("./").unwrap_or(&name).to_owned()
}

/// A document's text in sections, each with the label of where it is (a page, a heading, or none).
fn read_sections(path: &Path) -> Result<Vec<(String, String)>, DocumentError> {
    let shown = document_name(path);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|source| DocumentError::Read {
        path: shown.clone(),
        source,
    })?;
    let content = |problem: String| DocumentError::Content {
        path: shown.clone(),
        problem,
    };
    let utf8 = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|e| content(format!("is not UTF-8 text ({e})")))
    };
    match extension.as_str() {
        "md" | "markdown" => Ok(markdown_sections(&utf8(bytes)?)),
        "txt" | "text" => Ok(vec![(String::new(), utf8(bytes)?)]),
        "html" | "htm" => {
            // Wide enough that html2text never wraps a paragraph into lines of its own.
            let text = html2text::from_read(bytes.as_slice(), 100_000)
                .map_err(|e| content(format!("cannot read the HTML ({e})")))?;
            Ok(vec![(String::new(), text)])
        }
        "pdf" => {
            // The PDF parser panics on some malformed files: a panic is the file's fault, reported so.
            let pages =
                std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(&bytes))
                    .map_err(|_| content("cannot read the PDF (the parser failed on it)".into()))?
                    .map_err(|e| content(format!("cannot read the PDF ({e})")))?;
            Ok(pages
                .into_iter()
                .enumerate()
                .map(|(i, text)| (format!("page {}", i + 1), text))
                .collect())
        }
        _ => Err(DocumentError::Format { path: shown }),
    }
}

/// Markdown as text, one section per heading (labelled `§ <heading>`), the text before the first
/// heading unlabelled. Paragraphs and list items end with a blank line, so they split like plain text.
fn markdown_sections(source: &str) -> Vec<(String, String)> {
    let mut sections = vec![(String::new(), String::new())];
    let mut heading: Option<String> = None;
    for event in Parser::new(source) {
        match event {
            Event::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H3 => {
                heading = Some(String::new());
            }
            Event::End(TagEnd::Heading(level)) if level <= HeadingLevel::H3 => {
                let title = heading.take().unwrap_or_default();
                sections.push((format!("§ {}", title.trim()), String::new()));
            }
            Event::Text(text) | Event::Code(text) => match &mut heading {
                Some(title) => title.push_str(&text),
                None => current(&mut sections).push_str(&text),
            },
            Event::SoftBreak | Event::HardBreak => current(&mut sections).push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_)) => {
                current(&mut sections).push_str("\n\n");
            }
            _ => {}
        }
    }
    sections
}

fn current(sections: &mut [(String, String)]) -> &mut String {
    &mut sections.last_mut().expect("at least one section").1
}

/// The departments a `Departments:` (or `部门：`) line near the top of a section names.
fn stated_departments(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(HEADER_LINES)
        .find_map(|line| {
            let lower = line.to_lowercase();
            ["departments:", "department:", "部门：", "部门:"]
                .iter()
                .find_map(|key| {
                    lower
                        .strip_prefix(key)
                        .map(|_| line[key.len()..].to_owned())
                })
        })
        .map(|list| {
            list.split([',', '，', '、', ';'])
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Splits every section into passages of whole paragraphs up to [`MAX_PASSAGE_CHARS`] (a longer
/// paragraph is cut at sentence ends, or hard where it has none), each labelled with its section and
/// its number in the document.
fn passages(sections: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (label, text) in sections {
        let mut passage = String::new();
        let flush = |passage: &mut String, out: &mut Vec<(String, String)>| {
            let body = passage.trim();
            if !body.is_empty() {
                let n = out.len() + 1;
                // '#' ends the document's name in a passage id, so none may follow it.
                let place = label.replace('#', "");
                let position = if place.is_empty() {
                    format!("passage {n}")
                } else {
                    format!("{place}, passage {n}")
                };
                out.push((position, body.to_owned()));
            }
            passage.clear();
        };
        for paragraph in text
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        {
            if paragraph.is_empty() || is_departments_line(&paragraph) {
                continue;
            }
            for piece in pieces(&paragraph) {
                if passage.chars().count() + piece.chars().count() + 1 > MAX_PASSAGE_CHARS {
                    flush(&mut passage, &mut out);
                }
                if !passage.is_empty() {
                    passage.push('\n');
                }
                passage.push_str(&piece);
            }
        }
        flush(&mut passage, &mut out);
    }
    out
}

fn is_departments_line(paragraph: &str) -> bool {
    !stated_departments(paragraph).is_empty() && paragraph.lines().count() == 1
}

/// A paragraph in pieces of at most [`MAX_PASSAGE_CHARS`]: whole sentences where it has them.
fn pieces(paragraph: &str) -> Vec<String> {
    if paragraph.chars().count() <= MAX_PASSAGE_CHARS {
        return vec![paragraph.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for c in paragraph.chars() {
        piece.push(c);
        let sentence_end = matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '；');
        if piece.chars().count() >= MAX_PASSAGE_CHARS
            || (sentence_end && piece.chars().count() >= MAX_PASSAGE_CHARS / 2)
        {
            pieces.push(std::mem::take(&mut piece).trim().to_owned());
        }
    }
    if !piece.trim().is_empty() {
        pieces.push(piece.trim().to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_splits_by_heading_and_keeps_the_departments_line_out_of_the_text() {
        let sections = markdown_sections(
            "Departments: billing, refunds\n\n# Refunds\n\nA refund takes *five* working days.\n\n\
             - Card refunds go back to the card.\n\n## Fees\n\nNo fee is charged for a refund.\n",
        );
        assert_eq!(stated_departments(&sections[0].1), ["billing", "refunds"]);
        let passages = passages(&sections);
        assert_eq!(passages.len(), 2, "{passages:?}");
        assert_eq!(passages[0].0, "§ Refunds, passage 1");
        assert_eq!(
            passages[0].1,
            "A refund takes five working days.\nCard refunds go back to the card."
        );
        assert_eq!(passages[1].0, "§ Fees, passage 2");
    }

    #[test]
    fn long_text_is_cut_into_passages_of_whole_sentences() {
        let sentence = "This sentence is about the housing fund withdrawal rules. ";
        let text = sentence.repeat(40);
        let passages = passages(&[(String::new(), text)]);
        assert!(passages.len() >= 3, "{}", passages.len());
        for (position, body) in &passages {
            assert!(body.chars().count() <= MAX_PASSAGE_CHARS, "{position}");
            assert!(body.ends_with('.'), "{position}: {body}");
        }
        assert_eq!(passages[0].0, "passage 1");
    }

    #[test]
    fn chinese_department_lines_are_read() {
        assert_eq!(
            stated_departments("部门：unified_auth、billing\n正文"),
            ["unified_auth", "billing"]
        );
        assert!(stated_departments("no header here\nat all").is_empty());
    }

    #[test]
    fn a_passage_reads_its_document_and_position_back() {
        let hit = SimilarTicket {
            id: "policies/refunds.md#§ Fees, passage 2".into(),
            department: "billing,refunds".into(),
            ..SimilarTicket::default()
        };
        let passage = PassageRef::of(&hit);
        assert_eq!(passage.document, "policies/refunds.md");
        assert_eq!(passage.position, "§ Fees, passage 2");
        assert_eq!(passage.departments, ["billing", "refunds"]);
    }
}
