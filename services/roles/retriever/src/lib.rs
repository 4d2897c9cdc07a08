//! The retriever role: the pipeline stage that attaches to each ticket the most similar tickets of the
//! knowledge base, its classifier's department probabilities and the departments whose duty descriptions
//! read most like it (and their problem type to a locally
//! parsed one) and an incident signal when other customers just sent close tickets; and the
//! `KnowledgeBase` gRPC service. The knowledge base itself is the `switchboard-knowledge` library.

mod duties;
mod incidents;
mod problem_type;
mod role;
mod service;
mod stage;

pub use duties::{DUTY_MATCHES, Duties, DutyWatch};
pub use incidents::{INCIDENTS_BUCKET, IncidentFeed, IncidentWatch};
pub use role::role;
pub use service::KnowledgeBaseService;
pub use stage::{POLICY_PASSAGES, RetrieverStage};
