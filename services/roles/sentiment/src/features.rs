//! What the trained classifier sees of a text: hashed character n-grams over the normalised text, plus word
//! unigrams and bigrams from [`switchboard_text::tokens`], as a set of bucket indices.
//!
//! Character n-grams carry Chinese, where a two- or three-character window is usually a word or the part of
//! one that carries the tone (不错, 太差, 不推荐), whatever jieba decided; word features add the English
//! words and the Chinese words that span more than the window. Features are present or absent, not counted:
//! in a short review a repeated word rarely means more, and the naive-Bayes ratios in [`crate::train`] are
//! defined on presence.

use switchboard_text::tokens;

/// FNV-1a 64, the published constants: stable across platforms and releases, so a model file and the
/// benchmark split mean the same thing everywhere.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Feature kinds hashed into one space; the tag keeps the character 我 apart from the word 我.
const CHAR_TAG: u8 = b'c';
const WORD_TAG: u8 = b'w';
const BIGRAM_TAG: u8 = b'b';
/// Between the two words of a bigram, so "ab"+"c" and "a"+"bc" differ.
const BIGRAM_GLUE: u8 = 0x1f;
/// Marks the start and end of the text, so an n-gram knows it opens or closes the review.
const EDGE: char = '\u{2}';

/// The shape of the feature space; stored in every model file, because a model only works with the
/// features it was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// Buckets = 2^hash_bits.
    pub hash_bits: u8,
    /// Character n-gram lengths, inclusive.
    pub char_min: u8,
    pub char_max: u8,
    /// 0: no word features, 1: unigrams, 2: unigrams and bigrams.
    pub word_ngrams: u8,
}

impl Default for FeatureConfig {
    /// 2^20 buckets keep collisions rare for the few hundred thousand n-grams of a review corpus while the
    /// weights stay a 4 MiB file.
    fn default() -> Self {
        Self {
            hash_bits: 20,
            char_min: 1,
            char_max: 3,
            word_ngrams: 2,
        }
    }
}

/// Beyond these a feature space is not one we would train: 2^24 buckets is a 64 MiB model, n-grams longer
/// than 6 characters are too sparse to learn from.
const HASH_BITS: std::ops::RangeInclusive<u8> = 8..=24;
const MAX_NGRAM: u8 = 6;

impl FeatureConfig {
    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if !HASH_BITS.contains(&self.hash_bits) {
            Some("hash_bits must be within 8..=24")
        } else if self.char_min == 0 || self.char_min > self.char_max || self.char_max > MAX_NGRAM {
            Some("character n-grams need 1 ≤ min ≤ max ≤ 6")
        } else if self.word_ngrams > 2 {
            Some("word_ngrams must be 0, 1 or 2")
        } else {
            None
        }
    }

    pub fn buckets(&self) -> usize {
        1usize << self.hash_bits
    }

    /// The sorted, distinct buckets `text` lights up.
    pub fn extract(&self, text: &str) -> Vec<u32> {
        let text = normalise(text);
        let mask = (1u64 << self.hash_bits) - 1;
        let bucket = |h: u64| u32::try_from((h ^ (h >> 32)) & mask).unwrap_or(0);
        let mut out = Vec::new();

        let chars: Vec<char> = std::iter::once(EDGE)
            .chain(text.chars())
            .chain(std::iter::once(EDGE))
            .collect();
        for n in usize::from(self.char_min)..=usize::from(self.char_max) {
            for window in chars.windows(n) {
                let mut h = Fnv::new(CHAR_TAG);
                window.iter().for_each(|&c| h.char(c));
                out.push(bucket(h.0));
            }
        }

        if self.word_ngrams > 0 {
            let words = tokens(&text);
            for w in &words {
                out.push(bucket(Fnv::new(WORD_TAG).bytes(w.as_bytes()).0));
            }
            if self.word_ngrams > 1 {
                for pair in words.windows(2) {
                    let h = Fnv::new(BIGRAM_TAG)
                        .bytes(pair[0].as_bytes())
                        .bytes(&[BIGRAM_GLUE])
                        .bytes(pair[1].as_bytes());
                    out.push(bucket(h.0));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Lower case, full-width ASCII folded to ASCII (！ and ! are one sign), whitespace runs collapsed to one
/// space: the differences between input methods, not between opinions.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv(FNV_OFFSET).bytes(bytes).0
}

struct Fnv(u64);

impl Fnv {
    fn new(tag: u8) -> Self {
        Self(FNV_OFFSET).bytes(&[tag])
    }

    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self
    }

    fn char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_is_the_published_function() {
        // Test vectors from the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn normalising_folds_width_case_and_spaces() {
        assert_eq!(
            normalise("  Ｇｏｏｄ！\u{3000} 真的  很好 "),
            "good! 真的 很好"
        );
    }

    #[test]
    fn features_are_sorted_distinct_and_within_the_buckets() {
        let config = FeatureConfig {
            hash_bits: 12,
            ..FeatureConfig::default()
        };
        let f = config.extract("服务很好，服务很好 good good");
        assert!(!f.is_empty());
        assert!(f.windows(2).all(|w| w[0] < w[1]), "{f:?}");
        assert!(f.iter().all(|&b| (b as usize) < config.buckets()));
        assert_eq!(f, config.extract("服务很好，服务很好  GOOD good"));
        assert_ne!(f, config.extract("服务很差"));
    }

    #[test]
    fn word_features_can_be_left_out() {
        let chars_only = FeatureConfig {
            word_ngrams: 0,
            ..FeatureConfig::default()
        };
        let all = FeatureConfig::default();
        assert!(
            chars_only.extract("the room was clean").len()
                < all.extract("the room was clean").len()
        );
        // Only the edge markers: each alone (one bucket) and the pair.
        assert_eq!(chars_only.extract("").len(), 2);
    }
}
