//! Text analysis shared by the roles that read ticket text: language detection and tokenisation, with
//! Chinese segmented by jieba. One tokenizer for the whole pipeline, so the words the parser reports are the
//! words retrieval matches on. Also the masking of personal data ([`pii`]), which intake applies before
//! any text moves on, and the one reader of timestamps written as text ([`timestamp`]), which history
//! imports and connectors' attributes both carry.

pub mod pii;
pub mod timestamp;

use std::sync::LazyLock;

use jieba_rs::Jieba;

/// jieba's dictionary takes a moment to load: load it once, on first use.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Chinese characters (CJK unified ideographs and extension A, compatibility ideographs).
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// "zh" when Chinese characters make up at least a fifth of the letters, else "en"; "und" with no letters.
/// A fifth, not a half: Chinese tickets often quote English product names and error codes.
pub fn language(text: &str) -> &'static str {
    let (mut han, mut letters) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
            letters += 1;
        } else if c.is_alphabetic() {
            letters += 1;
        }
    }
    if letters == 0 {
        "und"
    } else if han * 5 >= letters {
        "zh"
    } else {
        "en"
    }
}

/// Lower-cased tokens: Chinese runs segmented into words, other scripts split on anything that is not a
/// letter or digit. Punctuation and whitespace are dropped; stop words are kept (use [`is_stopword`]).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut han_run = String::new();
    for c in text.chars() {
        if is_han(c) {
            flush_word(&mut word, &mut out);
            han_run.push(c);
        } else {
            flush_han(&mut han_run, &mut out);
            if c.is_alphanumeric() || c == '\'' {
                word.extend(c.to_lowercase());
            } else {
                flush_word(&mut word, &mut out);
            }
        }
    }
    flush_word(&mut word, &mut out);
    flush_han(&mut han_run, &mut out);
    out
}

fn flush_word(word: &mut String, out: &mut Vec<String>) {
    let w = word.trim_matches('\'');
    if !w.is_empty() {
        out.push(w.to_owned());
    }
    word.clear();
}

fn flush_han(run: &mut String, out: &mut Vec<String>) {
    if !run.is_empty() {
        out.extend(JIEBA.cut(run, false).into_iter().map(|t| t.word.to_owned()));
        run.clear();
    }
}

/// Words too common to say anything about a ticket's topic.
pub fn is_stopword(token: &str) -> bool {
    const EN: &[&str] = &[
        "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did",
        "do", "does", "for", "from", "had", "has", "have", "how", "i", "i'm", "if", "in", "is",
        "it", "it's", "me", "my", "of", "on", "or", "our", "please", "so", "that", "the", "their",
        "them", "then", "there", "this", "to", "was", "we", "were", "what", "when", "where",
        "which", "who", "why", "will", "with", "would", "you", "your", "am", "any", "get", "got",
        "just", "im", "there's",
    ];
    const ZH: &[&str] = &[
        "的",
        "了",
        "是",
        "我",
        "你",
        "他",
        "她",
        "它",
        "们",
        "在",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "着",
        "过",
        "把",
        "被",
        "这",
        "那",
        "个",
        "一",
        "不",
        "没",
        "请",
        "什么",
        "怎么",
        "为什么",
        "一下",
        "我们",
        "你们",
        "可以",
        "能",
        "会",
        "要",
        "想",
        "给",
        "让",
    ];
    EN.contains(&token) || ZH.contains(&token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_language() {
        assert_eq!(language("我的订单还没到"), "zh");
        assert_eq!(language("My parcel has not arrived"), "en");
        assert_eq!(language("APP 登录失败 error 403"), "zh");
        assert_eq!(language("12345 !!!"), "und");
    }

    #[test]
    fn segments_chinese_and_splits_english() {
        let t = tokens("密码正确但是无法登录 Login FAILED!");
        assert!(t.contains(&"密码".to_owned()), "{t:?}");
        assert!(t.contains(&"登录".to_owned()), "{t:?}");
        assert!(t.contains(&"login".to_owned()), "{t:?}");
        assert!(t.contains(&"failed".to_owned()), "{t:?}");
        assert!(!t.iter().any(|w| w.contains(' ') || w == "!"), "{t:?}");
    }

    #[test]
    fn stopwords() {
        assert!(is_stopword("the"));
        assert!(is_stopword("的"));
        assert!(!is_stopword("refund"));
    }
}
