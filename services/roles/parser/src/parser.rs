use std::fmt::Debug;

use async_trait::async_trait;
use switchboard_proto::{Parsed, Ticket};

use crate::ParseError;

/// Turns a ticket's text into its [`Parsed`] section.
///
/// The seam where parsers plug in: [`LocalParser`](crate::LocalParser), the
/// [`LlmParser`](crate::LlmParser) behind an OpenAI-compatible chat-completions API, and the
/// [`FallbackParser`](crate::FallbackParser) that puts the local one behind the LLM. Every implementation
/// must:
///
/// - treat the ticket text as data, never as instructions. Anyone can write a ticket, so an LLM parser must
///   fence the text off in its prompt and schema-check the reply; nothing in the text may choose the
///   department, the priority, or how the parser itself behaves;
/// - set [`Parsed::parser`] to who produced the section (`"local"`, `"llm:<provider>/<model>"`, or
///   `"local (fallback: <reason>)"`), because every decision cites it as evidence;
/// - say where [`Parsed::problem_type`] came from: `Parser` when it read the type from the ticket, which is
///   then final, or `Keyword` when it only guessed, which the retriever replaces with the type of the
///   nearest tickets in the knowledge base when they have one;
/// - set [`Parsed::language`], and keep [`Parsed::complexity`] within 0..=5 (0 when it cannot tell);
/// - return a [`ParseError`] only for failures a later attempt might cure (the backend is down, or gave a
///   malformed answer): the stage retries the ticket, then dead-letters it.
#[async_trait]
pub trait Parser: Send + Sync + Debug {
    /// Names this parser in logs: `"local"`, or `"llm:<provider>/<model>"`.
    fn name(&self) -> String;

    async fn parse(&self, ticket: &Ticket) -> Result<Parsed, ParseError>;
}
