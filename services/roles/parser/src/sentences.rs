//! Sentence splitting, for the summary and for counting the problems a ticket reports.

/// Longest summary, in characters: one line on the decision board.
const SUMMARY_CHARS: usize = 80;

/// The sentences of `text`, trimmed, without their closing punctuation. A full stop ends a sentence only
/// when followed by whitespace or the end, so amounts (`12.50`), versions and domains stay whole.
pub(crate) fn split(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = match c {
            '。' | '！' | '？' | '!' | '?' | '；' | ';' | '…' | '\n' => true,
            '.' => chars.peek().is_none_or(|&(_, next)| next.is_whitespace()),
            _ => false,
        };
        if ends {
            push_trimmed(&text[start..i], &mut out);
            start = i + c.len_utf8();
        }
    }
    push_trimmed(&text[start..], &mut out);
    out
}

fn push_trimmed<'a>(sentence: &'a str, out: &mut Vec<&'a str>) {
    let sentence = sentence.trim();
    if !sentence.is_empty() {
        out.push(sentence);
    }
}

/// The first sentence, cut to [`SUMMARY_CHARS`] characters.
pub(crate) fn summary(sentences: &[&str]) -> String {
    let Some(first) = sentences.first() else {
        return String::new();
    };
    match first.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => first[..cut].to_owned(),
        None => (*first).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_chinese_and_english_punctuation() {
        let s = split("扣了两次钱。请尽快处理！\nI paid $12.50 twice. Why?");
        assert_eq!(
            s,
            ["扣了两次钱", "请尽快处理", "I paid $12.50 twice", "Why"]
        );
    }

    #[test]
    fn summary_is_the_first_sentence_cut_on_a_char_boundary() {
        let long = "退".repeat(100);
        let summary = summary(&split(&format!("{long}。第二句")));
        assert_eq!(summary.chars().count(), SUMMARY_CHARS);
        assert_eq!(super::summary(&split("  Short one. Another")), "Short one");
        assert_eq!(super::summary(&[]), "");
    }
}
