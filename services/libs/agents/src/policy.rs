//! The assignment policy, pure: given a ticket's needs and every agent with their load, who gets it and
//! why, or why no one can. The service calls it with the live agents and loads, `switchboard
//! bench-assign` with simulated ones; neither has a copy.
//!
//! An agent fits when they are in the department, senior (L3) if the ticket is escalated, speak its
//! language, work its channel, are online and on shift, and hold fewer tickets than their capacity.
//! Of those who fit, the ones with a skill for the ticket's problem type come first when there are any.
//! The agent who resolved this customer's last ticket gets it when they fit and are among those first;
//! otherwise the least loaded does (open tickets weighted by priority, as a share of capacity), then the
//! higher skill level, then the lower id, so the choice is the same on every replica.
//!
//! Once an agent holds tickets, [`work_order`] says which to start next: what can still be started
//! within its priority's response target, the soonest due first.

use std::cmp::Ordering;

use switchboard_proto::Priority;

use crate::agent::{Agent, Status, Tier};
use crate::load::{Held, Load};

/// What a ticket asks of its agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need<'a> {
    pub department: &'a str,
    /// Empty when unknown.
    pub problem_type: &'a str,
    /// Empty when unknown: any agent's languages do.
    pub language: &'a str,
    pub channel: &'a str,
    pub priority: Priority,
    /// Angry, complex or unresolved too often: seniors only.
    pub escalated: bool,
    /// Who resolved this customer's last ticket.
    pub last_resolver: Option<&'a str>,
    /// An agent not to give it to (the one it is taken from).
    pub not: Option<&'a str>,
}

/// One agent as the policy sees them: the record and what they hold now.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub agent: &'a Agent,
    pub load: &'a Load,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Chosen(Choice),
    /// No one fits; the words say who was ruled out and why, for the department's queue.
    Waiting(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub agent: String,
    /// Whether the agent has a skill for the ticket's problem type.
    pub skilled: bool,
    /// Whether they were chosen for resolving the customer's last ticket.
    pub returning: bool,
    /// Why them, in words a supervisor can check.
    pub reason: String,
}

/// Why an agent does not fit, in the order they are checked; the waiting reason counts each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unfit {
    NotSenior,
    Language,
    Channel,
    NotOnline,
    OffShift,
    Excluded,
    Full,
}

impl Unfit {
    fn words(self) -> &'static str {
        match self {
            Self::NotSenior => "not senior (L3) for an escalated ticket",
            Self::Language => "without the ticket's language",
            Self::Channel => "not on its channel",
            Self::Excluded => "the one it is taken from",
            Self::NotOnline => "not online",
            Self::OffShift => "off shift",
            Self::Full => "at capacity",
        }
    }
}

fn unfit(need: &Need<'_>, c: &Candidate<'_>, at_ms: i64) -> Option<Unfit> {
    let a = c.agent;
    if need.escalated && a.tier != Tier::L3 {
        Some(Unfit::NotSenior)
    } else if !a.speaks(need.language) {
        Some(Unfit::Language)
    } else if !a.works_channel(need.channel) {
        Some(Unfit::Channel)
    } else if a.status != Status::Online {
        Some(Unfit::NotOnline)
    } else if !a.shift.on_shift(at_ms) {
        Some(Unfit::OffShift)
    } else if need.not == Some(a.id.as_str()) {
        Some(Unfit::Excluded)
    } else if c.load.open() >= a.capacity {
        Some(Unfit::Full)
    } else {
        None
    }
}

/// Whether the agent could take the ticket now by every rule but skill: what "a skilled agent was
/// free" means when assignments are measured.
pub fn fits(need: &Need<'_>, c: &Candidate<'_>, at_ms: i64) -> bool {
    c.agent.in_department(need.department) && unfit(need, c, at_ms).is_none()
}

