//! Policy passages in a decision: each relevant passage speaks for the departments its document
//! concerns, in proportion to its relevance, and together they weigh `router.policy_weight`.

use std::collections::BTreeMap;

use switchboard_proto::Matches;

/// Each department the ticket's relevant passages concern, with its share of their scores (summing to
/// one); empty when no passage names a department.
pub(crate) fn policy_shares(matches: &Matches) -> BTreeMap<String, f32> {
    let mut shares: BTreeMap<String, f32> = BTreeMap::new();
    for passage in matches.policies.iter().filter(|p| p.score > 0.0) {
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
                passage(&[], 5.0),
            ],
            ..Matches::default()
        };
        let shares = policy_shares(&matches);
        assert!((shares["housing_fund"] - 0.8).abs() < 1e-6, "{shares:?}");
        assert!((shares["tax_service"] - 0.2).abs() < 1e-6, "{shares:?}");
        assert!(policy_shares(&Matches::default()).is_empty());
    }
}
