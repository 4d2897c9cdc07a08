//! How a correction changes the evidence, by the agent's reason: how much the corrected ticket counts,
//! and, when the reason says the history itself went wrong, which older tickets lose weight.
//!
//! Why it works: the router blends the classifier with the similar tickets' shares, each similar
//! ticket voting with its similarity times its weight (see `switchboard_knowledge::evidence`). After a
//! change of responsibility, a new ticket's neighbours are still mostly the old department's history,
//! so one heavier correction alone is outvoted by the many old tickets around it. Demoting the old
//! department's close, older tickets each time one is corrected shrinks exactly those votes
//! (geometrically: after n corrections in the same area their weight is `factor^n`, never below the
//! floor) while the corrections' own votes add up, so the share flips after a few corrections. The
//! classifier weighs every record by its weight too, and moves the demoted ones to their new weight
//! in place, so the blend's other half follows at once.
//! Tickets far from the corrected ones, and other departments' tickets, keep their weight: history
//! that did not change stays evidence.

use std::collections::HashMap;

use serde::Deserialize;
use switchboard_knowledge::{KnowledgeBase, KnowledgeError, Query, StoredRecord};
use switchboard_proto::{CorrectionReason, KnowledgeRecord, SimilarTicket};

/// The `[feedback.corrections]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrectionsConfig {
    /// The weight of a ticket corrected because the history changed (`policy_updated`,
    /// `responsibility_changed`, `system_upgraded`): a historical ticket weighs 1.
    pub change_weight: f32,
    /// The weight of a ticket corrected as a plain mistake (`wrong_department`).
    pub wrong_department_weight: f32,
    /// The weight of a ticket corrected for any other reason.
    pub other_weight: f32,
    /// On a change correction, each close older ticket of the department the ticket was taken from
    /// has its weight multiplied by this (0 to 1; 1 turns demotion off).
    pub demote_factor: f32,
    /// No demotion takes a weight below this (above 0): a demoted ticket still says a little.
    pub demote_floor: f32,
    /// At most this many tickets are demoted per correction (0 turns demotion off).
    pub demote_max_records: usize,
    /// A ticket is close enough to demote when its similarity to the corrected ticket is at least this
    /// share (0 to 1) of the nearest other ticket's. Relative, because the search's scores (BM25, or
    /// BM25 fused with dense) have no fixed scale: the nearest ticket sets it for each query.
    pub demote_min_similarity: f32,
}

impl Default for CorrectionsConfig {
    fn default() -> Self {
        Self {
            change_weight: 3.0,
            wrong_department_weight: 2.0,
            other_weight: 1.5,
            demote_factor: 0.2,
            demote_floor: 0.05,
            demote_max_records: 120,
            demote_min_similarity: 0.2,
        }
    }
}

impl CorrectionsConfig {
    /// Corrections counted as plain tickets: weight 1 whatever the reason, and no demotion. What
    /// `switchboard bench-drift` compares the configured weighing with.
    pub fn plain() -> Self {
        Self {
            change_weight: 1.0,
            wrong_department_weight: 1.0,
            other_weight: 1.0,
            demote_factor: 1.0,
            ..Self::default()
        }
    }

    /// Checks every value, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let key = |name: &str| format!("feedback.corrections.{name}");
        for (name, weight) in [
            ("change_weight", self.change_weight),
            ("wrong_department_weight", self.wrong_department_weight),
            ("other_weight", self.other_weight),
        ] {
            if !weight.is_finite() || weight <= 0.0 {
                return Err(format!("{} must be above 0, got {weight}", key(name)));
            }
        }
        if !(self.demote_factor > 0.0 && self.demote_factor <= 1.0) {
            return Err(format!(
                "{} must be within (0, 1], got {}",
                key("demote_factor"),
                self.demote_factor
            ));
        }
        if !(self.demote_floor > 0.0 && self.demote_floor <= 1.0) {
            return Err(format!(
                "{} must be within (0, 1], got {}",
                key("demote_floor"),
                self.demote_floor
            ));
        }
        if !(0.0..=1.0).contains(&self.demote_min_similarity) {
            return Err(format!(
                "{} must be within 0..=1, got {}",
                key("demote_min_similarity"),
                self.demote_min_similarity
            ));
        }
        Ok(())
    }

    /// How much a ticket corrected for `reason` counts as evidence.
    pub fn weight(&self, reason: CorrectionReason) -> f32 {
        if history_changed(reason) {
            self.change_weight
        } else if reason == CorrectionReason::WrongDepartment {
            self.wrong_department_weight
        } else {
            self.other_weight
        }
    }

    /// Whether corrections for `reason` demote older tickets.
    fn demotes(&self, reason: CorrectionReason) -> bool {
        history_changed(reason) && self.demote_factor < 1.0 && self.demote_max_records > 0
    }
}

/// The reasons that say older history is now wrong, not only this ticket's decision.
fn history_changed(reason: CorrectionReason) -> bool {
    matches!(
        reason,
        CorrectionReason::PolicyUpdated
            | CorrectionReason::ResponsibilityChanged
            | CorrectionReason::SystemUpgraded
    )
}

