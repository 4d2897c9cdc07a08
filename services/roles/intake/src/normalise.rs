//! Whitespace normalisation of ticket text, so the same complaint typed with different spacing reads the
//! same to the parser, the retriever's tokenizer and the PII patterns.

/// Trims, drops control characters, and collapses each run of whitespace to one space, or to one newline
/// when the run held a line break: paragraph breaks in an e-mail are worth keeping for a human reader.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Whitespace seen since the last kept character: None, a space, or a line break.
    let mut pending: Option<char> = None;
    for c in text.chars() {
        if c.is_whitespace() {
            if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                pending = Some('\n');
            } else if pending.is_none() {
                pending = Some(' ');
            }
        } else if !c.is_control() {
            if let Some(ws) = pending.take()
                && !out.is_empty()
            {
                out.push(ws);
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_collapses() {
        assert_eq!(normalise("  hello \t  world  "), "hello world");
        assert_eq!(normalise("第一行\r\n\r\n  第二行"), "第一行\n第二行");
        assert_eq!(normalise("a \n b"), "a\nb");
        // U+3000, the ideographic space of Chinese input methods, is whitespace too.
        assert_eq!(normalise("你好\u{3000}\u{3000}世界"), "你好 世界");
    }

    #[test]
    fn drops_control_characters() {
        assert_eq!(normalise("a\u{0}b\u{7}c"), "abc");
        assert_eq!(normalise(" \u{0} \t"), "");
    }
}
