//! The decision itself, a pure function of the ticket, the rules and the configuration, so it can be
//! tested and replayed.
//!
//! The knowledge base's evidence (the similar tickets' votes blended with its classifier's
//! probabilities: see [`switchboard_knowledge::evidence`]) gives each department a probability. A fired
//! rule then adds its weight to its department's, and the confidence is the department's part of the
//! total, so a rule of weight 3 outweighs any evidence. Nothing similar in the knowledge base means
//! review whatever the classifier says: it has no evidence to stand on. So does a ticket unlike the
//! chosen department's known tickets (its typicality, from the classifier, below `min_typicality`, or
//! low enough that `confidence × typicality^w` with `w = typicality_weight` falls below the threshold),
//! unless a rule named the department.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use switchboard_knowledge::evidence;
use switchboard_proto::{
    Assessment, Decision, DepartmentEvidence, DepartmentScore, FiredRule, Matches, Outcome,
    PriorityStep, Rule, SimilarTicket, Ticket,
};

use crate::config::{Gate, RouterConfig};
use crate::rules::RuleSet;

/// Names the method behind a decision, recorded on every decision with the classifier's version.
pub const MODEL_VERSION: &str = "knn-model-blend-2";

const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Default)]
struct Tally {
    /// Similar tickets in the window, and the resolution times among them.
    count: u32,
    resolution_minutes: Vec<i64>,
    /// The knowledge base's blended probability.
    evidence: f32,
    rule_weight: f32,
}

/// Whether a decision with this department, confidence and typicality is routed automatically: the
/// one test [`decide`] applies, so anyone replaying decisions at another gate gets the same outcomes.
pub fn routes(department: &str, confidence: f32, typicality: Option<f32>, gate: Gate) -> bool {
    !department.is_empty()
        && confidence >= gate.threshold
        && typicality.is_none_or(|t| {
            t >= gate.min_typicality && discounted(confidence, t, gate) >= gate.threshold
        })
}

/// The confidence discounted by the ticket's typicality for the department (see
/// `RouterConfig::typicality_weight`); a weight of 0 leaves it whole.
fn discounted(confidence: f32, typicality: f32, gate: Gate) -> f32 {
    if gate.typicality_weight == 0.0 {
        confidence
    } else {
        confidence * typicality.powf(gate.typicality_weight)
    }
}

/// Decides `ticket`; its priority is `priority`, the policy's level with the steps that led there.
pub fn decide(
    ticket: &Ticket,
    rules: &RuleSet,
    config: &RouterConfig,
    priority: (switchboard_proto::Priority, Vec<PriorityStep>),
    now_ms: i64,
) -> Decision {
    let no_matches = Matches::default();
    let matches = ticket.matches.as_ref().unwrap_or(&no_matches);
    let similar = matches.similar.as_slice();
    let use_model = !similar.is_empty() && !matches.model_scores.is_empty();
    let window = Window::new(similar, config.window_days, now_ms);
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (department, p) in evidence::blend(matches, &config.weighing(), now_ms) {
        tallies.entry(department).or_default().evidence = p;
    }
    for s in similar.iter().filter(|s| window.contains(s)) {
        let t = tallies.entry(s.department.as_str()).or_default();
        t.count += 1;
        t.resolution_minutes.extend(s.resolution_minutes);
    }
    let fired = fired_rules(ticket, &rules.rules);
    for f in &fired {
        tallies
            .entry(f.1.department.as_str())
            .or_default()
            .rule_weight += f.1.weight;
    }

    let in_window: u32 = tallies.values().map(|t| t.count).sum();
    let mut evidence: Vec<DepartmentEvidence> = tallies
        .iter()
        .map(|(dept, t)| DepartmentEvidence {
            department: (*dept).to_owned(),
            count: t.count,
            share: t.count as f32 / in_window.max(1) as f32,
            score: t.evidence + t.rule_weight,
            median_resolution_hours: median(&t.resolution_minutes).map(|m| m / 60.0),
        })
        .collect();
    let total: f32 = evidence.iter().map(|e| e.score).sum();
    for e in &mut evidence {
        e.score = if total > 0.0 { e.score / total } else { 0.0 };
    }
    evidence.retain(|e| e.score > 0.0 || e.count > 0);
    evidence.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.department.cmp(&b.department))
    });

    let model_version = matches.model_version.as_str();
    let (level, priority_steps) = priority;
    let mut decision = Decision {
        priority: level as i32,
        priority_steps,
        rules: fired
            .iter()
            .map(|(matched, r)| FiredRule {
                id: r.id.clone(),
                department: r.department.clone(),
                matched: (*matched).to_owned(),
            })
            .collect(),
        model_version: if model_version.is_empty() {
            MODEL_VERSION.to_owned()
        } else {
            format!("{MODEL_VERSION}+{model_version}")
        },
        rules_version: rules.version,
        decided_at_ms: now_ms,
        ..Decision::default()
    };
    if let Some(top) = evidence.first().filter(|e| e.score > 0.0) {
        decision.department = top.department.clone();
        decision.confidence = top.score;
    }
    if let Some(second) = evidence.get(1).filter(|e| e.score > 0.0) {
        decision.runner_up = second.department.clone();
        decision.runner_up_confidence = second.score;
    }
    let model = if use_model {
        matches.model_scores.as_slice()
    } else {
        &[]
    };
    let ruled = decision
        .rules
        .iter()
        .any(|r| r.department == decision.department);
    decision.typicality = model
        .iter()
        .find(|m| !ruled && m.department == decision.department)
        .and_then(|m| m.typicality);
    let gate = config.gate();
    let review_reason = if decision.department.is_empty() {
        Some("nothing similar in the knowledge base and no rule fired".to_owned())
    } else if decision.confidence < gate.threshold {
        Some(format!(
            "confidence {:.2} is below the threshold {:.2}",
            decision.confidence, gate.threshold
        ))
    } else if let Some(t) = decision.typicality.filter(|&t| t < gate.min_typicality) {
        Some(format!(
            "the ticket is unlike {}'s known tickets: only {:.1}% of the knowledge base lies as far \
             from its own department's centre, below the floor of {:.1}%",
            decision.department,
            t * 100.0,
            gate.min_typicality * 100.0
        ))
    } else if let Some(t) = decision
        .typicality
        .filter(|&t| !routes(&decision.department, decision.confidence, Some(t), gate))
    {
        Some(format!(
            "the ticket is rather unlike {}'s known tickets: at a typicality of {:.1}% (weight {:.2}) \
             its confidence {:.2} counts as {:.2}, below the threshold {:.2}",
            decision.department,
            t * 100.0,
            gate.typicality_weight,
            decision.confidence,
            discounted(decision.confidence, t, gate),
            gate.threshold
        ))
    } else {
        None
    };
    decision.set_outcome(if review_reason.is_some() {
        Outcome::Review
    } else {
        Outcome::Routed
    });
    decision.review_reason = review_reason.unwrap_or_default();
    decision.evidence = evidence;
    decision.explanation = explain(
        &decision,
        in_window,
        &window,
        model,
        ticket.assessment.as_ref(),
    );
    decision
}

