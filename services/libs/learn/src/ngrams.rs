//! Hashed n-gram features of a text, in the shape of scikit-learn's vectorisers: character n-grams over
//! the whole text (its `char` analyzer) or within each word (`char_wb`), and word unigrams and bigrams
//! from [`switchboard_text::tokens`] (jieba for Chinese). Character n-grams carry Chinese, where words are
//! segmented unreliably, and misspellings; words and bigrams carry phrases. Han text can have n-grams
//! of its own length ([`NgramConfig::han_char_max`]).
//!
//! Hashing keeps the vocabulary out of a model's state: a feature's bucket is a fixed function of its
//! text, so nothing has to be learnt or stored to name it, and a model file means the same thing on every
//! platform and release.

use switchboard_text::{is_han, tokens};

/// FNV-1a 64, the published constants.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Feature kinds hashed into one space; the tag keeps the character 我 apart from the word 我.
const CHAR_TAG: u8 = b'c';
const WORD_TAG: u8 = b'w';
const BIGRAM_TAG: u8 = b'b';
/// Between the two words of a bigram, so "ab"+"c" and "a"+"bc" differ.
const BIGRAM_GLUE: u8 = 0x1f;
/// Pads each end of what character n-grams are taken from (the text, or each word), so an n-gram at an
/// edge differs from the same letters inside. A control character no text shows.
const EDGE: char = '\u{2}';

/// Beyond these a feature space is not one worth training: 2^24 buckets of f32 weights is 64 MiB per
/// class, and n-grams longer than 6 characters are too sparse to learn from.
const HASH_BITS: std::ops::RangeInclusive<u8> = 8..=24;
const MAX_NGRAM: u8 = 6;

/// How a feature's occurrences in one text become its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// 1 however often: in a short text a repeat rarely means more, and naive-Bayes ratios are
    /// defined on presence.
    Presence,
    /// 1 + ln(count), scikit-learn's `sublinear_tf`: a repeat means more, ten of them not ten times more.
    Sublinear,
}

/// The shape of a feature space. A model only works with the features it was trained on, so whoever
/// stores a model stores this with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgramConfig {
    /// Buckets = 2^hash_bits.
    pub hash_bits: u8,
    /// Character n-gram lengths, inclusive.
    pub char_min: u8,
    pub char_max: u8,
    /// Character n-grams within each whitespace-separated word (`char_wb`: a word shorter than n yields
    /// its whole padded self once), or across the whole text, spaces included (`char`).
    pub word_bounded: bool,
    /// 0: no word features, 1: unigrams, 2: unigrams and bigrams.
    pub word_ngrams: u8,
    /// `Some(n)`: runs of Han characters get character n-grams up to `n` long, apart from the letters
    /// around them, and give no word features. A Han character is about what a word is in a Latin
    /// script, so its unigrams and bigrams are Chinese's words and phrases, where longer n-grams are too
    /// rare to learn from and a segmenter's one guess at the words adds only its mistakes. `None`: Han
    /// text is cut like any other.
    pub han_char_max: Option<u8>,
    pub counts: Counts,
}

/// One text's features, each group sorted by bucket with every bucket once. The groups are apart so
/// that a user can weigh or normalise each on its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NgramFeatures {
    pub chars: Vec<(u32, f32)>,
    pub words: Vec<(u32, f32)>,
}

