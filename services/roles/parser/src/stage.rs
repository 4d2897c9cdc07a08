use std::sync::Arc;

use async_trait::async_trait;
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage};

use crate::Parser;

/// Highest complexity tier the proto defines.
const MAX_COMPLEXITY: u32 = 5;

/// The parser role's stage: fills `ticket.parsed` with whichever [`Parser`] it was built with.
#[derive(Debug, Clone)]
pub struct ParserStage {
    parser: Arc<dyn Parser>,
}

impl ParserStage {
    pub fn new(parser: Arc<dyn Parser>) -> Self {
        Self { parser }
    }
}

#[async_trait]
impl TicketStage for ParserStage {
    const INPUT: Stage = Stage::Received;

    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        // Every parse error is a backend that may recover or a model that may answer better next time.
        let mut parsed = self
            .parser
            .parse(ticket)
            .await
            .map_err(HandlerError::transient)?;
        // The Parser contract asks for both; holding every implementation to it here keeps the evidence
        // honest and the tier within what the sentiment stage compares against.
        if parsed.parser.is_empty() {
            parsed.parser = self.parser.name();
        }
        parsed.complexity = parsed.complexity.min(MAX_COMPLEXITY);
        if ticket.language.is_empty() {
            ticket.language.clone_from(&parsed.language);
        }
        tracing::debug!(
            ticket = %ticket.id,
            parser = %parsed.parser,
            complexity = parsed.complexity,
            entities = parsed.entities.len(),
            "ticket parsed"
        );
        ticket.parsed = Some(parsed);
        Ok(Stage::Parsed)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use switchboard_proto::Parsed;

    use super::*;
    use crate::{LocalParser, ParseError};

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl Parser for Down {
        fn name(&self) -> String {
            "down".to_owned()
        }

        async fn parse(&self, _: &Ticket) -> Result<Parsed, ParseError> {
            let source = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
            Err(ParseError::Unavailable {
                parser: self.name(),
                source: source.into(),
            })
        }
    }

    /// A parser that breaks the contract: no name, a tier out of range.
    #[derive(Debug)]
    struct Careless;

    #[async_trait]
    impl Parser for Careless {
        fn name(&self) -> String {
            "careless".to_owned()
        }

        async fn parse(&self, _: &Ticket) -> Result<Parsed, ParseError> {
            Ok(Parsed {
                complexity: 42,
                language: "en".to_owned(),
                ..Parsed::default()
            })
        }
    }

    fn ticket(text: &str) -> Ticket {
        Ticket {
            id: "t-1".to_owned(),
            text: text.to_owned(),
            ..Ticket::default()
        }
    }

    #[tokio::test]
    async fn fills_the_parsed_section_and_the_language() {
        let stage = ParserStage::new(Arc::new(LocalParser));
        let mut t = ticket("App 登录失败，提示密码错误");
        assert_eq!(stage.process(&mut t).await.ok(), Some(Stage::Parsed));
        assert_eq!(t.language, "zh");
        let parsed = t.parsed.unwrap_or_default();
        assert_eq!(parsed.parser, "local");
        assert!(
            parsed.keywords.iter().any(|k| k == "登录"),
            "{:?}",
            parsed.keywords
        );
    }

    #[tokio::test]
    async fn keeps_the_language_intake_set() {
        let stage = ParserStage::new(Arc::new(LocalParser));
        let mut t = Ticket {
            language: "en".to_owned(),
            ..ticket("登录失败")
        };
        stage.process(&mut t).await.ok();
        assert_eq!(t.language, "en");
        assert_eq!(t.parsed.map(|p| p.language).as_deref(), Some("zh"));
    }

    #[tokio::test]
    async fn parse_errors_are_transient_and_keep_their_cause() {
        let stage = ParserStage::new(Arc::new(Down));
        let mut t = ticket("anything");
        let err = stage.process(&mut t).await.err();
        let Some(HandlerError::Transient(cause)) = err else {
            panic!("expected a transient error, got {err:?}")
        };
        let cause = cause
            .downcast_ref::<ParseError>()
            .map(|e| std::error::Error::source(e).map(ToString::to_string));
        assert_eq!(cause, Some(Some("connection refused".to_owned())));
        assert!(t.parsed.is_none());
    }

    #[tokio::test]
    async fn holds_parsers_to_the_contract() {
        let stage = ParserStage::new(Arc::new(Careless));
        let mut t = ticket("anything");
        stage.process(&mut t).await.ok();
        let parsed = t.parsed.unwrap_or_default();
        assert_eq!(parsed.parser, "careless");
        assert_eq!(parsed.complexity, MAX_COMPLEXITY);
    }
}