/// Which similar tickets the explanation's counts cover: those created in the last `days`, when any
/// similar ticket has a creation time. A ticket without one cannot be dated out, so it counts.
struct Window {
    days: u32,
    since_ms: Option<i64>,
}

impl Window {
    fn new(similar: &[SimilarTicket], days: u32, now_ms: i64) -> Self {
        let dated = days > 0 && similar.iter().any(|s| s.created_at_ms > 0);
        Self {
            days,
            since_ms: dated.then(|| now_ms - (f64::from(days) * DAY_MS) as i64),
        }
    }

    fn contains(&self, s: &SimilarTicket) -> bool {
        self.since_ms
            .is_none_or(|since| s.created_at_ms <= 0 || s.created_at_ms >= since)
    }
}

/// Rules whose keywords appear in the text or the parsed keywords, with the keyword that matched.
fn fired_rules<'r>(ticket: &Ticket, rules: &'r [Rule]) -> Vec<(&'r str, &'r Rule)> {
    let text = ticket.text.to_lowercase();
    let keywords: Vec<String> = ticket
        .parsed
        .as_ref()
        .map(|p| p.keywords.iter().map(|k| k.to_lowercase()).collect())
        .unwrap_or_default();
    rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| {
            r.keywords
                .iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .find(|k| {
                    let k = k.to_lowercase();
                    text.contains(&k) || keywords.contains(&k)
                })
                .map(|k| (k, r))
        })
        .collect()
}

fn median(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) as f64 / 2.0
    } else {
        v[mid] as f64
    })
}

/// One paragraph a person can check against the evidence fields.
fn explain(
    d: &Decision,
    similar: u32,
    window: &Window,
    model: &[DepartmentScore],
    assessment: Option<&Assessment>,
) -> String {
    let mut out = String::new();
    if d.outcome() == Outcome::Review {
        let _ = write!(out, "Sent to human review: {}. ", d.review_reason);
    } else {
        let _ = write!(
            out,
            "Routed to {} with confidence {:.0}%. ",
            d.department,
            d.confidence * 100.0
        );
    }
    // The sentiment stage's verdicts travel with the decision, so whoever reads it sees why a person
    // must take the ticket, and why it is more pressing than its text alone suggests.
    if let Some(a) = assessment.filter(|a| a.escalate) {
        let _ = write!(
            out,
            "Escalated to a person: {}. ",
            a.escalation_reasons.join("; ")
        );
    }
    if !d.priority_steps.is_empty() {
        let steps: Vec<String> = d
            .priority_steps
            .iter()
            .map(switchboard_policy::describe)
            .collect();
        let _ = write!(
            out,
            "Priority {}: {}. ",
            switchboard_policy::level(d.priority()),
            steps.join("; ")
        );
    }
    let within = if window.since_ms.is_some() {
        format!("Within the last {} days, ", window.days)
    } else {
        String::new()
    };
    for (i, e) in d
        .evidence
        .iter()
        .filter(|e| e.count > 0)
        .take(3)
        .enumerate()
    {
        let _ = write!(
            out,
            "{}{:.0}% of the {similar} similar tickets ({}) went to {}",
            if i == 0 { within.as_str() } else { "" },
            e.share * 100.0,
            e.count,
            e.department
        );
        if let Some(h) = e.median_resolution_hours {
            let _ = write!(out, "; median resolution {h:.1} h");
        }
        out.push_str(". ");
    }
    if !model.is_empty() {
        let top: Vec<String> = model
            .iter()
            .take(2)
            .map(|m| match m.typicality {
                Some(t) => format!(
                    "{} {:.0}% (typicality {:.1}%)",
                    m.department,
                    m.probability * 100.0,
                    t * 100.0
                ),
                None => format!("{} {:.0}%", m.department, m.probability * 100.0),
            })
            .collect();
        let _ = write!(out, "The classifier gives {}. ", top.join(", "));
    }
    for r in &d.rules {
        let _ = write!(
            out,
            "Rule {} fired on \"{}\" for {}. ",
            r.id, r.matched, r.department
        );
    }
    if !d.runner_up.is_empty() {
        let _ = write!(
            out,
            "Runner-up: {} ({:.0}%).",
            d.runner_up,
            d.runner_up_confidence * 100.0
        );
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests;