impl NgramConfig {
    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if !HASH_BITS.contains(&self.hash_bits) {
            Some("hash_bits must be within 8..=24")
        } else if self.char_min == 0 || self.char_min > self.char_max || self.char_max > MAX_NGRAM {
            Some("character n-grams need 1 ≤ min ≤ max ≤ 6")
        } else if self.word_ngrams > 2 {
            Some("word_ngrams must be 0, 1 or 2")
        } else if self
            .han_char_max
            .is_some_and(|n| n < self.char_min || n > MAX_NGRAM)
        {
            Some("Han character n-grams need min ≤ max ≤ 6")
        } else {
            None
        }
    }

    pub fn buckets(&self) -> usize {
        1usize << self.hash_bits
    }

    /// The features of `text`, after [`normalise`].
    pub fn extract(&self, text: &str) -> NgramFeatures {
        let (mut chars, mut words) = (Vec::new(), Vec::new());
        self.hash(text, &mut chars, &mut words);
        NgramFeatures {
            chars: self.count(chars),
            words: self.count(words),
        }
    }

    /// Every bucket `text` lights up in either group, sorted and distinct: the text as a set, for
    /// [`Counts::Presence`] users that keep no groups. One sort, no values: this is on the scoring path
    /// of every text.
    pub fn extract_set(&self, text: &str) -> Vec<u32> {
        let mut buckets = Vec::new();
        let mut words = Vec::new();
        self.hash(text, &mut buckets, &mut words);
        buckets.append(&mut words);
        buckets.sort_unstable();
        buckets.dedup();
        buckets
    }

    /// The bucket of every n-gram occurrence, characters' and words' apart, unsorted.
    fn hash(&self, text: &str, chars: &mut Vec<u32>, words: &mut Vec<u32>) {
        let text = normalise(text);
        let mut padded: Vec<char> = Vec::new();
        let mut pad = |part: &str| {
            self.script_runs(part, |run, max| {
                padded.clear();
                padded.push(EDGE);
                padded.extend(run.chars());
                padded.push(EDGE);
                self.char_ngrams(&padded, max, chars);
            });
        };
        if self.word_bounded {
            text.split(' ').filter(|w| !w.is_empty()).for_each(pad);
        } else {
            pad(&text);
        }
        if self.word_ngrams > 0 {
            let mut tokens = tokens(&text);
            if self.han_char_max.is_some() {
                tokens.retain(|w| !w.chars().any(is_han));
            }
            for w in &tokens {
                words.push(self.bucket(Fnv::new(WORD_TAG).bytes(w.as_bytes())));
            }
            if self.word_ngrams > 1 {
                for pair in tokens.windows(2) {
                    let h = Fnv::new(BIGRAM_TAG)
                        .bytes(pair[0].as_bytes())
                        .bytes(&[BIGRAM_GLUE])
                        .bytes(pair[1].as_bytes());
                    words.push(self.bucket(h));
                }
            }
        }
    }

    /// Calls `run` with `part` and the longest n-gram for it: whole, or with
    /// [`NgramConfig::han_char_max`] cut where it turns from Han characters to others or back, each
    /// run with its script's longest. A callback, not a list: this is on the path of every text.
    fn script_runs(&self, part: &str, mut run: impl FnMut(&str, u8)) {
        let Some(han_max) = self.han_char_max else {
            return run(part, self.char_max);
        };
        let max = |han: bool| if han { han_max } else { self.char_max };
        let (mut start, mut han) = (0, None);
        for (at, c) in part.char_indices() {
            let this = is_han(c);
            match han {
                Some(before) if before != this => {
                    run(&part[start..at], max(before));
                    start = at;
                }
                _ => {}
            }
            han = Some(this);
        }
        run(&part[start..], max(han.unwrap_or(false)));
    }

    fn char_ngrams(&self, chars: &[char], max: u8, out: &mut Vec<u32>) {
        for n in usize::from(self.char_min)..=usize::from(max) {
            if chars.len() <= n {
                // Exactly n long, the sequence is its one window; shorter, `char_wb` counts it whole.
                if chars.len() == n || self.word_bounded {
                    out.push(self.bucket(Fnv::new(CHAR_TAG).chars(chars)));
                }
                break;
            }
            for window in chars.windows(n) {
                out.push(self.bucket(Fnv::new(CHAR_TAG).chars(window)));
            }
        }
    }

    /// Folds the high bits in: FNV's low bits alone mix poorly for short inputs.
    fn bucket(&self, h: Fnv) -> u32 {
        let mask = (1u64 << self.hash_bits) - 1;
        ((h.0 ^ (h.0 >> 32)) & mask) as u32
    }

    /// Each bucket once, with its value. Sorted, so whoever sums over the features sums in one order
    /// and is reproducible.
    fn count(&self, mut buckets: Vec<u32>) -> Vec<(u32, f32)> {
        buckets.sort_unstable();
        let mut out: Vec<(u32, f32)> = Vec::new();
        let mut run = 0u32;
        for (i, &b) in buckets.iter().enumerate() {
            run += 1;
            if buckets.get(i + 1) != Some(&b) {
                let value = match self.counts {
                    Counts::Presence => 1.0,
                    Counts::Sublinear => 1.0 + (run as f32).ln(),
                };
                out.push((b, value));
                run = 0;
            }
        }
        out
    }
}

