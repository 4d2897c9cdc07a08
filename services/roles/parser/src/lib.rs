//! The parser role: turns a ticket's free text into a structured problem (summary, keywords, entities,
//! complexity). Parsers sit behind the [`Parser`] trait so the LLM parser and the local one are
//! interchangeable, and the local one can stand in whenever the LLM cannot answer.

mod breaker;
mod catalog;
mod complexity;
mod entities;
mod error;
mod fallback;
mod keywords;
mod limiter;
mod llm;
mod local;
mod parser;
mod places;
mod role;
mod sentences;
mod stage;

pub use catalog::{Department, DepartmentCatalog};
pub use error::ParseError;
pub use fallback::FallbackParser;
pub use llm::{LlmConfig, LlmConfigError, LlmError, LlmParser, LlmSetupError};
pub use local::LocalParser;
pub use parser::Parser;
pub use role::role;
pub use stage::ParserStage;
