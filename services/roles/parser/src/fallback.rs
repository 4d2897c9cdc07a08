//! The LLM first, the local parser whenever it cannot answer: a ticket is never held up or dead-lettered
//! because a provider is down, and its decision records which parser spoke and why.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_proto::{Parsed, Ticket};

use crate::{LocalParser, ParseError, Parser};

#[derive(Debug, Clone)]
pub struct FallbackParser {
    primary: Arc<dyn Parser>,
}

impl FallbackParser {
    pub fn new(primary: Arc<dyn Parser>) -> Self {
        Self { primary }
    }
}

#[async_trait]
impl Parser for FallbackParser {
    fn name(&self) -> String {
        format!("{} (fallback: local)", self.primary.name())
    }

    async fn parse(&self, ticket: &Ticket) -> Result<Parsed, ParseError> {
        match self.primary.parse(ticket).await {
            Ok(parsed) => Ok(parsed),
            Err(e) => {
                let reason = e.reason();
                // The reason is a fixed code; the error chain could quote the provider's reply.
                tracing::warn!(
                    ticket = %ticket.id,
                    parser = %self.primary.name(),
                    reason,
                    "parser failed; using the local parser"
                );
                let mut parsed = LocalParser.parse_text(&ticket.text);
                parsed.parser = format!("local (fallback: {reason})");
                Ok(parsed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl Parser for Down {
        fn name(&self) -> String {
            "down".to_owned()
        }

        async fn parse(&self, _: &Ticket) -> Result<Parsed, ParseError> {
            Err(ParseError::Unavailable {
                parser: self.name(),
                source: io::Error::other("refused").into(),
            })
        }
    }

    #[tokio::test]
    async fn falls_back_to_local_and_says_why() {
        let parser = FallbackParser::new(Arc::new(Down));
        let ticket = Ticket {
            text: "App 登录失败".into(),
            ..Ticket::default()
        };
        let parsed = parser.parse(&ticket).await.expect("local always answers");
        assert_eq!(parsed.parser, "local (fallback: unavailable)");
        assert_eq!(parsed.language, "zh");
    }
}
