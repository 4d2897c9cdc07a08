//! Scores a ticket's tone from the word lists in [`crate::lexicon`].
//!
//! Matching. Text is cut into clauses at punctuation, so a negation never reaches into the next clause, and
//! each clause into `switchboard_text::tokens`. A negator flips the next sentiment word (and cancels the
//! next anger or urgency word) within [`WINDOW`] tokens; an intensifier multiplies the next one by
//! [`BOOST`] within the same window. Chinese tokens that jieba glued to a negator or intensifier (不满意,
//! 很满意) are looked up without it. English anger and urgency words are matched on tokens; Chinese ones
//! as substrings, longest first, because jieba may split a phrase (忍无可忍) or merge a word with its
//! neighbour (太差了); a Chinese negator or intensifier right before the match counts as above.
//!
//! Formulas, each a saturating curve so a few clear words reach a decisive value and more add little:
//! - sentiment = tanh((valence − anger mass) / 2), where valence sums +1 per positive and −1 per negative
//!   word after negation and intensifiers: one plain word gives ±0.46, two ±0.76;
//! - anger = 1 − exp(−0.8 · a), a = anger mass + 0.35 · exclamation marks (at most 3) + 0.4 · ALL-CAPS
//!   words of 4 or more letters (at most 3) + 0.25 · negative mass: one anger word alone gives 0.55, with
//!   an exclamation mark 0.66, two anger words 0.80;
//! - urgency = 1 − exp(−0.9 · urgency mass): one urgency word gives 0.59, two 0.83.
//!
//! Masses are counts of matched words, each weighted 1, or [`BOOST`] when intensified.

use std::sync::LazyLock;

use regex::Regex;
use switchboard_text::{is_han, tokens};

use crate::lexicon::{
    ANGER, INTENSIFIER_PREFIXES, INTENSIFIERS, NEGATIVE, NEGATORS, NEUTRAL, POSITIVE, URGENCY,
};

/// How many tokens a negator or intensifier reaches: "not happy", "not very happy", "don't feel happy".
/// Any further and "can't log in and it is terrible" would read as praise.
const WINDOW: usize = 2;
const BOOST: f32 = 1.5;

const ANGER_RATE: f32 = 0.8;
const URGENCY_RATE: f32 = 0.9;
const EXCLAMATION_WEIGHT: f32 = 0.35;
const CAPS_WEIGHT: f32 = 0.4;
const NEGATIVE_WEIGHT: f32 = 0.25;
/// Beyond this, more exclamation marks or shouted words are the same outburst.
const MAX_EMPHASIS: u8 = 3;
/// Shorter all-caps words are mostly acronyms (APP, VPN, USD).
const MIN_CAPS_LETTERS: usize = 4;

/// Where a negation stops.
const CLAUSE_BREAKS: &[char] = &[
    ',', '，', '、', '.', '。', '!', '！', '?', '？', ';', '；', ':', '：', '\n',
];

/// Intake's masking placeholders (`<PHONE_1>`) are all caps but nobody shouted them.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    // A fixed literal the tests exercise: it compiles.
    Regex::new(r"<[A-Z]+(?:_[A-Z]+)*_\d+>").expect("placeholder pattern is valid")
});

/// The tone of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// −1 (very negative) to 1 (very positive).
    pub sentiment: f32,
    /// 0 to 1.
    pub anger: f32,
    /// 0 to 1.
    pub urgency: f32,
}

/// The tone of `text`, by the rules and formulas in this module's documentation.
pub fn score(text: &str) -> Signals {
    let mut tally = Tally::default();
    for clause in text.split(CLAUSE_BREAKS) {
        tally.walk(&tokens(clause));
    }
    let calm: String = NEUTRAL
        .iter()
        .fold(text.to_owned(), |t, n| t.replace(n, " "));
    tally.anger += han_mass(&calm, ANGER);
    tally.urgency += han_mass(text, URGENCY);

    let a = tally.anger
        + EXCLAMATION_WEIGHT * f32::from(exclamations(text))
        + CAPS_WEIGHT * f32::from(shouted_words(text))
        + NEGATIVE_WEIGHT * tally.negative;
    Signals {
        sentiment: ((tally.valence - tally.anger) / 2.0).tanh(),
        anger: 1.0 - (-ANGER_RATE * a).exp(),
        urgency: 1.0 - (-URGENCY_RATE * tally.urgency).exp(),
    }
}