/// Lower case, full-width ASCII folded to ASCII (！ and ! are one sign), whitespace runs collapsed to one
/// space and trimmed: the differences between input methods, not between texts.
fn normalise(text: &str) -> String {
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

/// FNV-1a 64 of `bytes`: stable across platforms and releases, unlike std's seeded hashers, so anything
/// derived from it (a bucket, a benchmark split) can be reproduced from the text alone.
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

    /// The characters' UTF-8, without building a string.
    fn chars(mut self, chars: &[char]) -> Self {
        let mut buf = [0u8; 4];
        for &c in chars {
            self = self.bytes(c.encode_utf8(&mut buf).as_bytes());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole-text character n-grams 1 to 3, words and bigrams, as a set.
    const SET: NgramConfig = NgramConfig {
        hash_bits: 12,
        char_min: 1,
        char_max: 3,
        word_bounded: false,
        word_ngrams: 2,
        han_char_max: None,
        counts: Counts::Presence,
    };

    /// `char_wb` n-grams 1 to 4, counted sublinearly, no words.
    const WB: NgramConfig = NgramConfig {
        hash_bits: 20,
        char_min: 1,
        char_max: 4,
        word_bounded: true,
        word_ngrams: 0,
        han_char_max: None,
        counts: Counts::Sublinear,
    };

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
        let f = SET.extract_set("服务很好，服务很好 good good");
        assert!(!f.is_empty());
        assert!(f.windows(2).all(|w| w[0] < w[1]), "{f:?}");
        assert!(f.iter().all(|&b| (b as usize) < SET.buckets()));
        assert_eq!(f, SET.extract_set("服务很好，服务很好  GOOD good"));
        assert_ne!(f, SET.extract_set("服务很差"));
        let groups = SET.extract("服务很好，服务很好 good good");
        assert!(groups.chars.iter().all(|&(_, v)| v == 1.0), "presence");
        // The set is both groups' buckets, each once.
        let mut union: Vec<u32> = groups
            .chars
            .iter()
            .chain(&groups.words)
            .map(|&(b, _)| b)
            .collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, f);
    }

    #[test]
    fn word_features_can_be_left_out() {
        let chars_only = NgramConfig {
            word_ngrams: 0,
            ..SET
        };
        assert!(
            chars_only.extract_set("the room was clean").len()
                < SET.extract_set("the room was clean").len()
        );
        // Only the edge markers: each alone (one bucket) and the pair.
        assert_eq!(chars_only.extract_set("").len(), 2);
        assert!(chars_only.extract("the room").words.is_empty());
    }

    #[test]
    fn char_ngrams_respect_word_boundaries() {
        let grams = WB.extract("ab").chars;
        // Edge, a, b, edge gives 4 unigrams, 3 bigrams, 2 trigrams, 1 four-gram; the two edges are one
        // unigram.
        assert_eq!(grams.len(), 9, "{grams:?}");
        let edge = WB.bucket(Fnv::new(CHAR_TAG).chars(&[EDGE]));
        let (_, tf) = grams.iter().find(|(b, _)| *b == edge).expect("edge");
        assert!((tf - (1.0 + 2f32.ln())).abs() < 1e-6);
        // A word shorter than n counts once, whole.
        assert_eq!(
            WB.extract("a").chars.len(),
            5,
            "edge, a, edge-a, a-edge, all"
        );
        // Two words share no n-gram across the space; across the whole text they would.
        let across = NgramConfig {
            word_bounded: false,
            ..WB
        };
        assert_eq!(
            WB.extract("ab ab").chars.len(),
            9,
            "the same word twice: its n-grams, counted twice"
        );
        assert!(across.extract("ab ab").chars.len() > 9);
        // A word shorter than the shortest n still counts, once and whole; a whole text shorter than
        // it yields nothing.
        let four = NgramConfig {
            char_min: 4,
            char_max: 4,
            ..WB
        };
        assert_eq!(four.extract("a").chars.len(), 1);
        assert!(
            NgramConfig {
                word_bounded: false,
                ..four
            }
            .extract("")
            .chars
            .is_empty()
        );
    }

    #[test]
    fn han_runs_can_have_their_own_length_and_no_words() {
        let words = NgramConfig {
            word_ngrams: 2,
            ..WB
        };
        let han = NgramConfig {
            han_char_max: Some(2),
            ..words
        };
        // Edge, 登, 录, edge: 3 distinct unigrams and 3 bigrams, where 1 to 4 gives 3 + 3 + 2 + 1.
        assert_eq!(han.extract("登录").chars.len(), 6);
        assert_eq!(words.extract("登录").chars.len(), 9);
        assert!(han.extract("登录失败").words.is_empty());
        assert!(!words.extract("登录失败").words.is_empty());
        // Letters keep their length and their words, also inside a Han word.
        let vpn = han.extract("vpn");
        let mixed = han.extract("vpn登录");
        let buckets = |f: &NgramFeatures| f.chars.iter().map(|&(b, _)| b).collect::<Vec<_>>();
        assert!(buckets(&vpn).iter().all(|b| buckets(&mixed).contains(b)));
        assert_eq!(mixed.words, vpn.words);
        assert_eq!(vpn, words.extract("vpn"));
        assert!(han.problem().is_none());
        assert!(
            NgramConfig {
                han_char_max: Some(7),
                ..han
            }
            .problem()
            .is_some()
        );
    }

    #[test]
    fn sublinear_counts_grow_with_the_log() {
        let words = NgramConfig {
            word_ngrams: 1,
            counts: Counts::Sublinear,
            ..SET
        };
        let once = words.extract("refund").words;
        let thrice = words.extract("refund refund refund").words;
        assert_eq!(once.len(), 1);
        assert_eq!(thrice[0].0, once[0].0);
        assert!((thrice[0].1 - (1.0 + 3f32.ln())).abs() < 1e-6);
        assert!(SET.problem().is_none() && WB.problem().is_none());
        let bad = NgramConfig { char_min: 0, ..SET };
        assert!(bad.problem().is_some());
    }
}
