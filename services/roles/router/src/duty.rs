//! Duty descriptions in a decision: the department whose description reads most like the ticket takes
//! part only when it has no history and the history's own answer is weak (see [`DutyConfig`]).

use switchboard_proto::{DepartmentEvidence, Matches};

use crate::config::DutyConfig;

/// The softmax temperature over the described departments' similarities: descriptions of related
/// duties lie a few hundredths of cosine apart, so a lead of 0.02 already counts for much. Chosen with
/// [`DutyConfig`]'s defaults, on the same cold starts.
const TEMPERATURE: f32 = 0.02;

/// The duty evidence for a department without history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DutyEvidence {
    pub department: String,
    /// The cosine of the ticket's and the description's embeddings.
    pub similarity: f32,
    /// Its share of the duty evidence, which becomes its share of the decision's.
    pub share: f32,
}

/// Typicalities under this count as this: a ticket's rank among the known ones says nothing finer.
const TYPICALITY_FLOOR: f32 = 0.01;

/// Whether the best duty match speaks for the ticket: a department the classifier has no tickets of,
/// while the case for a new department (see [`DutyConfig`]) against the history's favourite (`top`,
/// with the ticket's typicality for it) reaches `min_score`. Nothing when no department is described.
pub(crate) fn duty_evidence(
    matches: &Matches,
    top: Option<(&DepartmentEvidence, Option<f32>)>,
    config: &DutyConfig,
) -> Option<DutyEvidence> {
    let best = matches
        .duties
        .first()
        .filter(|d| config.enabled && !d.known)?;
    // Without a typicality (no classifier) nothing says the ticket is typical of the favourite.
    let (confidence, typicality) = top.map_or((0.0, 0.0), |(e, t)| (e.score, t.unwrap_or(0.0)));
    let case = -(typicality.max(0.0) + TYPICALITY_FLOOR).ln()
        - config.confidence_weight * confidence
        + config.similarity_weight * best.similarity;
    if case < config.min_score {
        return None;
    }
    let total: f32 = matches
        .duties
        .iter()
        .map(|d| ((d.similarity - best.similarity) / TEMPERATURE).exp())
        .sum();
    Some(DutyEvidence {
        department: best.department.clone(),
        similarity: best.similarity,
        share: 1.0 / total,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_proto::DutyMatch;

    use super::*;

    fn duties(list: &[(&str, f32, bool)]) -> Matches {
        Matches {
            duties: list
                .iter()
                .map(|&(department, similarity, known)| DutyMatch {
                    department: department.into(),
                    similarity,
                    known,
                })
                .collect(),
            ..Matches::default()
        }
    }

    fn favourite(score: f32) -> DepartmentEvidence {
        DepartmentEvidence {
            department: "billing".into(),
            score,
            count: 4,
            ..DepartmentEvidence::default()
        }
    }

    #[test]
    fn a_described_department_without_history_speaks_only_where_the_history_is_weak() {
        let config = DutyConfig::default();
        let m = duties(&[("passports", 0.45, false), ("visas", 0.30, false)]);
        let weak = favourite(0.4);
        let duty = duty_evidence(&m, Some((&weak, Some(0.02))), &config).expect("weak history");
        assert_eq!(duty.department, "passports");
        assert!(duty.share > 0.9, "{duty:?}");
        // Confident and not strange, or typical: the history decides.
        let sure = favourite(0.9);
        assert_eq!(duty_evidence(&m, Some((&sure, Some(0.3))), &config), None);
        assert_eq!(duty_evidence(&m, Some((&weak, Some(0.9))), &config), None);
        // A department with history, or a description unlike the ticket: no duty evidence.
        let known = duties(&[("billing", 0.6, true), ("passports", 0.5, false)]);
        assert_eq!(
            duty_evidence(&known, Some((&weak, Some(0.02))), &config),
            None
        );
        let unlike = duties(&[("passports", -0.2, false)]);
        assert_eq!(
            duty_evidence(&unlike, Some((&weak, Some(0.2))), &config),
            None
        );
        // An empty knowledge base: the description is all there is.
        assert!(duty_evidence(&m, None, &config).is_some());
        // Turned off.
        let off = DutyConfig {
            enabled: false,
            ..config
        };
        assert_eq!(duty_evidence(&m, None, &off), None);
    }

    #[test]
    fn close_descriptions_share_the_duty_evidence() {
        let m = duties(&[("passports", 0.45, false), ("visas", 0.44, false)]);
        let duty = duty_evidence(&m, None, &DutyConfig::default()).expect("evidence");
        assert!((0.55..0.7).contains(&duty.share), "{duty:?}");
    }
}
