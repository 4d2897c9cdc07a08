//! Rules the history suggests: a keyword whose past tickets nearly all went to one department, in
//! enough of them to trust it ("验证码 → 统一认证平台: 96% of 240 tickets"), and that no rule covers yet.
//! An admin accepts one through the API, which makes it an ordinary rule written by the
//! [`crate::editor::RuleEditor`] like any other.

use serde::Serialize;
use switchboard_knowledge::{HistoryTicket, Keyword, KeywordTable};
use switchboard_proto::Rule;

use crate::config::SuggestionConfig;
use crate::error::RouterError;
use crate::preview::excerpt;

/// The normal quantile of the two-sided 95% interval the ranking takes its lower bound from.
const Z: f64 = 1.96;
/// Example tickets shown of each kind: that went to the department, and that went elsewhere.
const EXAMPLES: usize = 3;
/// The prefix of an accepted suggestion's rule id, so that mined rules are told apart at a glance.
const RULE_ID_PREFIX: &str = "mined-";

/// A keyword → department rule the history suggests, with what it would have done on past tickets.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// Lower-cased, as the rule compares it with the ticket's text.
    pub keyword: String,
    pub department: String,
    /// Of the past tickets containing the keyword, the share that went to `department`.
    pub precision: f64,
    /// Past tickets containing the keyword.
    pub support: u32,
    /// Of those, how many went to `department`.
    pub tickets: u32,
    /// The lower bound of the 95% (Wilson) interval around `precision`: what suggestions are ranked by.
    pub precision_low: f64,
    /// Where the other tickets containing it went, the most first.
    pub elsewhere: Vec<Elsewhere>,
    /// A few tickets that went to `department`, then a few that went elsewhere.
    pub examples: Vec<SuggestionExample>,
    /// The suggestion in one line, as the accepted rule's description keeps it.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Elsewhere {
    pub department: String,
    pub tickets: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SuggestionExample {
    pub ticket_id: String,
    pub department: String,
    /// The beginning of the ticket's text.
    pub text: String,
}

/// Every keyword of `table` that passes, ranked by `precision_low`, then by support. The lower bound
/// rather than precision times support: an accepted rule outweighs the evidence, so what matters is
/// how sure the history makes it that the rule is right. 96% of 240 (bound 0.93) then ranks above
/// 100% of 12 (0.76), where the raw precision would rank them the other way round, and 70% of 1,000
/// (0.67) below both, where support times precision would put it first.
pub fn suggestions(
    table: &KeywordTable,
    rules: &[Rule],
    config: &SuggestionConfig,
) -> Vec<Suggestion> {
    let mut found: Vec<Suggestion> = table
        .keywords()
        .iter()
        .filter_map(|k| judge(k, rules, config).ok())
        .collect();
    found.sort_by(|a, b| {
        b.precision_low
            .total_cmp(&a.precision_low)
            .then_with(|| b.support.cmp(&a.support))
            .then_with(|| a.keyword.cmp(&b.keyword))
    });
    found
}

/// The suggestion for `keyword`, or why there is none.
pub fn suggestion(
    table: &KeywordTable,
    rules: &[Rule],
    config: &SuggestionConfig,
    keyword: &str,
) -> Result<Suggestion, RouterError> {
    let keyword = keyword.trim().to_lowercase();
    let mined = table
        .keyword(&keyword)
        .ok_or_else(|| RouterError::NoSuggestion {
            keyword: keyword.clone(),
            reason: "it is not a recurring word of the history's tickets".into(),
        })?;
    judge(mined, rules, config).map_err(|reason| RouterError::NoSuggestion { keyword, reason })
}

/// The rule an accepted suggestion becomes.
pub fn rule(suggestion: &Suggestion, config: &SuggestionConfig) -> Rule {
    Rule {
        id: rule_id(&suggestion.keyword),
        keywords: vec![suggestion.keyword.clone()],
        department: suggestion.department.clone(),
        weight: config.rule_weight,
        enabled: true,
        description: format!("mined from the history: {}", suggestion.summary),
    }
}

