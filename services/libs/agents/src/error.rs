//! The agents library's errors: a bad agent names its field; a store failure keeps its cause.

use switchboard_bus::BusError;

/// An agent that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct AgentError {
    /// The field at fault, as the JSON and the CSV name it (`skills.账户`, `shift.hours`).
    pub field: String,
    pub problem: String,
}

impl AgentError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the {bucket} entry {key} is not the JSON it should be")]
    Decode {
        bucket: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// Other writers changed the record between every read and write this one made.
    #[error("the {bucket} entry {key} changed under each of {attempts} attempts to update it")]
    Contended {
        bucket: &'static str,
        key: String,
        attempts: u32,
    },
    #[error(transparent)]
    Invalid(#[from] AgentError),
    #[error("the agents' store failed")]
    Bus(#[from] BusError),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Bus(_) | Self::Contended { .. })
    }
}
