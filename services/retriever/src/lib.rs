//! The retriever role: the knowledge base of historical tickets (BM25 sparse and, with an embedder,
//! dense vectors in qdrant-edge in-process or on a Qdrant server) with a classifier trained from it,
//! the pipeline stage that attaches the most similar tickets and the classifier's department
//! probabilities to each ticket (and their problem type to a locally parsed one), the `KnowledgeBase`
//! gRPC service, and CSV import of a ticket system's history.

mod bm25;
mod classifier;
mod edge_store;
mod error;
mod import;
mod incidents;
mod layout;
mod point;
mod problem_type;
mod remote_store;
mod service;
mod stage;
mod store;
mod timestamp;
mod vector_store;

pub use classifier::{Classifier, FitReport, ModelScores, Training};
pub use error::RetrieverError;
pub use import::{CsvColumns, ImportProgress, ImportSummary, SkipReason, SkippedRow, import_csv};
pub use incidents::IncidentWatch;
pub use service::KnowledgeBaseService;
pub use stage::RetrieverStage;
pub use store::{KnowledgeBase, Query, StoredRecord};
