//! The classifier's text features, in the shape of scikit-learn's TF-IDF over character n-grams (1 to 4,
//! word-boundary aware like its `char_wb`) joined with word unigrams and bigrams, each counted
//! sublinearly; Chinese gets character unigrams and bigrams instead. The IDF and the normalisation are
//! the model's ([`super::model`]).

use switchboard_learn::{Counts, NgramConfig};

/// 2^20 buckets keep collisions rare at the hundreds of thousands of distinct n-grams a knowledge base
/// of tens of thousands of tickets holds. A repeated word in a ticket says a little more about its topic,
/// so occurrences count, sublinearly. Han characters get n-grams up to 2 and no jieba words: on a
/// Chinese history, 5-fold cross-validation of the SVM went from 0.898 (1 to 4, with words) to 0.914,
/// and English is cut as before.
const FEATURES: NgramConfig = NgramConfig {
    hash_bits: 20,
    char_min: 1,
    char_max: 4,
    word_bounded: true,
    word_ngrams: 2,
    han_char_max: Some(2),
    counts: Counts::Sublinear,
};

/// One feature group: buckets with their values.
pub(crate) type Group = Vec<(u32, f32)>;

/// The groups of one text, kept apart so each is normalised on its own, as scikit-learn's
/// `FeatureUnion` of vectorisers does: no group drowns another whatever the text's length. The third is
/// the text's dense embedding when the knowledge base has an embedder (empty otherwise): it carries
/// paraphrases that share no n-gram, where the first two carry exact wording, Chinese and misspellings.
pub(crate) fn extract(text: &str, dense: Option<&[f32]>) -> [Group; 3] {
    let ngrams = FEATURES.extract(text);
    let dense = dense
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, &v)| (dense_bucket(i), v))
        .collect();
    [ngrams.chars, ngrams.words, dense]
}

/// Dimension `i` of a dense embedding: a bucket above every hashed one, so the two never collide. Every
/// record has every dimension, so the model's IDF for these is exactly 1.
fn dense_bucket(i: usize) -> u32 {
    FEATURES.buckets() as u32 + i as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_gets_character_unigrams_and_bigrams_and_no_words() {
        assert_eq!(FEATURES.problem(), None);
        // Edges and 10 characters: 11 distinct unigrams (the edges are one), 11 bigrams.
        let [chars, words, dense] = extract("密码正确但是无法登录", None);
        assert_eq!(chars.len(), 22, "{chars:?}");
        assert!(words.is_empty());
        assert!(dense.is_empty());
        // The English in a Chinese ticket is cut as English: words, and n-grams up to 4.
        let [mixed, words, _] = extract("vpn无法登录", None);
        let [vpn, vpn_words, _] = extract("vpn", None);
        assert!(vpn.iter().all(|(b, _)| mixed.iter().any(|(m, _)| m == b)));
        assert_eq!(words, vpn_words);
        assert_eq!(extract("Login FAILED", None), extract("login failed", None));
    }

    #[test]
    fn dense_dimensions_get_their_own_buckets() {
        let [chars, words, dense] = extract("ab", Some(&[0.6, -0.8]));
        assert_eq!(dense, [(1 << 20, 0.6), ((1 << 20) + 1, -0.8)]);
        assert!(chars.iter().chain(&words).all(|&(b, _)| b < 1 << 20));
    }
}
