//! Entities found by pattern: order numbers, amounts, dates, and the placeholders intake left where it
//! masked personal data. Places need word boundaries and live in `places`.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use switchboard_proto::Entity;

/// The patterns are fixed literals that the tests compile, so this cannot fail at run time.
fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("entity patterns are valid")
}

/// `<PHONE_1>`, `<EMAIL_2>`, `<ID_CARD_1>`: the kind is the placeholder's name, so a kind intake adds later
/// comes through without a change here.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| compile(r"<([A-Z]+(?:_[A-Z]+)*)_\d+>"));

/// An identifier after a word that says it is one: `订单号 A2024031501`, `order #A12345`,
/// `ticket number: 88812345`. `(?-u:\b)` is an ASCII word boundary, so it also holds next to Chinese.
static ORDER_AFTER_CUE: LazyLock<Regex> = LazyLock::new(|| {
    compile(concat!(
        r"(?i)(?:(?:订单|工单|运单|快递单)(?:号码|编号|号)?|单号",
        r"|(?-u:\b)(?:order|ticket|case|invoice|tracking)s?(?-u:\b)(?:\s*(?:number|num|no|id)(?-u:\b)\.?)?)",
        r"\s*(?:is\s+|是|为)?[:：#]?\s*([A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])",
    ))
});

/// `#A12345` on its own.
static ORDER_HASH: LazyLock<Regex> = LazyLock::new(|| compile(r"#([A-Za-z0-9]{4,})(?-u:\b)"));

/// Identifiers shorter than this after a cue word are more likely a count or a year than an order.
const MIN_CUED_ID_CHARS: usize = 6;

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    compile(concat!(
        r"(?i)[¥￥$€£]\s?\d+(?:,\d{3})*(?:\.\d+)?",
        r"|(?-u:\b)\d+(?:,\d{3})*(?:\.\d+)?\s?(?:元|块钱|块|人民币|美元|欧元)",
        r"|(?-u:\b)\d+(?:,\d{3})*(?:\.\d+)?\s?(?:usd|rmb|cny|eur|gbp|hkd|dollars?|yuan|euros?)(?-u:\b)",
    ))
});

const MONTHS: &str = concat!(
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?",
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?",
);

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        concat!(
            r"(?i)(?-u:\b)\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}(?-u:\b)",
            r"|\d{{4}}年\d{{1,2}}月(?:\d{{1,2}}[日号])?",
            r"|\d{{1,2}}月\d{{1,2}}[日号]",
            r"|(?-u:\b)(?:{months})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?-u:\b)(?:,?\s+\d{{4}}(?-u:\b))?",
            r"|(?-u:\b)(?:yesterday|today|tomorrow|tonight|last\s+(?:night|week|month)|this\s+morning)(?-u:\b)",
            r"|昨天|今天|明天|前天|昨晚|今晚|今早|上周|本周|上个月",
        ),
        months = MONTHS,
    ))
});

/// An entity and where it sits in the text, so the keyword pass can leave it out.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) entity: Entity,
    pub(crate) span: Range<usize>,
}

/// The pattern entities of `text` in reading order. Where two overlap, the one that starts first, then the
/// longer, wins: each stretch of text is one entity, and `#A12345` after "order" is one order, not two.
pub(crate) fn find(text: &str) -> Vec<Found> {
    let mut all = Vec::new();
    for caps in PLACEHOLDER.captures_iter(text) {
        if let (Some(whole), Some(kind)) = (caps.get(0), caps.get(1)) {
            all.push(found(kind.as_str(), whole.as_str(), whole.range()));
        }
    }
    for caps in ORDER_AFTER_CUE
        .captures_iter(text)
        .chain(ORDER_HASH.captures_iter(text))
    {
        push_order(&caps, &mut all);
    }
    for m in AMOUNT.find_iter(text) {
        all.push(found("AMOUNT", m.as_str().trim(), m.range()));
    }
    for m in DATE.find_iter(text) {
        all.push(found("DATE", m.as_str(), m.range()));
    }
    all.sort_by_key(|f| (f.span.start, std::cmp::Reverse(f.span.end)));
    let mut kept: Vec<Found> = Vec::with_capacity(all.len());
    for f in all {
        if kept.last().is_none_or(|last| f.span.start >= last.span.end) {
            kept.push(f);
        }
    }
    kept
}