/// The corrected ticket, as demotion needs it.
#[derive(Debug)]
pub(crate) struct CorrectedTicket<'a> {
    /// Its own knowledge record's id, which is never demoted.
    pub record_id: &'a str,
    pub query: &'a Query,
    pub received_at_ms: i64,
    /// The department it was taken from.
    pub from_department: &'a str,
    /// The department it was given.
    pub to_department: &'a str,
    pub reason: CorrectionReason,
}

/// Demotes the knowledge base's tickets that the correction says are wrong now: those of the
/// department the ticket was taken from, created before it (or with no creation time, as imported
/// history may be), close to it (see [`CorrectionsConfig::demote_min_similarity`]), at most
/// [`CorrectionsConfig::demote_max_records`], nearest first. Returns how many weights changed.
pub(crate) async fn demote(
    kb: &KnowledgeBase,
    config: &CorrectionsConfig,
    ticket: &CorrectedTicket<'_>,
) -> Result<usize, KnowledgeError> {
    if !config.demotes(ticket.reason) || ticket.from_department.is_empty() {
        return Ok(0);
    }
    // The old department's tickets are among the nearest, not all of them: look a few times as far.
    let limit = (config.demote_max_records * 4 + 1).min(500);
    let similar = kb.similar_to(ticket.query, limit).await?;
    let others = similar.iter().filter(|s| s.id != ticket.record_id);
    let Some(nearest) = others.clone().next().map(|s| s.score) else {
        return Ok(0);
    };
    let floor = nearest * config.demote_min_similarity;
    // Tickets an earlier correction took to the floor already are passed over, not counted: the
    // limit is on the weights this one changes, so a correction next to earlier ones reaches further.
    let demoted: Vec<(SimilarTicket, f32)> = others
        .filter(|s| {
            s.department == ticket.from_department
                && s.created_at_ms < ticket.received_at_ms
                && s.score >= floor
        })
        .filter_map(|s| {
            let now = if s.weight > 0.0 { s.weight } else { 1.0 };
            let demoted = (now * config.demote_factor).max(config.demote_floor);
            (demoted < now).then(|| (s.clone(), demoted))
        })
        .take(config.demote_max_records)
        .collect();
    // The classifier moves each record to its new weight in place, which needs its features: the
    // records as stored, with their embeddings.
    let ids: Vec<String> = demoted.iter().map(|(s, _)| s.id.clone()).collect();
    let weights: HashMap<String, f32> = demoted.into_iter().map(|(s, w)| (s.id, w)).collect();
    let mut changes = Vec::with_capacity(ids.len());
    let mut moved = Vec::with_capacity(ids.len());
    for stored in kb.stored(&ids).await? {
        let Some(&weight) = weights.get(&stored.record.id) else {
            continue;
        };
        // A correction the old department had (weighing more than 1) keeps its own weight's worth.
        if weight < 1.0 {
            moved.push(StoredRecord {
                record: moved_part(&stored.record, weight, ticket.to_department),
                dense: stored.dense.clone(),
            });
        }
        changes.push((stored, weight));
    }
    let demoted = kb.set_weights(changes).await?;
    kb.learn(moved).await?;
    Ok(demoted)
}

/// What a demoted record lost, as a record of the department the correction chose: a change of
/// responsibility says tickets like it go there now. Lowering the old department's weight alone
/// leaves the area to whichever third department is nearest, and a linear model over this many
/// n-grams keeps, at any weight, each word only the old department's records have (both measured in
/// `switchboard bench-drift`); the moved part makes those records evidence for the new department,
/// in the classifier and among the similar tickets, in the measure the correction took from the old.
/// One per record and department (`moved:<department>:<id>`), rewritten at each demotion.
fn moved_part(record: &KnowledgeRecord, weight: f32, to: &str) -> KnowledgeRecord {
    KnowledgeRecord {
        id: format!("{MOVED_SOURCE}:{to}:{}", record.id),
        department: to.to_owned(),
        source: MOVED_SOURCE.into(),
        weight: 1.0 - weight,
        ..record.clone()
    }
}

/// The source of a record's part that a change of responsibility moved to another department.
pub(crate) const MOVED_SOURCE: &str = "moved";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_weigh_as_configured_and_plain_weighs_one() {
        let c = CorrectionsConfig::default();
        assert_eq!(c.weight(CorrectionReason::ResponsibilityChanged), 3.0);
        assert_eq!(c.weight(CorrectionReason::PolicyUpdated), 3.0);
        assert_eq!(c.weight(CorrectionReason::WrongDepartment), 2.0);
        assert_eq!(c.weight(CorrectionReason::Other), 1.5);
        assert!(c.demotes(CorrectionReason::SystemUpgraded));
        assert!(!c.demotes(CorrectionReason::WrongDepartment));
        let plain = CorrectionsConfig::plain();
        assert_eq!(plain.weight(CorrectionReason::ResponsibilityChanged), 1.0);
        assert!(!plain.demotes(CorrectionReason::ResponsibilityChanged));
        c.validate().expect("defaults validate");
        plain.validate().expect("plain validates");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let bad = CorrectionsConfig {
            demote_floor: 0.0,
            ..CorrectionsConfig::default()
        };
        let err = bad.validate().expect_err("zero floor");
        assert!(err.contains("feedback.corrections.demote_floor"), "{err}");
        let bad = CorrectionsConfig {
            change_weight: -1.0,
            ..CorrectionsConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("negative")
                .contains("change_weight")
        );
    }
}
