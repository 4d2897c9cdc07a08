use async_trait::async_trait;
use switchboard_proto::{Entity, Parsed, ProblemTypeSource, Ticket};

use crate::{ParseError, Parser, complexity, entities, keywords, places, sentences};

const NAME: &str = "local";

/// Parses with patterns and word counts alone: no network and no model, so it always answers. It is the
/// fallback when the LLM parser cannot, and the default when none is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalParser;

impl LocalParser {
    /// The parse itself, synchronous: it only reads `text`.
    pub fn parse_text(&self, text: &str) -> Parsed {
        let found = entities::find(text);
        let topic_tokens = switchboard_text::tokens(&entities::mask(text, &found));
        // The same order number quoted twice is one entity.
        let mut entities: Vec<Entity> = Vec::new();
        for entity in found
            .into_iter()
            .map(|f| f.entity)
            .chain(places::find(&topic_tokens))
        {
            if !entities.contains(&entity) {
                entities.push(entity);
            }
        }
        let keywords = keywords::rank(&topic_tokens);
        let sentences = sentences::split(text);
        Parsed {
            parser: NAME.to_owned(),
            summary: sentences::summary(&sentences),
            // The top keyword is only a guess at the problem type: the retriever replaces it with the type
            // of the nearest tickets in the knowledge base when they have one, and the source says which.
            problem_type: keywords.first().cloned().unwrap_or_default(),
            problem_type_source: ProblemTypeSource::Keyword.into(),
            problem_type_neighbours: Vec::new(),
            complexity: complexity::tier(topic_tokens.len(), &sentences, entities.len()),
            keywords,
            entities,
            // Departments are the router's to name; the local parser has no grounds to suggest one.
            suggested_departments: Vec::new(),
            language: switchboard_text::language(text).to_owned(),
        }
    }
}

#[async_trait]
impl Parser for LocalParser {
    fn name(&self) -> String {
        NAME.to_owned()
    }

    async fn parse(&self, ticket: &Ticket) -> Result<Parsed, ParseError> {
        Ok(self.parse_text(&ticket.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_entity(parsed: &Parsed, kind: &str, value: &str) -> bool {
        parsed
            .entities
            .iter()
            .any(|e| e.kind == kind && e.value == value)
    }

    #[test]
    fn chinese_ticket() {
        let parsed = LocalParser.parse_text("输对密码进不去，订单号 A2024031501 退款 300元");
        assert_eq!(parsed.parser, "local");
        assert_eq!(parsed.language, "zh");
        assert!(
            parsed.keywords.iter().any(|k| k == "密码"),
            "{:?}",
            parsed.keywords
        );
        assert!(
            has_entity(&parsed, "ORDER", "A2024031501"),
            "{:?}",
            parsed.entities
        );
        assert!(
            has_entity(&parsed, "AMOUNT", "300元"),
            "{:?}",
            parsed.entities
        );
        assert!(
            !parsed
                .keywords
                .iter()
                .any(|k| k.contains("2024") || k == "300"),
            "{:?}",
            parsed.keywords
        );
        assert_eq!(
            parsed.summary,
            "输对密码进不去，订单号 A2024031501 退款 300元"
        );
        assert_eq!(parsed.problem_type, "密码");
        assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Keyword);
        assert_eq!(parsed.complexity, 1);
    }

    #[test]
    fn english_ticket() {
        let parsed = LocalParser.parse_text(
            "My refund for order #A77120 never arrived. I was charged $49.99 on March 3 and the refund \
             page shows an error. Call me at <PHONE_1>.",
        );
        assert_eq!(parsed.language, "en");
        assert_eq!(parsed.keywords[0], "refund", "{:?}", parsed.keywords);
        assert_eq!(parsed.problem_type, "refund");
        for (kind, value) in [
            ("ORDER", "A77120"),
            ("AMOUNT", "$49.99"),
            ("DATE", "March 3"),
            ("PHONE", "<PHONE_1>"),
        ] {
            assert!(
                has_entity(&parsed, kind, value),
                "{kind} {value}: {:?}",
                parsed.entities
            );
        }
        assert_eq!(parsed.summary, "My refund for order #A77120 never arrived");
        // Two problem sentences and four entities.
        assert_eq!(parsed.complexity, 3);
    }

    #[test]
    fn places_and_repeated_entities() {
        let parsed = LocalParser.parse_text(
            "上海市浦东新区的路灯坏了三天。订单号 B20240501 和订单号 B20240501 是同一单。",
        );
        for place in ["上海市", "浦东新区"] {
            assert!(has_entity(&parsed, "PLACE", place), "{:?}", parsed.entities);
        }
        assert_eq!(
            parsed.entities.iter().filter(|e| e.kind == "ORDER").count(),
            1,
            "{:?}",
            parsed.entities
        );
    }

    #[test]
    fn empty_text_gives_an_empty_section() {
        let parsed = LocalParser.parse_text("");
        assert_eq!(parsed.language, "und");
        assert!(
            parsed.keywords.is_empty() && parsed.entities.is_empty() && parsed.summary.is_empty()
        );
        assert_eq!(parsed.complexity, 1);
    }
}
