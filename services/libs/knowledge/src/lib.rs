//! The knowledge base and its learned model, shared by every role that reads or teaches it: historical
//! tickets as BM25 sparse and, with an embedder, dense vectors (qdrant-edge in-process or a Qdrant
//! server), the classifier trained from them, the evidence blend that turns similar tickets and the
//! classifier's probabilities into department scores (and the blend weight chosen on the held-out
//! tenth), policy documents as passages, import of a ticket system's history (from CSV or its database), the keywords mined from it per department, and
//! the labelled CSV sets the benches score on.
//!
//! The retriever role searches it, feedback teaches it, the router weighs its evidence, and the bench
//! replays it: none of them has to simulate another to do so.

pub mod bm25;
mod changes;
mod classifier;
mod csv_read;
pub mod documents;
mod edge_store;
mod error;
pub mod evidence;
mod import;
mod keywords;
mod layout;
mod point;
mod remote_store;
mod store;
mod vector_store;

pub use changes::KNOWLEDGE_BUCKET;
pub use classifier::{Classifier, FitReport, ModelScores, Trainer, Training, TrainingPlan};
pub use csv_read::{LabelledRow, read_labelled, read_texts};
pub use error::KnowledgeError;
pub use import::{
    ColumnMap, DatabaseImport, DatabaseImportError, DatabaseQuery, IMPORTS_BUCKET, ImportProgress,
    ImportSummary, SkipReason, SkippedRow, import_csv, import_database,
};
pub use keywords::{DepartmentCount, HistoryTicket, HotKeyword, Keyword, KeywordTable};
pub use store::{KnowledgeBase, Query, StoredRecord};
