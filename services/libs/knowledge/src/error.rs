use std::io;
use std::path::PathBuf;

use qdrant_edge::OperationError;
use switchboard_errors::{ErrorKind, ServiceError};

/// Everything that can go wrong in the knowledge base, with the cause kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("cannot create the knowledge base directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Boxed: qdrant's error is large, and every `Result` in the crate would carry its size.
    #[error("the vector store failed to {action}")]
    Store {
        action: &'static str,
        #[source]
        source: Box<OperationError>,
    },
    /// The store's blocking task panicked or was cancelled, so the operation's outcome is unknown.
    #[error("the vector store task did not finish")]
    Task(#[source] tokio::task::JoinError),
    #[error("record {id:?}: {field} {problem}")]
    InvalidRecord {
        id: String,
        field: &'static str,
        problem: &'static str,
    },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The store was written with another embedder (or none): its vectors cannot be searched with
    /// this one's.
    #[error(
        "the knowledge base in {store} holds {found}, but the configured embedder needs {expected}; \
         import into a new one"
    )]
    Layout {
        store: String,
        expected: String,
        found: String,
    },
    #[error("cannot reach the Qdrant server at {url}")]
    Connect {
        url: String,
        /// Boxed like `Store`'s source.
        #[source]
        source: Box<qdrant_client::QdrantError>,
    },
    #[error("the Qdrant server failed to {action}")]
    Remote {
        action: &'static str,
        #[source]
        source: Box<qdrant_client::QdrantError>,
    },
    #[error("the embedder's vector dimension is not known yet")]
    UnknownDimension,
    #[error("cannot announce the write on the knowledge change feed")]
    Announce(#[source] switchboard_bus::BusError),
    #[error("the knowledge base already shares its changes")]
    FeedTwice,
    #[error("the embedder failed")]
    Embed(#[from] switchboard_embed::EmbedError),
    /// The keyword matcher over a history's words could not be built (more states than it can number).
    #[error("cannot build the keyword matcher over the history")]
    Keywords(#[source] aho_corasick::BuildError),
    #[error("cannot read CSV {path}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// A row after the header that cannot be read: fewer or more fields than the header where that is
    /// not allowed, text that is not UTF-8, or the file failing mid-way.
    #[error("{path} line {line}: cannot read the row")]
    Row {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: column {column:?} is not in the header; the header has {header:?}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        header: Vec<String>,
    },
}

impl KnowledgeError {
    /// Whether the Qdrant server did not answer (down, unreachable, overloaded): an outage that may
    /// end at any moment, where every other error is about the request itself.
    pub fn is_outage(&self) -> bool {
        let remote = match self {
            KnowledgeError::Connect { .. } => return true,
            KnowledgeError::Remote { source, .. } => source.as_ref(),
            _ => return false,
        };
        match remote {
            // The codes on which the client itself takes its channel for broken and reconnects: it
            // reports a server it cannot connect to as `Internal` ("Failed to connect to …").
            qdrant_client::QdrantError::ResponseError { status } => matches!(
                status.code(),
                tonic::Code::Internal
                    | tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
                    | tonic::Code::DeadlineExceeded
            ),
            qdrant_client::QdrantError::ResourceExhaustedError { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn store(action: &'static str) -> impl FnOnce(OperationError) -> Self {
        move |source| Self::Store {
            action,
            source: Box::new(source),
        }
    }

    pub(crate) fn remote(action: &'static str) -> impl FnOnce(qdrant_client::QdrantError) -> Self {
        move |source| Self::Remote {
            action,
            source: Box::new(source),
        }
    }
}

impl ServiceError for KnowledgeError {
    fn kind(&self) -> ErrorKind {
        match self {
            KnowledgeError::InvalidRecord { .. } | KnowledgeError::MissingColumn { .. } => {
                ErrorKind::InvalidArgument
            }
            KnowledgeError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            KnowledgeError::Csv { .. } | KnowledgeError::Row { .. } => ErrorKind::InvalidArgument,
            KnowledgeError::Store { .. }
            | KnowledgeError::Connect { .. }
            | KnowledgeError::Remote { .. }
            | KnowledgeError::Task(_)
            | KnowledgeError::Announce(_)
            | KnowledgeError::Embed(_) => ErrorKind::Unavailable,
            KnowledgeError::CreateDir { .. }
            | KnowledgeError::Open { .. }
            | KnowledgeError::Layout { .. }
            | KnowledgeError::UnknownDimension
            | KnowledgeError::Keywords(_)
            | KnowledgeError::FeedTwice => ErrorKind::Internal,
        }
    }

    /// The record field an invalid record is rejected for.
    fn field(&self) -> Option<&str> {
        match self {
            KnowledgeError::InvalidRecord { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<KnowledgeError> for tonic::Status {
    fn from(err: KnowledgeError) -> Self {
        switchboard_errors::grpc_status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_record_is_invalid_argument_naming_the_field() {
        let status = tonic::Status::from(KnowledgeError::InvalidRecord {
            id: "t-1".into(),
            field: "department",
            problem: "is empty",
        });
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("department"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("t-1"), "{}", status.message());
    }

    #[test]
    fn store_failure_is_unavailable_with_its_cause() {
        let status = tonic::Status::from(KnowledgeError::store("search")(
            OperationError::validation_error("bad vector"),
        ));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains("bad vector"),
            "{}",
            status.message()
        );
    }
}
