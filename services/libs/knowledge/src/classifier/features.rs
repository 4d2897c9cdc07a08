//! Hashed text features for the linear classifier, in the shape of scikit-learn's TF-IDF over character
//! n-grams (1 to 4, word-boundary aware like its `char_wb`) joined with word unigrams and bigrams.
//! Character n-grams carry Chinese, where words are segmented unreliably, and English misspellings; words
//! and bigrams carry phrases. Hashing keeps the vocabulary out of the model's state: a feature's bucket
//! is a fixed function of its text, so nothing has to be learnt or stored to name it.

use std::collections::HashMap;

use switchboard_text::tokens;

/// log2 of the hash space: 2^20 buckets keep collisions rare at the hundreds of thousands of distinct
/// n-grams a knowledge base of tens of thousands of tickets holds.
const BITS: u32 = 20;
const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 1..=4;

/// One feature group: buckets with their sublinear term frequency (1 + ln count).
pub(crate) type Group = Vec<(u32, f32)>;

/// The groups of one text, kept apart so each is normalised on its own, as scikit-learn's
/// `FeatureUnion` of vectorisers does: no group drowns another whatever the text's length. The third is
/// the text's dense embedding when the knowledge base has an embedder (empty otherwise): it carries
/// paraphrases that share no n-gram, where the first two carry exact wording, Chinese and misspellings.
pub(crate) fn extract(text: &str, dense: Option<&[f32]>) -> [Group; 3] {
    let lower = text.to_lowercase();
    let dense = dense
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, &v)| (dense_bucket(i), v))
        .collect();
    [char_ngrams(&lower), words(text), dense]
}

/// Dimension `i` of a dense embedding: a bucket above every hashed one (those are below 2^BITS), so the
/// two never collide. Every record has every dimension, so the model's IDF for these is exactly 1.
fn dense_bucket(i: usize) -> u32 {
    (1 << BITS) + i as u32
}

/// n-grams of each whitespace-separated word padded with one space on each side, so n-grams at a word's
/// edges differ from the same letters inside a word. A word shorter than n yields its whole padded self
/// once, as `char_wb` does.
fn char_ngrams(lower: &str) -> Group {
    let mut counts = HashMap::new();
    let mut padded: Vec<char> = Vec::new();
    for word in lower.split_whitespace() {
        padded.clear();
        padded.push(' ');
        padded.extend(word.chars());
        padded.push(' ');
        for n in CHAR_NGRAMS {
            if padded.len() <= n {
                *counts.entry(bucket(1, &padded)).or_insert(0u32) += 1;
                break;
            }
            for gram in padded.windows(n) {
                *counts.entry(bucket(1, gram)).or_insert(0u32) += 1;
            }
        }
    }
    sublinear(counts)
}

/// The pipeline's own tokens (jieba for Chinese), and each pair of neighbours.
fn words(text: &str) -> Group {
    let tokens = tokens(text);
    let mut counts = HashMap::new();
    let mut chars: Vec<char> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        chars.clear();
        chars.extend(token.chars());
        *counts.entry(bucket(2, &chars)).or_insert(0u32) += 1;
        if let Some(next) = tokens.get(i + 1) {
            chars.push(' ');
            chars.extend(next.chars());
            *counts.entry(bucket(3, &chars)).or_insert(0u32) += 1;
        }
    }
    sublinear(counts)
}

fn sublinear(counts: HashMap<u32, u32>) -> Group {
    let mut group: Group = counts
        .into_iter()
        .map(|(b, n)| (b, 1.0 + (n as f32).ln()))
        .collect();
    // Hash-map order varies from run to run; sorted, training sums in one order and is reproducible.
    group.sort_unstable_by_key(|&(b, _)| b);
    group
}

/// FNV-1a over the kind tag and the characters: fixed across processes and versions, unlike std's
/// seeded hashers. The tag keeps a one-letter word, a character and a bigram of the same text apart.
fn bucket(kind: u8, chars: &[char]) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = (OFFSET ^ u64::from(kind)).wrapping_mul(PRIME);
    for &c in chars {
        for byte in u32::from(c).to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
    }
    // Fold the high bits in: FNV's low bits alone mix poorly for short inputs.
    ((hash ^ (hash >> 32)) & ((1 << BITS) - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_ngrams_respect_word_boundaries() {
        let grams = char_ngrams("ab");
        // " ab " gives 4 unigrams, 3 bigrams, 2 trigrams, 1 four-gram; the two spaces are one unigram.
        let total: usize = grams.len();
        assert_eq!(total, 9, "{grams:?}");
        let space = bucket(1, &[' ']);
        let (_, tf) = grams.iter().find(|(b, _)| *b == space).expect("space");
        assert!((tf - (1.0 + 2f32.ln())).abs() < 1e-6);
        // A word shorter than n counts once, whole.
        assert_eq!(char_ngrams("a").len(), 5, "' ', 'a', ' a', 'a ', ' a '");
    }

    #[test]
    fn chinese_gets_character_ngrams_and_words() {
        let [chars, words, dense] = extract("密码正确但是无法登录", None);
        assert!(chars.len() > 20, "{chars:?}");
        assert!(!words.is_empty());
        assert!(dense.is_empty());
        assert_eq!(extract("Login FAILED", None), extract("login failed", None));
    }

    #[test]
    fn dense_dimensions_get_their_own_buckets() {
        let [chars, words, dense] = extract("ab", Some(&[0.6, -0.8]));
        assert_eq!(dense, [(1 << BITS, 0.6), ((1 << BITS) + 1, -0.8)]);
        assert!(chars.iter().chain(&words).all(|&(b, _)| b < 1 << BITS));
    }
}
