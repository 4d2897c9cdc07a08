//! Evidence that is not the history's (duty descriptions, policy passages) mixed into the decision's:
//! the history's departments keep `1 − weight` of their scores, and each department the other evidence
//! names gets `weight` times its share of it, so the scores still sum to one.

use std::collections::BTreeMap;

use switchboard_proto::DepartmentEvidence;

/// Mixes `shares` (summing to one) into `evidence` at `weight`, best first again.
pub(crate) fn mix_in(
    evidence: &mut Vec<DepartmentEvidence>,
    shares: &BTreeMap<String, f32>,
    weight: f32,
) {
    for e in evidence.iter_mut() {
        e.score *= 1.0 - weight;
    }
    for (department, share) in shares {
        let added = weight * share;
        match evidence.iter_mut().find(|e| &e.department == department) {
            Some(e) => e.score += added,
            None => evidence.push(DepartmentEvidence {
                department: department.clone(),
                score: added,
                ..DepartmentEvidence::default()
            }),
        }
    }
    evidence.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.department.cmp(&b.department))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(department: &str, score: f32) -> DepartmentEvidence {
        DepartmentEvidence {
            department: department.into(),
            score,
            ..DepartmentEvidence::default()
        }
    }

    #[test]
    fn the_mix_still_sums_to_one_and_adds_new_departments() {
        let mut evidence = vec![e("billing", 0.7), e("delivery", 0.3)];
        let shares = BTreeMap::from([
            ("passports".to_owned(), 0.75),
            ("delivery".to_owned(), 0.25),
        ]);
        mix_in(&mut evidence, &shares, 0.6);
        assert_eq!(evidence[0].department, "passports");
        let total: f32 = evidence.iter().map(|e| e.score).sum();
        assert!((total - 1.0).abs() < 1e-6, "{evidence:?}");
        let delivery = evidence
            .iter()
            .find(|e| e.department == "delivery")
            .expect("kept");
        assert!((delivery.score - (0.3 * 0.4 + 0.6 * 0.25)).abs() < 1e-6);
    }
}
