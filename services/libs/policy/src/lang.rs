//! The languages decisions are worded in. Every explanation is made once from the facts, in each
//! language: English for logs, the CLI and English readers, Chinese for the Chinese readers the desk
//! is built for first. Department names, ids and numbers stay as they are in both.

/// A language a decision's words are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// What joins the clauses of one sentence (`anger 0.80 ≥ 0.60; complexity 4 ≥ 3`): Chinese uses
    /// the full-width semicolon.
    pub fn list_separator(self) -> &'static str {
        match self {
            Lang::En => "; ",
            Lang::Zh => "；",
        }
    }
}
