//! The what-if replay behind `POST /v1/rules/preview`: how the decisions of the last days would have
//! gone under a proposed rule set or threshold, before anything is published.
//!
//! A decided ticket is stored whole in the `decisions` bucket, its similar tickets and the classifier's
//! scores included, so deciding it again is pure. Both sides are replayed with [`decide`], at the
//! time the ticket was decided: "before" with the live rules and configuration, "after" with the
//! proposal. A difference is then the proposal's alone, not a rule edited since the ticket was
//! decided; how many replays differ from what was recorded is reported beside it.

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};
use switchboard_bus::Kv;
use switchboard_proto::{Decision, Outcome, Rule, Ticket};

use crate::config::RouterConfig;
use crate::decide::decide;
use crate::error::RouterError;
use crate::rules::{RuleSet, validate};

const DAY_MS: i64 = 86_400_000;
/// The window's default and longest length, in days.
const DEFAULT_DAYS: u32 = 7;
const MAX_DAYS: u32 = 90;
/// Tickets replayed at most, the most recently decided first: a preview answers while an admin waits.
const MAX_REPLAYED: usize = 5_000;
const DEFAULT_EXAMPLES: usize = 10;
const MAX_EXAMPLES: usize = 100;
/// Characters of a ticket's (already masked) text shown in an example.
const EXCERPT_CHARS: usize = 160;
/// Where a decision sends a ticket it does not route: `from` and `to` name it beside departments.
const REVIEW: &str = "review";

/// What to try. Rules either as `rules`, the whole proposed set replacing the live one, or as changes
/// to the live set: `put` (added, or replacing the rule of the same id) and `delete` (ids removed).
/// Neither: the live rules, to try a threshold alone.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PreviewRequest {
    pub rules: Option<Vec<Rule>>,
    pub put: Vec<Rule>,
    pub delete: Vec<String>,
    /// The confidence threshold to try instead of `router.threshold` (0..=1).
    pub threshold: Option<f32>,
    /// Tickets decided in the last this many days (default 7, at most 90).
    pub days: Option<u32>,
    /// Examples of changed decisions returned, at most (default 10, at most 100).
    pub examples: Option<usize>,
}

/// Where one replay sends the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Verdict {
    /// The department it is routed to, or `review`.
    pub to: String,
    /// The department the evidence favours, also when it goes to review.
    pub department: String,
    pub confidence: f32,
    /// Ids of the rules that fired.
    pub rules: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Example {
    pub ticket_id: String,
    /// The beginning of the ticket's text, personal data masked as intake stored it.
    pub text: String,
    pub before: Verdict,
    pub after: Verdict,
}

/// How many tickets would move from one destination to another.
#[derive(Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewReport {
    pub days: u32,
    /// Tickets decided at or after this time were replayed.
    pub since_ms: i64,
    pub replayed: u64,
    /// Of those, how many the proposal would send elsewhere.
    pub changed: u64,
    /// Tickets in the window beyond [`MAX_REPLAYED`], the longest ago decided, left out: the counts
    /// cover only the most recent. 0 when every ticket in the window was replayed.
    pub left_out: u64,
    /// Stored decisions that could not be decoded, skipped.
    pub unreadable: u64,
    /// Replays under the live rules that differ from the decision recorded (rules or settings
    /// changed since those tickets were decided).
    pub recorded_differs: u64,
    /// Destination changes, the most frequent first.
    pub moves: Vec<Move>,
    pub examples: Vec<Example>,
}

/// The proposal checked, before any ticket is read.
#[derive(Debug)]
pub struct Proposal {
    rules: RuleSet,
    config: RouterConfig,
    days: u32,
    examples: usize,
}

