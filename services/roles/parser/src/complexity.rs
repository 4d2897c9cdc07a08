//! The complexity tier, 1 (one simple question) to 5 (a long ticket tangling several problems). The
//! sentiment stage escalates from a configured tier, so the heuristic is kept simple enough to predict:
//!
//! tier = 1 + length points + problem points + entity point, at most 5, where
//! - length points: 0 up to 30 tokens, 1 up to 80, 2 beyond: long tickets take long to read and answer.
//!   Tokens rather than characters, so the same content in Chinese and English lands in the same tier;
//! - problem points: 0 for one problem (or none), 1 for two, 2 for three or more, counting the sentences
//!   that contain a problem cue word: each distinct problem may need a different team;
//! - entity point: 1 when the ticket cites 3 or more entities, each one something to look up.

use switchboard_text::tokens;

const MAX_TIER: u32 = 5;

/// Chinese problem cues, matched as substrings: jieba may split or merge them with their neighbours.
const CUES_ZH: &[&str] = &[
    "无法",
    "不能",
    "不了",
    "失败",
    "错误",
    "报错",
    "故障",
    "异常",
    "问题",
    "进不去",
    "打不开",
    "登不上",
    "收不到",
    "没收到",
    "未收到",
    "没到",
    "丢失",
    "损坏",
    "坏了",
    "退款",
    "退货",
    "投诉",
    "扣费",
    "多扣",
    "扣了",
    "延迟",
    "卡住",
    "闪退",
    "不对",
    "不符",
];

/// English problem cues, matched against whole tokens.
const CUES_EN: &[&str] = &[
    "can't",
    "cannot",
    "couldn't",
    "unable",
    "fail",
    "failed",
    "fails",
    "failing",
    "failure",
    "error",
    "errors",
    "broken",
    "wrong",
    "missing",
    "lost",
    "damaged",
    "refund",
    "charged",
    "overcharged",
    "crash",
    "crashes",
    "crashed",
    "stuck",
    "problem",
    "issue",
    "complaint",
    "late",
    "delayed",
    "not",
    "never",
    "didn't",
    "doesn't",
    "won't",
    "isn't",
];

pub(crate) fn tier(token_count: usize, sentences: &[&str], entity_count: usize) -> u32 {
    let length = match token_count {
        0..=30 => 0,
        31..=80 => 1,
        _ => 2,
    };
    let problems = match sentences.iter().filter(|s| states_a_problem(s)).count() {
        0 | 1 => 0,
        2 => 1,
        _ => 2,
    };
    let entities = u32::from(entity_count >= 3);
    (1 + length + problems + entities).min(MAX_TIER)
}

fn states_a_problem(sentence: &str) -> bool {
    // Only a sentence with Latin letters can hold an English cue; the rest skip segmentation.
    CUES_ZH.iter().any(|cue| sentence.contains(cue))
        || sentence.chars().any(|c| c.is_ascii_alphabetic())
            && tokens(sentence)
                .iter()
                .any(|t| CUES_EN.contains(&t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_short_problem_is_tier_one() {
        assert_eq!(tier(8, &["密码正确却登录失败"], 0), 1);
    }

    #[test]
    fn problems_length_and_entities_add_up() {
        let sentences = [
            "The app crashed",
            "My refund never came",
            "I was charged twice",
            "Thanks",
        ];
        assert_eq!(tier(20, &sentences, 0), 3);
        assert_eq!(tier(50, &sentences, 3), 5);
        assert_eq!(tier(500, &sentences, 9), MAX_TIER);
    }
}