/// The agent for a ticket with `need`, among `candidates`, at `at_ms`.
pub fn choose(need: &Need<'_>, candidates: &[Candidate<'_>], at_ms: i64) -> Outcome {
    let in_department: Vec<&Candidate<'_>> = candidates
        .iter()
        .filter(|c| c.agent.in_department(need.department))
        .collect();
    let mut ruled_out: Vec<Unfit> = Vec::new();
    let mut fit: Vec<&Candidate<'_>> = Vec::new();
    for c in &in_department {
        match unfit(need, c, at_ms) {
            Some(why) => ruled_out.push(why),
            None => fit.push(c),
        }
    }
    if fit.is_empty() {
        return Outcome::Waiting(waiting(need, in_department.len(), ruled_out));
    }
    let skilled = |c: &Candidate<'_>| {
        !need.problem_type.is_empty() && c.agent.skill(need.problem_type).is_some()
    };
    if fit.iter().any(|c| skilled(c)) {
        fit.retain(|c| skilled(c));
    }
    let level = |c: &Candidate<'_>| {
        c.agent
            .skill(need.problem_type)
            .or_else(|| c.agent.skill(need.department))
            .unwrap_or(0)
    };
    let returning = need
        .last_resolver
        .and_then(|id| fit.iter().find(|c| c.agent.id == id));
    let chosen = returning.copied().unwrap_or_else(|| {
        fit.iter()
            .min_by(|x, y| {
                share(x)
                    .partial_cmp(&share(y))
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| level(y).cmp(&level(x)))
                    .then_with(|| x.agent.id.cmp(&y.agent.id))
            })
            .copied()
            .expect("fit is not empty")
    });
    Outcome::Chosen(Choice {
        agent: chosen.agent.id.clone(),
        skilled: skilled(chosen),
        returning: returning.is_some(),
        reason: reason(need, chosen, returning.is_some(), fit.len()),
    })
}

/// The tickets `load` holds in the order its agent should work them at `now_ms`: the one in
/// progress, then those that can still be started by their target, the soonest due first, then those
/// already late, the longest late first.
///
/// Why the late ones go last: when the desk is overloaded (a morning peak), working an already late
/// ticket first makes the next one late too, while starting the one still in time saves it; the late
/// ones wait a little longer instead. `switchboard bench-assign` measures what this does to breaches
/// and to the longest waits.
pub fn work_order(load: &Load, now_ms: i64) -> Vec<&str> {
    let mut held: Vec<(&String, &Held)> = load.tickets.iter().collect();
    held.sort_by_key(|(id, h)| {
        let due = h.start_by();
        (!h.started, due < now_ms, due, h.since_ms, *id)
    });
    held.into_iter().map(|(id, _)| id.as_str()).collect()
}

/// Load as a share of capacity: four weighted tickets of eight is as busy as two of four.
fn share(c: &Candidate<'_>) -> f32 {
    c.load.weighted() / c.agent.capacity as f32
}

fn reason(need: &Need<'_>, c: &Candidate<'_>, returning: bool, fitting: usize) -> String {
    let a = c.agent;
    let mut parts = Vec::new();
    match (a.skill(need.problem_type), a.skill(need.department)) {
        (Some(level), _) if !need.problem_type.is_empty() => {
            parts.push(format!("skill {} {level}/5", need.problem_type));
        }
        (_, Some(level)) => parts.push(format!("skill {} {level}/5", need.department)),
        _ => parts.push(format!("in {}, no skill recorded for it", need.department)),
    }
    parts.push(format!("{} of {} open", c.load.open(), a.capacity));
    if returning {
        parts.push("resolved this customer's last ticket".into());
    } else if fitting > 1 {
        parts.push(format!("least loaded of {fitting} who fit"));
    } else {
        parts.push("the only one who fits".into());
    }
    if need.escalated {
        parts.push("senior (L3) for an escalated ticket".into());
    }
    parts.join(", ")
}

fn waiting(need: &Need<'_>, in_department: usize, mut ruled_out: Vec<Unfit>) -> String {
    if in_department == 0 {
        return format!("no agent works in {}", need.department);
    }
    ruled_out.sort();
    let mut counts: Vec<String> = Vec::new();
    for why in ruled_out.iter().copied() {
        if counts.last().is_some_and(|l| l.ends_with(why.words())) {
            continue;
        }
        let n = ruled_out.iter().filter(|w| **w == why).count();
        counts.push(format!("{n} {}", why.words()));
    }
    format!(
        "no one in {} fits: of {in_department}, {}",
        need.department,
        counts.join(", ")
    )
}

#[cfg(test)]
mod tests;