/// `mined-` and the keyword's UTF-8 in hex: rule ids allow only ASCII letters, digits and `-_=./`,
/// and a keyword is mostly Chinese or has spaces. One id per keyword, so accepting the same
/// suggestion twice meets the first rule instead of making a second.
fn rule_id(keyword: &str) -> String {
    let hex: String = keyword.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{RULE_ID_PREFIX}{hex}")
}

/// The suggestion `keyword` makes under `config`, or why it makes none.
fn judge(
    keyword: &Keyword,
    rules: &[Rule],
    config: &SuggestionConfig,
) -> Result<Suggestion, String> {
    let top = keyword.top();
    let precision = f64::from(top.tickets) / f64::from(keyword.support);
    if keyword.support < config.min_support {
        return Err(format!(
            "it is in {} past tickets, fewer than router.suggestions.min_support ({})",
            keyword.support, config.min_support
        ));
    }
    if precision < f64::from(config.min_precision) {
        return Err(format!(
            "{:.0}% of its {} tickets went to {}, under router.suggestions.min_precision ({:.0}%)",
            precision * 100.0,
            keyword.support,
            top.department,
            f64::from(config.min_precision) * 100.0
        ));
    }
    if let Some(rule) = covering(rules, &keyword.keyword) {
        return Err(format!(
            "rule {:?} already fires on every ticket containing it",
            rule.id
        ));
    }
    let others = &keyword.departments[1..];
    let examples = top
        .samples
        .iter()
        .take(EXAMPLES)
        .chain(others.iter().flat_map(|d| &d.samples).take(EXAMPLES))
        .map(example)
        .collect();
    Ok(Suggestion {
        keyword: keyword.keyword.clone(),
        department: top.department.to_string(),
        precision,
        support: keyword.support,
        tickets: top.tickets,
        precision_low: wilson_low(top.tickets, keyword.support),
        elsewhere: others
            .iter()
            .map(|d| Elsewhere {
                department: d.department.to_string(),
                tickets: d.tickets,
            })
            .collect(),
        examples,
        summary: format!(
            "{} → {}: {:.0}% of {} tickets",
            keyword.keyword,
            top.department,
            precision * 100.0,
            keyword.support
        ),
    })
}

/// A rule, enabled or not, one of whose keywords is within `keyword`: it fires on every ticket a rule
/// on `keyword` would. A disabled one counts too: an admin who turned it off has decided about it.
fn covering<'r>(rules: &'r [Rule], keyword: &str) -> Option<&'r Rule> {
    rules.iter().find(|r| {
        r.keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .any(|k| !k.is_empty() && keyword.contains(&k))
    })
}

fn example(ticket: &HistoryTicket) -> SuggestionExample {
    SuggestionExample {
        ticket_id: ticket.id.to_string(),
        department: ticket.department.to_string(),
        text: excerpt(&ticket.text),
    }
}

/// The Wilson score interval's lower bound for `hits` of `n`.
fn wilson_low(hits: u32, n: u32) -> f64 {
    let (hits, n) = (f64::from(hits), f64::from(n));
    let p = hits / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - spread) / (1.0 + z2 / n)
}

#[cfg(test)]
mod tests {
    use switchboard_proto::KnowledgeRecord;

    use super::*;

    /// 24 tickets with 验证码: 23 to auth, 1 to billing; 12 with "refund", all billing; 10 with
    /// "password", 7 auth and 3 support.
    fn table() -> KeywordTable {
        let mut records = Vec::new();
        let mut add = |n: usize, text: &str, department: &str| {
            for _ in 0..n {
                records.push(KnowledgeRecord {
                    id: format!("{department}-{}", records.len()),
                    text: text.into(),
                    department: department.into(),
                    ..KnowledgeRecord::default()
                });
            }
        };
        add(23, "收不到验证码", "auth");
        add(1, "付款验证码", "billing");
        add(12, "refund please", "billing");
        add(7, "password reset", "auth");
        add(3, "password policy", "support");
        KeywordTable::mine(records).expect("mined")
    }

