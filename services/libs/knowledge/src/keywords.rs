//! Keywords mined from the history: every word the pipeline's tokenizer finds in the tickets (Chinese
//! segmented into words by jieba), and every pair of adjacent words, with how many tickets of each
//! department contain it. The router turns the table into keyword → department rule suggestions and
//! into each department's hot keywords.
//!
//! The tokens only propose the candidates. Whether a ticket contains a keyword is then counted the way
//! a rule fires (its lower-cased text contains the keyword), so the precision a suggested rule is shown
//! with is the precision it would have had on those tickets: "pin" also fires on "spinning", and a pair
//! of words split by punctuation in one ticket does not fire there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use switchboard_proto::KnowledgeRecord;
use switchboard_text::{is_han, is_stopword, tokens};

use crate::error::KnowledgeError;

/// A candidate must be among the words of at least this many tickets: one ticket says nothing about a
/// department, and the floor keeps the matcher to the words that recur.
const MIN_TICKETS: u32 = 2;
/// Shorter keywords fire inside too many unrelated words ("卡" in both "银行卡" and "卡顿").
const MIN_CHARS: usize = 2;
/// Tickets kept per keyword and department, for a person to check what a keyword matches.
const SAMPLES: usize = 3;

/// One ticket of the history, as a sample shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTicket {
    pub id: Arc<str>,
    pub text: Arc<str>,
    pub department: Arc<str>,
}

/// How many tickets of one department contain a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentCount {
    pub department: Arc<str>,
    pub tickets: u32,
    /// The first few of those tickets, in the history's order.
    pub samples: Vec<HistoryTicket>,
}

/// A keyword and the tickets a rule on it would fire on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    /// Lower-cased, as rules compare.
    pub keyword: String,
    /// Tickets whose text contains it.
    pub support: u32,
    /// Those tickets by department, the most first (ties by name).
    pub departments: Vec<DepartmentCount>,
}

impl Keyword {
    /// The department most of its tickets went to; every counted keyword has one.
    pub fn top(&self) -> &DepartmentCount {
        &self.departments[0]
    }

    /// The share of its tickets that went to `department`.
    pub fn share(&self, department: &str) -> f64 {
        self.departments
            .iter()
            .find(|d| &*d.department == department)
            .map_or(0.0, |d| f64::from(d.tickets) / f64::from(self.support))
    }
}

/// A department's keyword, ranked for the cockpit.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKeyword {
    pub keyword: String,
    /// The department's tickets containing it.
    pub tickets: u32,
    /// Of all tickets containing it, the share that went to the department.
    pub share: f64,
}

/// Every recurring keyword of a history, by keyword.
#[derive(Debug, Clone, Default)]
pub struct KeywordTable {
    keywords: Vec<Keyword>,
    departments: Vec<Arc<str>>,
    tickets: usize,
}

