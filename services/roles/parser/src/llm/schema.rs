//! The shape the model must answer in, checked in Rust: DeepSeek's JSON mode promises JSON, not a schema.
//! Unknown fields are ignored (an injected `"rule"` or `"escalate"` has nowhere to go); a missing or
//! mistyped required field makes the whole answer invalid, and the call is retried.

use std::collections::BTreeSet;

use serde::Deserialize;
use switchboard_proto::Entity;

use crate::llm::LlmError;

/// The tiers the proto defines.
const TIERS: std::ops::RangeInclusive<u32> = 1..=5;
/// Lengths the decision board can show; longer answers are cut rather than rejected.
const MAX_SUMMARY_CHARS: usize = 200;
const MAX_FIELD_CHARS: usize = 60;
const MAX_KEYWORDS: usize = 8;
const MAX_ENTITIES: usize = 20;

#[derive(Debug, Deserialize)]
struct Answer {
    summary: String,
    problem_type: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    entities: Vec<AnswerEntity>,
    complexity: Tier,
    language: String,
    #[serde(default)]
    suggested_departments: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AnswerEntity {
    kind: String,
    value: String,
}

/// `3`, `"3"` or `"L3"`: models write the tier either way although the prompt asks for a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tier {
    Number(u32),
    Text(String),
}

impl Tier {
    fn value(&self) -> Option<u32> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) => {
                let s = s.trim();
                s.strip_prefix(['L', 'l']).unwrap_or(s).parse().ok()
            }
        }
    }
}

/// A schema-checked answer. Departments are already filtered to the allowed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub summary: String,
    pub problem_type: String,
    pub keywords: Vec<String>,
    pub entities: Vec<Entity>,
    pub complexity: u32,
    pub language: String,
    pub departments: Vec<String>,
    /// Suggested departments that are not in the allowed set.
    pub dropped: usize,
}

/// Parses and checks the model's answer against the schema and the allowed departments.
pub(crate) fn check(content: &str, allowed: &BTreeSet<String>) -> Result<Checked, LlmError> {
    if content.trim().is_empty() {
        return Err(LlmError::Empty);
    }
    let answer: Answer = serde_json::from_str(content).map_err(LlmError::Json)?;
    let complexity = answer
        .complexity
        .value()
        .filter(|t| TIERS.contains(t))
        .ok_or(LlmError::Schema("complexity is not a tier from 1 to 5"))?;
    let language = answer.language.trim().to_ascii_lowercase();
    if !is_language_code(&language) {
        return Err(LlmError::Schema("language is not a language code"));
    }
    let mut departments: Vec<String> = Vec::new();
    let mut dropped = 0;
    for d in &answer.suggested_departments {
        let d = d.trim();
        if !allowed.contains(d) {
            dropped += 1;
        } else if !departments.iter().any(|kept| kept == d) {
            departments.push(d.to_owned());
        }
    }
    Ok(Checked {
        summary: cut(answer.summary.trim(), MAX_SUMMARY_CHARS),
        problem_type: cut(answer.problem_type.trim(), MAX_FIELD_CHARS),
        keywords: answer
            .keywords
            .iter()
            .map(|k| cut(k.trim(), MAX_FIELD_CHARS))
            .filter(|k| !k.is_empty())
            .take(MAX_KEYWORDS)
            .collect(),
        entities: answer
            .entities
            .iter()
            .filter(|e| !e.kind.trim().is_empty() && !e.value.trim().is_empty())
            .take(MAX_ENTITIES)
            .map(|e| Entity {
                kind: cut(&e.kind.trim().to_ascii_uppercase(), MAX_FIELD_CHARS),
                value: cut(e.value.trim(), MAX_FIELD_CHARS),
            })
            .collect(),
        complexity,
        language,
        departments,
        dropped,
    })
}

/// ISO 639 codes as the rest of Switchboard writes them: `zh`, `en`, `yue`, optionally with a region.
fn is_language_code(code: &str) -> bool {
    let (base, region) = match code.split_once('-') {
        Some((base, region)) => (base, Some(region)),
        None => (code, None),
    };
    let base_ok = (2..=3).contains(&base.len()) && base.bytes().all(|c| c.is_ascii_lowercase());
    let region_ok = region
        .is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|c| c.is_ascii_alphanumeric()));
    base_ok && region_ok
}

fn cut(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((at, _)) => s[..at].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> BTreeSet<String> {
        ["billing", "unified_auth"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    const GOOD: &str = r#"{"summary":"Login fails","problem_type":"login","keywords":["login","password"],
        "entities":[{"kind":"phone","value":"<PHONE_1>"}],"complexity":"L2","language":"en",
        "suggested_departments":["unified_auth","root_admin","unified_auth"],"escalate":true}"#;

    #[test]
    fn a_good_answer_with_extras_and_an_unknown_department() {
        let checked = check(GOOD, &allowed()).expect("valid");
        assert_eq!(checked.complexity, 2);
        assert_eq!(checked.departments, ["unified_auth"]);
        assert_eq!(checked.dropped, 1);
        assert_eq!(checked.entities[0].kind, "PHONE");
    }

    #[test]
    fn tiers_as_numbers_strings_or_levels() {
        for (tier, expected) in [("3", Some(3)), ("\"4\"", Some(4)), ("\"l5\"", Some(5))] {
            let answer = format!(
                r#"{{"summary":"s","problem_type":"p","complexity":{tier},"language":"zh"}}"#
            );
            assert_eq!(
                check(&answer, &allowed()).ok().map(|c| c.complexity),
                expected
            );
        }
    }

    #[test]
    fn off_schema_answers_are_invalid() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("not json", "invalid_json"),
            (r#"{"summary":"s"}"#, "invalid_json"),
            (
                r#"{"summary":"s","problem_type":"p","complexity":9,"language":"zh"}"#,
                "invalid_schema",
            ),
            (
                r#"{"summary":"s","problem_type":"p","complexity":"L0","language":"zh"}"#,
                "invalid_schema",
            ),
            (
                r#"{"summary":"s","problem_type":"p","complexity":2,"language":"Chinese please"}"#,
                "invalid_schema",
            ),
            (
                r#"{"summary":1,"problem_type":"p","complexity":2,"language":"zh"}"#,
                "invalid_json",
            ),
        ];
        for (answer, reason) in cases {
            let err = check(answer, &allowed()).expect_err(answer);
            assert_eq!(err.reason(), reason, "{answer}");
        }
    }

    #[test]
    fn long_fields_are_cut_on_char_boundaries() {
        let answer = format!(
            r#"{{"summary":"{}","problem_type":"p","complexity":1,"language":"zh-CN"}}"#,
            "退".repeat(500)
        );
        let checked = check(&answer, &allowed()).expect("valid");
        assert_eq!(checked.summary.chars().count(), MAX_SUMMARY_CHARS);
        assert_eq!(checked.language, "zh-cn");
    }
}