#[derive(Debug, Default)]
struct Tally {
    valence: f32,
    /// The magnitude of the negative part of `valence`.
    negative: f32,
    anger: f32,
    urgency: f32,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Positive,
    Negative,
    Anger,
    Urgency,
}

impl Tally {
    /// One clause, token by token.
    fn walk(&mut self, tokens: &[String]) {
        let (mut negated_for, mut boosted_for): (usize, usize) = (0, 0);
        for token in tokens {
            if NEGATORS.contains(&token.as_str()) {
                negated_for = WINDOW;
                continue;
            }
            if INTENSIFIERS.contains(&token.as_str()) {
                boosted_for = WINDOW;
                continue;
            }
            let Some(word) = Word::read(token) else {
                negated_for = negated_for.saturating_sub(1);
                boosted_for = boosted_for.saturating_sub(1);
                continue;
            };
            let negated = (negated_for > 0) != word.negated;
            let weight = if boosted_for > 0 || word.boosted {
                BOOST
            } else {
                1.0
            };
            match (word.kind, negated) {
                (Kind::Positive, false) | (Kind::Negative, true) => self.valence += weight,
                (Kind::Positive, true) | (Kind::Negative, false) => {
                    self.valence -= weight;
                    self.negative += weight;
                }
                (Kind::Anger, false) => self.anger += weight,
                (Kind::Urgency, false) => self.urgency += weight,
                (Kind::Anger | Kind::Urgency, true) => {}
            }
            (negated_for, boosted_for) = (0, 0);
        }
    }
}

/// A lexicon word as found in a token, with the negator or intensifier jieba may have glued to it.
struct Word {
    kind: Kind,
    negated: bool,
    boosted: bool,
}

impl Word {
    fn read(token: &str) -> Option<Self> {
        if let Some(kind) = kind_of(token) {
            return Some(Self {
                kind,
                negated: false,
                boosted: false,
            });
        }
        if !token.chars().all(is_han) {
            return None;
        }
        // At most two glued prefixes: 很不满意 is 很 + 不 + 满意.
        let (mut rest, mut negated, mut boosted) = (token, false, false);
        for _ in 0..2 {
            if let Some(r) = strip_any(rest, INTENSIFIER_PREFIXES.iter().copied()) {
                (rest, boosted) = (r, true);
            } else if let Some(r) = strip_any(rest, chinese_negators()) {
                (rest, negated) = (r, !negated);
            } else {
                return None;
            }
            if let Some(kind) = kind_of(rest) {
                return Some(Self {
                    kind,
                    negated,
                    boosted,
                });
            }
        }
        None
    }
}

/// The sentiment lists hold both languages; of the anger and urgency lists only the ASCII entries are read
/// here, the Chinese ones by [`han_mass`].
fn kind_of(token: &str) -> Option<Kind> {
    if POSITIVE.contains(&token) {
        Some(Kind::Positive)
    } else if NEGATIVE.contains(&token) {
        Some(Kind::Negative)
    } else if token.is_ascii() && ANGER.contains(&token) {
        Some(Kind::Anger)
    } else if token.is_ascii() && URGENCY.contains(&token) {
        Some(Kind::Urgency)
    } else {
        None
    }
}

/// `s` without a leading prefix from `prefixes`, unless nothing would be left.
fn strip_any(s: &str, mut prefixes: impl Iterator<Item = &'static str>) -> Option<&str> {
    prefixes.find_map(|p| s.strip_prefix(p).filter(|rest| !rest.is_empty()))
}

fn chinese_negators() -> impl Iterator<Item = &'static str> {
    NEGATORS.iter().copied().filter(|n| !n.is_ascii())
}