impl KeywordTable {
    /// Counts the keywords of `records`. CPU-bound (a pass of the tokenizer and one of the matcher over
    /// every text): call it from a blocking task.
    pub fn mine(
        records: impl IntoIterator<Item = KnowledgeRecord>,
    ) -> Result<Self, KnowledgeError> {
        let mut departments: Vec<Arc<str>> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let history: Vec<(HistoryTicket, u32)> = records
            .into_iter()
            .map(|r| {
                let dept = *index.entry(r.department.clone()).or_insert_with(|| {
                    departments.push(r.department.as_str().into());
                    (departments.len() - 1) as u32
                });
                let ticket = HistoryTicket {
                    id: r.id.into(),
                    text: r.text.into(),
                    department: departments[dept as usize].clone(),
                };
                (ticket, dept)
            })
            .collect();

        let candidates = recurring(history.iter().map(|(t, _)| &*t.text));
        let matcher = AhoCorasick::new(&candidates).map_err(KnowledgeError::Keywords)?;
        // (candidate, department) → tickets and the first samples.
        let mut counts: HashMap<(u32, u32), (u32, Vec<u32>)> = HashMap::new();
        let mut found: Vec<u32> = Vec::new();
        for (n, (ticket, dept)) in history.iter().enumerate() {
            found.clear();
            found.extend(
                matcher
                    .find_overlapping_iter(&ticket.text.to_lowercase())
                    .map(|m| m.pattern().as_u32()),
            );
            found.sort_unstable();
            found.dedup();
            for &keyword in &found {
                let (tickets, samples) = counts.entry((keyword, *dept)).or_default();
                *tickets += 1;
                if samples.len() < SAMPLES {
                    samples.push(n as u32);
                }
            }
        }

        let mut by_keyword: Vec<Vec<DepartmentCount>> = vec![Vec::new(); candidates.len()];
        for ((keyword, dept), (tickets, samples)) in counts {
            by_keyword[keyword as usize].push(DepartmentCount {
                department: departments[dept as usize].clone(),
                tickets,
                samples: samples
                    .into_iter()
                    .map(|n| history[n as usize].0.clone())
                    .collect(),
            });
        }
        let keywords = candidates
            .into_iter()
            .zip(by_keyword)
            .filter_map(|(keyword, mut departments)| {
                departments.sort_by(|a, b| {
                    b.tickets
                        .cmp(&a.tickets)
                        .then_with(|| a.department.cmp(&b.department))
                });
                let support = departments.iter().map(|d| d.tickets).sum();
                // A pair of words that recur only apart (around punctuation) fires too rarely.
                (support >= MIN_TICKETS).then_some(Keyword {
                    keyword,
                    support,
                    departments,
                })
            })
            .collect();
        departments.sort();
        Ok(Self {
            keywords,
            departments,
            tickets: history.len(),
        })
    }

    /// Every keyword in at least two tickets, by keyword.
    pub fn keywords(&self) -> &[Keyword] {
        &self.keywords
    }

    pub fn keyword(&self, keyword: &str) -> Option<&Keyword> {
        self.keywords
            .binary_search_by(|k| k.keyword.as_str().cmp(keyword))
            .ok()
            .map(|i| &self.keywords[i])
    }

    /// The departments of the history, sorted.
    pub fn departments(&self) -> &[Arc<str>] {
        &self.departments
    }

    /// How many tickets were mined.
    pub fn tickets(&self) -> usize {
        self.tickets
    }

    /// The keywords that most mark `department`'s tickets, at most `limit`. Ranked by its tickets
    /// containing the keyword times the share of all tickets containing it that went there: the
    /// count alone would put first the words every department's tickets use ("account", "问题"), the
    /// share alone words seen twice.
    pub fn hot(&self, department: &str, limit: usize) -> Vec<HotKeyword> {
        let mut hot: Vec<HotKeyword> = self
            .keywords
            .iter()
            .filter_map(|k| {
                let count = k
                    .departments
                    .iter()
                    .find(|d| &*d.department == department)?;
                Some(HotKeyword {
                    keyword: k.keyword.clone(),
                    tickets: count.tickets,
                    share: k.share(department),
                })
            })
            .filter(|h| h.tickets >= MIN_TICKETS)
            .collect();
        let score = |h: &HotKeyword| f64::from(h.tickets) * h.share;
        hot.sort_by(|a, b| {
            score(b)
                .total_cmp(&score(a))
                .then_with(|| a.keyword.cmp(&b.keyword))
        });
        hot.truncate(limit);
        hot
    }
}

/// The candidates among the tickets' words, sorted: each word but stop words and each pair of adjacent
/// such words, in at least [`MIN_TICKETS`] tickets. Pairs, because single words are often too broad to
/// name a department ("card" against "card declined"); pairs of Chinese words are joined without a
/// space, as the text writes them.
fn recurring<'t>(texts: impl Iterator<Item = &'t str>) -> Vec<String> {
    let mut tickets: HashMap<String, u32> = HashMap::new();
    for text in texts {
        let words = tokens(text);
        let mut seen: HashSet<String> = HashSet::new();
        for (i, word) in words.iter().enumerate() {
            if is_stopword(word) {
                continue;
            }
            seen.insert(word.clone());
            if let Some(next) = words.get(i + 1).filter(|w| !is_stopword(w)) {
                seen.insert(pair(word, next));
            }
        }
        for word in seen {
            *tickets.entry(word).or_default() += 1;
        }
    }
    let mut recurring: Vec<String> = tickets
        .into_iter()
        .filter(|(word, n)| *n >= MIN_TICKETS && word.chars().count() >= MIN_CHARS)
        .map(|(word, _)| word)
        .collect();
    recurring.sort();
    recurring
}