fn push_order(caps: &Captures<'_>, out: &mut Vec<Found>) {
    let Some(id) = caps.get(1) else { return };
    let value = id.as_str();
    let cued = !caps.get(0).is_some_and(|m| m.as_str().starts_with('#'));
    let long_enough =
        !cued || value.chars().filter(char::is_ascii_alphanumeric).count() >= MIN_CUED_ID_CHARS;
    // A date after "order" ("order 2026-03-01") is when it was placed, not which one it is.
    let is_date = DATE
        .find(value)
        .is_some_and(|m| m.range() == (0..value.len()));
    if long_enough && value.bytes().any(|b| b.is_ascii_digit()) && !is_date {
        out.push(found("ORDER", value, id.range()));
    }
}

fn found(kind: &str, value: &str, span: Range<usize>) -> Found {
    Found {
        entity: Entity {
            kind: kind.to_owned(),
            value: value.to_owned(),
        },
        span,
    }
}

/// `text` with every found entity blanked out, for the passes that look for topic words: an order number
/// or an amount is unique to one ticket and says nothing about what kind of problem it is.
pub(crate) fn mask(text: &str, found: &[Found]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.span.start]);
        out.push(' ');
        at = f.span.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_values(text: &str) -> Vec<(String, String)> {
        find(text)
            .into_iter()
            .map(|f| (f.entity.kind, f.entity.value))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn orders_after_cue_words_and_hashes() {
        assert_eq!(
            kinds_values("订单号 A2024031501 还没发货，工单号：20240315007"),
            pairs(&[("ORDER", "A2024031501"), ("ORDER", "20240315007")])
        );
        assert_eq!(
            kinds_values("Order #A12345 and order number: 77120033 both late; see #B9931"),
            pairs(&[
                ("ORDER", "A12345"),
                ("ORDER", "77120033"),
                ("ORDER", "B9931")
            ])
        );
        // Too short after a cue word, or no digits: a quantity or an ordinary word, not an id.
        assert!(kinds_values("order 12 boxes, ticket closed").is_empty());
    }

    #[test]
    fn amounts_in_both_languages() {
        assert_eq!(
            kinds_values("退款300元，另外扣了￥45.5；charged $12.50 and 12.5 USD"),
            pairs(&[
                ("AMOUNT", "300元"),
                ("AMOUNT", "￥45.5"),
                ("AMOUNT", "$12.50"),
                ("AMOUNT", "12.5 USD")
            ])
        );
    }

    #[test]
    fn dates_absolute_and_relative() {
        assert_eq!(
            kinds_values(
                "2026-03-01下单，3月5日还没到，昨天催过；since March 5, 2026 and yesterday"
            ),
            pairs(&[
                ("DATE", "2026-03-01"),
                ("DATE", "3月5日"),
                ("DATE", "昨天"),
                ("DATE", "March 5, 2026"),
                ("DATE", "yesterday"),
            ])
        );
    }

    #[test]
    fn placeholders_keep_their_kind() {
        assert_eq!(
            kinds_values("回电 <PHONE_1> 或发邮件 <EMAIL_1>，身份证 <ID_CARD_1>"),
            pairs(&[
                ("PHONE", "<PHONE_1>"),
                ("EMAIL", "<EMAIL_1>"),
                ("ID_CARD", "<ID_CARD_1>")
            ])
        );
    }

    #[test]
    fn an_order_number_is_not_also_an_amount_or_a_date() {
        assert_eq!(
            kinds_values("订单号A2024031501退款300元"),
            pairs(&[("ORDER", "A2024031501"), ("AMOUNT", "300元")])
        );
        assert_eq!(kinds_values("order #A12345"), pairs(&[("ORDER", "A12345")]));
        assert_eq!(
            kinds_values("order 2026-03-01"),
            pairs(&[("DATE", "2026-03-01")])
        );
    }

    #[test]
    fn mask_blanks_entities_only() {
        let text = "订单号 A2024031501 退款 300元";
        assert_eq!(mask(text, &find(text)), "订单号   退款  ");
    }
}