impl Proposal {
    /// Checks `request` against the live rules and configuration, naming the field at fault.
    pub fn new(
        request: PreviewRequest,
        live: &RuleSet,
        config: &RouterConfig,
    ) -> Result<Self, RouterError> {
        let invalid = |field: &str, problem: &str| RouterError::Invalid {
            field: field.to_owned(),
            problem: problem.to_owned(),
        };
        let days = request.days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(invalid("days", "must be 1 to 90"));
        }
        let examples = request.examples.unwrap_or(DEFAULT_EXAMPLES);
        if examples > MAX_EXAMPLES {
            return Err(invalid("examples", "must be at most 100"));
        }
        let mut config = config.clone();
        if let Some(threshold) = request.threshold {
            if !(0.0..=1.0).contains(&threshold) {
                return Err(invalid("threshold", "must be within 0..=1"));
            }
            config.threshold = threshold;
        }
        let rules = match request.rules {
            Some(_) if !request.put.is_empty() || !request.delete.is_empty() => {
                return Err(invalid(
                    "rules",
                    "replaces the whole set; send either it or put and delete",
                ));
            }
            Some(rules) => {
                checked("rules", &rules)?;
                rules
            }
            None => {
                checked("put", &request.put)?;
                let mut rules: BTreeMap<String, Rule> = live
                    .rules
                    .iter()
                    .map(|r| (r.id.clone(), r.clone()))
                    .collect();
                for id in &request.delete {
                    if rules.remove(id).is_none() {
                        return Err(RouterError::UnknownRule(id.clone()));
                    }
                }
                rules.extend(request.put.into_iter().map(|r| (r.id.clone(), r)));
                rules.into_values().collect()
            }
        };
        Ok(Self {
            rules: RuleSet {
                rules,
                version: live.version,
            },
            config,
            days,
            examples,
        })
    }
}

fn checked(field: &str, rules: &[Rule]) -> Result<(), RouterError> {
    for (i, rule) in rules.iter().enumerate() {
        validate(rule).map_err(|e| e.within(&format!("{field}[{i}]")))?;
    }
    Ok(())
}

/// Replays the tickets decided in the proposal's window: `live` and `config` as "before",
/// `proposal` as "after". Reads the decisions bucket, writes nothing.
pub async fn replay(
    decisions: &dyn Kv,
    live: &RuleSet,
    config: &RouterConfig,
    proposal: &Proposal,
    now_ms: i64,
) -> Result<PreviewReport, RouterError> {
    let since_ms = now_ms - i64::from(proposal.days) * DAY_MS;
    let mut unreadable = 0;
    let mut decided: Vec<(i64, Ticket)> = Vec::new();
    for (key, entry) in decisions.entries().await? {
        let ticket = match Ticket::decode(entry.value) {
            Ok(ticket) => ticket,
            Err(e) => {
                tracing::warn!(ticket = %key, error = %e, "a stored decision cannot be decoded; not replayed");
                unreadable += 1;
                continue;
            }
        };
        let Some(at) = ticket.decision.as_ref().map(|d| d.decided_at_ms) else {
            continue;
        };
        if at >= since_ms {
            decided.push((at, ticket));
        }
    }
    decided.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let left_out = decided.len().saturating_sub(MAX_REPLAYED) as u64;
    decided.truncate(MAX_REPLAYED);

    let mut report = PreviewReport {
        days: proposal.days,
        since_ms,
        replayed: decided.len() as u64,
        changed: 0,
        left_out,
        unreadable,
        recorded_differs: 0,
        moves: Vec::new(),
        examples: Vec::new(),
    };
    let mut moves: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (at, ticket) in &decided {
        let recorded = ticket.decision.as_ref().map(verdict);
        let before = verdict(&again(ticket, live, config, *at));
        let after = verdict(&again(ticket, &proposal.rules, &proposal.config, *at));
        if recorded.is_some_and(|r| r.to != before.to) {
            report.recorded_differs += 1;
        }
        if before.to == after.to {
            continue;
        }
        report.changed += 1;
        *moves
            .entry((before.to.clone(), after.to.clone()))
            .or_default() += 1;
        if report.examples.len() < proposal.examples {
            report.examples.push(Example {
                ticket_id: ticket.id.clone(),
                text: excerpt(&ticket.text),
                before,
                after,
            });
        }
    }
    report.moves = moves
        .into_iter()
        .map(|((from, to), count)| Move { from, to, count })
        .collect();
    report.moves.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    Ok(report)
}

/// The ticket decided again as at `at_ms`, with the priority it was given then (priority plays no
/// part in where it goes).
fn again(ticket: &Ticket, rules: &RuleSet, config: &RouterConfig, at_ms: i64) -> Decision {
    let recorded = ticket.decision.as_ref();
    let priority = (
        recorded.map(Decision::priority).unwrap_or_default(),
        recorded
            .map(|d| d.priority_steps.clone())
            .unwrap_or_default(),
    );
    decide(ticket, rules, config, priority, at_ms)
}

fn verdict(decision: &Decision) -> Verdict {
    Verdict {
        to: if decision.outcome() == Outcome::Routed {
            decision.department.clone()
        } else {
            REVIEW.to_owned()
        },
        department: decision.department.clone(),
        confidence: decision.confidence,
        rules: decision.rules.iter().map(|r| r.id.clone()).collect(),
    }
}

/// The beginning of a ticket's text, as examples show it.
pub(crate) fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