/// The mass of the Chinese entries of `lexicon` in `text`, longest entry first, each occurrence blanked once
/// counted so 紧急 is not counted again as 急.
fn han_mass(text: &str, lexicon: &[&str]) -> f32 {
    let mut entries: Vec<&str> = lexicon.iter().copied().filter(|e| !e.is_ascii()).collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.chars().count()));
    let mut text = text.to_owned();
    let mut mass = 0.0;
    for entry in entries {
        while let Some(at) = text.find(entry) {
            let before = &text[..at];
            let (before, boosted) = match INTENSIFIER_PREFIXES
                .iter()
                .find_map(|p| before.strip_suffix(*p))
            {
                Some(rest) => (rest, true),
                None => (before, false),
            };
            if !chinese_negators().any(|n| before.ends_with(n)) {
                mass += if boosted { BOOST } else { 1.0 };
            }
            text.replace_range(at..at + entry.len(), " ");
        }
    }
    mass
}

fn exclamations(text: &str) -> u8 {
    let n = text.chars().filter(|c| matches!(c, '!' | '！')).count();
    u8::try_from(n).unwrap_or(u8::MAX).min(MAX_EMPHASIS)
}

fn shouted_words(text: &str) -> u8 {
    let text = PLACEHOLDER.replace_all(text, " ");
    let n = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= MIN_CAPS_LETTERS && w.bytes().all(|b| b.is_ascii_uppercase()))
        .count();
    u8::try_from(n).unwrap_or(u8::MAX).min(MAX_EMPHASIS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_flips_sentiment() {
        assert!(score("I am happy with the support").sentiment > 0.3);
        assert!(score("I am not happy with the support").sentiment < -0.3);
        assert!(score("我对处理结果很满意").sentiment > 0.3);
        assert!(score("我对处理结果不满意").sentiment < -0.3);
        assert!(score("我对处理结果很不满意").sentiment < score("我对处理结果不满意").sentiment);
    }

    #[test]
    fn negation_stays_within_its_window_and_clause() {
        // "terrible" is beyond the reach of "can't"; "good" is in the clause after "not".
        assert!(score("I can't log in and the app is terrible").sentiment < 0.0);
        assert!(score("It does not load. Good support though").sentiment > 0.0);
    }

    #[test]
    fn intensifiers_strengthen() {
        assert!(score("very disappointed").sentiment < score("disappointed").sentiment);
        assert!(score("我非常生气").anger > score("我生气").anger);
    }

    #[test]
    fn anger_from_words_exclamations_and_caps() {
        assert!(score("这服务太差了，垃圾！").anger >= 0.6);
        assert!(score("This is a scam!").anger >= 0.6);
        let shouted = score("WHERE IS MY MONEY");
        assert!(shouted.anger > score("where is my money").anger);
        assert!(
            score("Call <PHONE_1> or <EMAIL_1> about the APP")
                .anger
                .abs()
                < f32::EPSILON
        );
    }

    #[test]
    fn negated_or_neutral_anger_words_do_not_count() {
        assert!(score("我没生气，只是问问").anger < 0.3);
        assert!(score("It is not a scam, just a question").anger < 0.3);
        assert!(score("小区的垃圾桶满了，垃圾分类点没人管").anger < 0.3);
    }

    #[test]
    fn urgency_words_count_once_and_negation_cancels_them() {
        let one = score("这个问题很紧急").urgency;
        assert!(one >= 0.5);
        assert!(one < 0.8, "紧急 must not count again as 急: {one}");
        assert!(score("不急，有空再处理").urgency < f32::EPSILON);
        assert!(score("Please help immediately, it's an emergency").urgency > 0.8);
        assert!(score("Not urgent, whenever you can").urgency < f32::EPSILON);
    }

    #[test]
    fn plain_text_is_neutral() {
        assert_eq!(score("请问营业时间是几点"), Signals::default());
        assert_eq!(score(""), Signals::default());
    }
}
