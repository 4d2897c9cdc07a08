//! Keywords: the words that say what a ticket is about, ranked by a salience simple enough to explain on
//! the decision board.

use std::collections::HashMap;

use switchboard_text::is_stopword;

const MAX_KEYWORDS: usize = 8;

/// Up to [`MAX_KEYWORDS`] distinct tokens, most frequent first, ties broken by which came first: a ticket
/// names its problem early and repeats it. Stop words carry no topic, and neither do single characters:
/// lone Latin letters and digits, and the Chinese characters jieba leaves where it found no word (输, 对,
/// 了), which would otherwise top short tickets and become their problem type.
pub(crate) fn rank(tokens: &[String]) -> Vec<String> {
    // token -> (count, first position)
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    for (position, token) in tokens.iter().enumerate() {
        if is_stopword(token) || token.chars().nth(1).is_none() {
            continue;
        }
        seen.entry(token).or_insert((0, position)).0 += 1;
    }
    let mut ranked: Vec<(&str, (usize, usize))> = seen.into_iter().collect();
    ranked.sort_by_key(|&(_, (count, first))| (std::cmp::Reverse(count), first));
    ranked
        .into_iter()
        .take(MAX_KEYWORDS)
        .map(|(token, _)| token.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn frequency_then_first_position() {
        let ranked = rank(&tokens(&[
            "login", "the", "password", "x", "7", "输", "reset", "password", "login", "code",
        ]));
        assert_eq!(ranked, ["login", "password", "reset", "code"]);
    }

    #[test]
    fn at_most_eight() {
        let words: Vec<String> = (0..20).map(|i| format!("word{i}")).collect();
        assert_eq!(rank(&words).len(), MAX_KEYWORDS);
    }
}
