//! Policy passages in a decision: each relevant passage speaks for the departments its document
//! concerns, in proportion to its relevance, and together they weigh `router.policy_weight`.

use std::collections::BTreeMap;

use switchboard_proto::Matches;

/// Passages scoring under this share of the best one's are shown but do not weigh: a small library
/// returns its least bad passages too, and a shared word ("contract") must not lend an unrelated
/// department a voice.
const RELEVANT_SHARE: f32 = 0.5;

/// Each department the ticket's relevant passages concern, with its share of their scores (summing to
/// one); empty when no relevant passage names a department.
pub(crate) fn policy_shares(matches: &Matches) -> BTreeMap<String, f32> {
    let best = matches.policies.iter().map(|p| p.score).fold(0.0, f32::max);
    let mut shares: BTreeMap<String, f32> = BTreeMap::new();
    let relevant = matches
        .policies
        .iter()
        .filter(|p| p.score > 0.0 && p.score >= RELEVANT_SHARE * best);
    for passage in relevant {
        // A passage concerning several departments divides its voice among them.
        let each = passage.score / passage.departments.len().max(1) as f32;
        for department in &passage.departments {
            *shares.entry(department.clone()).or_default() += each;
        }
    }
    let total: f32 = shares.values().sum();
    if total > 0.0 {
        for share in shares.values_mut() {
            *share /= total;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use switchboard_proto::PolicyPassage;

    use super::*;

    fn passage(departments: &[&str], score: f32) -> PolicyPassage {
        PolicyPassage {
            departments: departments.iter().map(|d| (*d).to_owned()).collect(),
            score,
            ..PolicyPassage::default()
        }
    }

    #[test]
    fn passages_share_by_relevance_and_department() {
        let matches = Matches {
            policies: vec![
                passage(&["housing_fund"], 3.0),
                passage(&["housing_fund", "tax_service"], 2.0),
                passage(&[], 3.5),
                // Far behind the best: shown, not weighed.
                passage(&["logistics"], 1.0),
            ],
            ..Matches::default()
        };
        let shares = policy_shares(&matches);
        assert!((shares["housing_fund"] - 0.8).abs() < 1e-6, "{shares:?}");
        assert!((shares["tax_service"] - 0.2).abs() < 1e-6, "{shares:?}");
        assert!(!shares.contains_key("logistics"), "{shares:?}");
        assert!(policy_shares(&Matches::default()).is_empty());
    }
}
