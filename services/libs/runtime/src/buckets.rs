//! The KV buckets more than one role uses, named once. A bucket only one library or role uses is named
//! by its owner (`switchboard_policy::THREADS_BUCKET`, `switchboard_knowledge::KNOWLEDGE_BUCKET`).

/// Routing rules as JSON by id: the router decides by them and serves their editing, the LLM parser
/// reads which departments they name.
pub const RULES: &str = "rules";

/// The latest decided ticket by id: the router writes it, feedback and the decision board read it.
pub const DECISIONS: &str = "decisions";

/// The department catalog, by id, each with its duty description: the retriever announces the ones
/// the knowledge base knows, admins describe them, the LLM parser may suggest them (see
/// [`crate::departments`]).
pub const DEPARTMENTS: &str = "departments";