fn pair(first: &str, second: &str) -> String {
    let han = |c: Option<char>| c.is_some_and(is_han);
    if han(first.chars().last()) && han(second.chars().next()) {
        format!("{first}{second}")
    } else {
        format!("{first} {second}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, text: &str, department: &str) -> KnowledgeRecord {
        KnowledgeRecord {
            id: id.into(),
            text: text.into(),
            department: department.into(),
            ..KnowledgeRecord::default()
        }
    }

    fn history() -> Vec<KnowledgeRecord> {
        vec![
            record("a1", "验证码收不到", "auth"),
            record("a2", "收不到验证码了", "auth"),
            record("a3", "短信验证码错误", "auth"),
            record("a4", "验证码一直提示过期", "auth"),
            record("b1", "退款什么时候到账 验证码", "billing"),
            record("b2", "Refund not received", "billing"),
            record("b3", "refund delayed, card declined", "billing"),
            record("c1", "my card declined at the shop", "cards"),
            record("c2", "Card declined again", "cards"),
            // "pin" is a word of two tickets; a rule on it fires on "spinning" too.
            record("c3", "forgot my PIN", "cards"),
            record("c4", "new pin please", "cards"),
            record("s1", "the page keeps spinning", "support"),
        ]
    }

    #[test]
    fn counts_tickets_per_department_as_a_rule_fires() {
        let table = KeywordTable::mine(history()).expect("mined");
        assert_eq!(table.tickets(), 12);
        assert_eq!(table.departments().len(), 4);

        let code = table
            .keyword("验证码")
            .expect("验证码 is a word of five tickets");
        assert_eq!(code.support, 5);
        assert_eq!(&*code.top().department, "auth");
        assert_eq!(code.top().tickets, 4);
        assert_eq!(code.share("auth"), 0.8);
        assert_eq!(code.share("billing"), 0.2);
        let samples: Vec<&str> = code.top().samples.iter().map(|t| &*t.id).collect();
        assert_eq!(samples, ["a1", "a2", "a3"]);

        let pin = table.keyword("pin").expect("pin");
        assert_eq!(pin.support, 3, "forgot my PIN, new pin, spinning");
        assert_eq!((pin.top().tickets, pin.share("support")), (2, 1.0 / 3.0));

        let declined = table.keyword("card declined").expect("a pair of words");
        assert_eq!(declined.support, 3);
        assert_eq!(
            (&*declined.top().department, declined.top().tickets),
            ("cards", 2)
        );
        assert_eq!(table.keyword("refund").map(|k| k.support), Some(2));

        // Seen once, a single character, or a stop word: no keyword.
        assert!(table.keyword("shop").is_none());
        assert!(table.keyword("the").is_none());
        assert!(
            table
                .keywords()
                .iter()
                .all(|k| k.keyword.chars().count() >= 2)
        );
    }

    #[test]
    fn hot_keywords_weigh_count_by_share() {
        let table = KeywordTable::mine(history()).expect("mined");
        let hot = table.hot("auth", 3);
        assert_eq!(hot[0].keyword, "验证码");
        assert_eq!((hot[0].tickets, hot[0].share), (4, 0.8));
        let cards: Vec<String> = table
            .hot("cards", 10)
            .into_iter()
            .map(|h| h.keyword)
            .collect();
        // card, card declined, declined and pin: each 2 of 3 tickets, so by keyword.
        assert_eq!(cards[0], "card");
        assert!(
            cards.iter().any(|k| k == "pin") && cards.iter().any(|k| k == "card declined"),
            "{cards:?}"
        );
        assert!(table.hot("nobody", 10).is_empty());
    }
}