    fn config() -> SuggestionConfig {
        SuggestionConfig {
            min_support: 10,
            min_precision: 0.9,
            rule_weight: 1.0,
        }
    }

    #[test]
    fn suggests_precise_keywords_with_enough_tickets_ranked_by_the_lower_bound() {
        let found = suggestions(&table(), &[], &config());
        let keywords: Vec<&str> = found.iter().map(|s| s.keyword.as_str()).collect();
        // 23 of 23 (bound 0.857), the word and the pair of words; 23 of 24 (0.798); 12 of 12
        // (0.757). "password" is 7 of 10 and "password reset" in 7 tickets only: neither passes.
        assert_eq!(keywords, ["收不到", "收不到验证码", "验证码", "refund"]);
        let code = &found[2];
        assert_eq!(
            (code.department.as_str(), code.support, code.tickets),
            ("auth", 24, 23)
        );
        assert_eq!(code.precision, 23.0 / 24.0);
        assert!(
            (code.precision_low - 0.798).abs() < 1e-3,
            "{}",
            code.precision_low
        );
        assert_eq!(code.summary, "验证码 → auth: 96% of 24 tickets");
        assert_eq!(
            code.elsewhere,
            [Elsewhere {
                department: "billing".into(),
                tickets: 1
            }]
        );
        // Three that went to auth, then the one that went elsewhere.
        let departments: Vec<&str> = code
            .examples
            .iter()
            .map(|e| e.department.as_str())
            .collect();
        assert_eq!(departments, ["auth", "auth", "auth", "billing"]);
        assert_eq!(code.examples[3].text, "付款验证码");
    }

    #[test]
    fn a_keyword_a_rule_covers_is_not_suggested() {
        let covering = Rule {
            id: "codes".into(),
            keywords: vec!["验证".into()],
            department: "auth".into(),
            weight: 3.0,
            enabled: false,
            ..Rule::default()
        };
        let found = suggestions(&table(), std::slice::from_ref(&covering), &config());
        assert!(found.iter().all(|s| s.keyword != "验证码"));
        let err = suggestion(&table(), &[covering], &config(), "验证码").expect_err("covered");
        assert!(err.to_string().contains("rule \"codes\""), "{err}");
    }

    #[test]
    fn says_why_a_keyword_is_not_suggested() {
        let why = |keyword: &str| {
            suggestion(&table(), &[], &config(), keyword)
                .expect_err("not suggested")
                .to_string()
        };
        assert!(
            why("PASSWORD").contains("70% of its 10 tickets went to auth"),
            "{}",
            why("password")
        );
        assert!(
            why("nothing").contains("not a recurring word"),
            "{}",
            why("nothing")
        );
        let few = SuggestionConfig {
            min_support: 30,
            ..config()
        };
        let err = suggestion(&table(), &[], &few, "验证码").expect_err("too few");
        assert!(
            err.to_string().contains("24 past tickets, fewer than"),
            "{err}"
        );
    }

    #[test]
    fn an_accepted_suggestion_is_an_ordinary_rule_with_a_valid_id() {
        let s = suggestion(&table(), &[], &config(), " 验证码 ").expect("suggested");
        let rule = rule(&s, &config());
        assert_eq!(rule.id, "mined-e9aa8ce8af81e7a081");
        assert_eq!(
            (
                rule.keywords,
                rule.department.as_str(),
                rule.weight,
                rule.enabled
            ),
            (vec!["验证码".to_owned()], "auth", 1.0, true)
        );
        crate::rules::validate(&Rule {
            id: rule_id("card declined"),
            ..Rule::default()
        })
        .map(|_| ())
        .or_else(|e| match e {
            RouterError::InvalidRule { field, .. } if field != "id" => Ok(()),
            other => Err(other),
        })
        .expect("the id is a valid key");
    }

    #[test]
    fn the_lower_bound_grows_with_support() {
        assert!(wilson_low(230, 240) > wilson_low(12, 12));
        assert!(wilson_low(12, 12) > wilson_low(700, 1000));
        assert!(wilson_low(0, 5).abs() < 1e-12);
    }
}
