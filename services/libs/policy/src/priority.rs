//! The priority policy, the one place a ticket's priority is set. It starts from normal and applies, in
//! order: the tone (anger, urgency, or a clearly calm one), the customer's tier, the SLA deadline, the
//! time waited and an incident. Each step that changes the level is recorded as a [`PriorityStep`]:
//! what moved it, from and to which level, and the measure against its limit, so the decision board can
//! show why a calm ticket is urgent, and anyone can count or filter by cause without parsing words.
//!
//! The router applies it once, when it decides: by then waiting time is as long as it gets before a
//! person sees the ticket, and the incident signal is known. The result is a function of the ticket and
//! the clock, so a redelivered ticket is prioritised afresh, never raised twice for the same wait.

use switchboard_proto::{Priority, PriorityCause, PriorityStep, Ticket};
use switchboard_text::timestamp;

use crate::{Lang, PolicyConfig};

/// The attribute connectors set to the ticket's SLA deadline, in any form [`timestamp`] reads.
pub const SLA_DEADLINE_ATTRIBUTE: &str = "sla_deadline";

const MINUTE_MS: i64 = 60_000;
/// A signal at half its threshold is "raised": not enough on its own, enough to agree with the other one.
const RAISED: f32 = 0.5;
/// Sentiment from which a calm ticket is clearly positive (one plain positive word gives 0.46).
const POSITIVE_SENTIMENT: f32 = 0.3;

/// The ticket's priority at `now_ms`, and the steps that took it there from normal.
pub fn prioritise(
    ticket: &Ticket,
    config: &PolicyConfig,
    now_ms: i64,
) -> (Priority, Vec<PriorityStep>) {
    let mut p = Steps {
        priority: Priority::Normal,
        steps: Vec::new(),
    };
    let vip = config.is_vip(&ticket.customer_tier);
    if let Some(a) = &ticket.assessment {
        tone(&mut p, a.anger, a.urgency, a.sentiment, vip, config);
    }
    if vip {
        let tier = ticket.customer_tier.trim().to_owned();
        p.raise(Priority::High, PriorityCause::Vip, 0.0, 0.0, tier);
    }
    if let Some(raw) = ticket.attributes.get(SLA_DEADLINE_ATTRIBUTE) {
        match timestamp::parse_ms(raw) {
            Some(deadline) => sla(&mut p, deadline, config.sla_warning_minutes, now_ms),
            None => tracing::warn!(
                ticket = %ticket.id,
                value = %raw,
                "sla_deadline is not a timestamp; ignored"
            ),
        }
    }
    // 0: the connector did not say when the ticket arrived.
    if ticket.received_at_ms > 0 {
        let waited = (now_ms - ticket.received_at_ms).div_euclid(MINUTE_MS);
        let limit = config.wait_raise_minutes;
        if waited >= i64::from(limit) {
            let to = up_one(p.priority);
            p.raise(to, PriorityCause::Wait, waited as f64, limit.into(), "");
        }
    }
    let incident = ticket.matches.as_ref().and_then(|m| m.incident.as_ref());
    if let Some(incident) = incident {
        let min = config.incident_min_customers;
        if min > 0 && incident.customers >= min {
            let to = up_one(p.priority);
            p.raise(
                to,
                PriorityCause::Incident,
                incident.customers.into(),
                min.into(),
                incident.window_minutes.to_string(),
            );
        }
    }
    (p.priority, p.steps)
}

/// URGENT when one signal reaches its threshold and the other is raised; HIGH when either reaches its
/// threshold; LOW when clearly positive with neither signal raised and no VIP; else it stays NORMAL.
fn tone(p: &mut Steps, anger: f32, urgency: f32, sentiment: f32, vip: bool, c: &PolicyConfig) {
    let angry = anger >= c.anger_threshold;
    let pressing = urgency >= c.urgency_threshold;
    let anger_raised = anger >= c.anger_threshold * RAISED;
    let urgency_raised = urgency >= c.urgency_threshold * RAISED;
    let (anger, urgency) = (f64::from(anger), f64::from(urgency));
    let (anger_limit, urgency_limit) =
        (f64::from(c.anger_threshold), f64::from(c.urgency_threshold));
    if angry {
        p.raise(Priority::High, PriorityCause::Anger, anger, anger_limit, "");
    }
    if pressing {
        p.raise(
            Priority::High,
            PriorityCause::Urgency,
            urgency,
            urgency_limit,
            "",
        );
    }
    // The signal that completes the pair, at its raised level.
    if angry && urgency_raised {
        let limit = urgency_limit * f64::from(RAISED);
        p.raise(Priority::Urgent, PriorityCause::Urgency, urgency, limit, "");
    } else if pressing && anger_raised {
        let limit = anger_limit * f64::from(RAISED);
        p.raise(Priority::Urgent, PriorityCause::Anger, anger, limit, "");
    }
    if !anger_raised && !urgency_raised && !vip && sentiment >= POSITIVE_SENTIMENT {
        p.lower(
            Priority::Low,
            PriorityCause::Calm,
            sentiment.into(),
            POSITIVE_SENTIMENT.into(),
        );
    }
}

/// A floor: HIGH when the deadline is within the warning, URGENT once it has passed. Minutes left are
/// rounded up: 30 s left is "1 min", never "0 min" before the deadline.
fn sla(p: &mut Steps, deadline_ms: i64, warning: u32, now_ms: i64) {
    let left = deadline_ms - now_ms;
    let limit = f64::from(warning);
    if left <= 0 {
        let ago = (-left).div_euclid(MINUTE_MS);
        p.raise(
            Priority::Urgent,
            PriorityCause::Sla,
            -(ago as f64),
            limit,
            "",
        );
    } else {
        let minutes = (left + MINUTE_MS - 1).div_euclid(MINUTE_MS);
        if minutes <= i64::from(warning) {
            p.raise(
                Priority::High,
                PriorityCause::Sla,
                minutes as f64,
                limit,
                "",
            );
        }
    }
}

struct Steps {
    priority: Priority,
    steps: Vec<PriorityStep>,
}

impl Steps {
    /// Moves to `to` when that is higher, and records why; a raise that changes nothing is not a step.
    fn raise(
        &mut self,
        to: Priority,
        cause: PriorityCause,
        value: f64,
        limit: f64,
        detail: impl Into<String>,
    ) {
        if rank(to) > rank(self.priority) {
            self.step(to, cause, value, limit, detail.into());
        }
    }

    fn lower(&mut self, to: Priority, cause: PriorityCause, value: f64, limit: f64) {
        if rank(to) < rank(self.priority) {
            self.step(to, cause, value, limit, String::new());
        }
    }

    fn step(&mut self, to: Priority, cause: PriorityCause, value: f64, limit: f64, detail: String) {
        let mut step = PriorityStep {
            value,
            limit,
            detail,
            ..PriorityStep::default()
        };
        step.set_cause(cause);
        step.set_from(self.priority);
        step.set_to(to);
        self.priority = to;
        self.steps.push(step);
    }
}

/// Higher is more pressing. Unspecified counts as normal: a stage that set nothing asked for nothing special.
fn rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal | Priority::Unspecified => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn up_one(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Normal,
        Priority::Normal | Priority::Unspecified => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// A priority as a person reads it: `high`, `高`.
pub fn level(p: Priority, lang: Lang) -> String {
    match lang {
        Lang::En => p
            .as_str_name()
            .trim_start_matches("PRIORITY_")
            .to_lowercase(),
        // The console's words for the levels, so its labels and the explanations agree.
        Lang::Zh => match p {
            Priority::Urgent => "紧急",
            Priority::High => "高",
            Priority::Normal | Priority::Unspecified => "普通",
            Priority::Low => "低",
        }
        .to_owned(),
    }
}

/// One step in words, for the decision's explanation and the CLI: `waited 90 min ≥ 60 (normal → high)`,
/// `已等待 90 分钟 ≥ 60（普通 → 高）`.
pub fn describe(step: &PriorityStep, lang: Lang) -> String {
    let (v, limit, detail) = (step.value, step.limit, &step.detail);
    let why = match (step.cause(), lang) {
        (PriorityCause::Anger, Lang::En) => format!("anger {v:.2} ≥ {limit:.2}"),
        (PriorityCause::Anger, Lang::Zh) => format!("愤怒度 {v:.2} ≥ {limit:.2}"),
        (PriorityCause::Urgency, Lang::En) => format!("urgency {v:.2} ≥ {limit:.2}"),
        (PriorityCause::Urgency, Lang::Zh) => format!("紧急度 {v:.2} ≥ {limit:.2}"),
        (PriorityCause::Vip, Lang::En) => format!("customer tier {detail} is a VIP tier"),
        (PriorityCause::Vip, Lang::Zh) => format!("客户等级 {detail} 属于 VIP 等级"),
        (PriorityCause::Calm, Lang::En) => {
            format!("sentiment {v:.2} ≥ {limit:.2} with no anger or urgency")
        }
        (PriorityCause::Calm, Lang::Zh) => {
            format!("情绪值 {v:.2} ≥ {limit:.2}，且无愤怒或紧急")
        }
        (PriorityCause::Sla, Lang::En) if v < 0.0 => {
            format!("SLA deadline passed {:.0} min ago", -v)
        }
        (PriorityCause::Sla, Lang::Zh) if v < 0.0 => format!("SLA 截止时间已过 {:.0} 分钟", -v),
        (PriorityCause::Sla, Lang::En) => format!("SLA deadline in {v:.0} min ≤ {limit:.0}"),
        (PriorityCause::Sla, Lang::Zh) => {
            format!("距 SLA 截止时间 {v:.0} 分钟 ≤ {limit:.0}")
        }
        (PriorityCause::Wait, Lang::En) => format!("waited {v:.0} min ≥ {limit:.0}"),
        (PriorityCause::Wait, Lang::Zh) => format!("已等待 {v:.0} 分钟 ≥ {limit:.0}"),
        (PriorityCause::Incident, Lang::En) => format!(
            "incident: {v:.0} customers with similar tickets within {detail} min ≥ {limit:.0}"
        ),
        (PriorityCause::Incident, Lang::Zh) => {
            format!("突发事件：{detail} 分钟内 {v:.0} 位客户提交相似工单 ≥ {limit:.0}")
        }
        (PriorityCause::Unspecified, Lang::En) => "unspecified".to_owned(),
        (PriorityCause::Unspecified, Lang::Zh) => "未说明".to_owned(),
    };
    let (from, to) = (level(step.from(), lang), level(step.to(), lang));
    match lang {
        Lang::En => format!("{why} ({from} → {to})"),
        Lang::Zh => format!("{why}（{from} → {to}）"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use switchboard_proto::{Assessment, IncidentSignal, Matches};

    use super::*;

    /// 2026-11-21T12:00:00Z.
    const NOW: i64 = 1_795_262_400_000;

    fn toned(sentiment: f32, anger: f32, urgency: f32) -> Ticket {
        Ticket {
            assessment: Some(Assessment {
                sentiment,
                anger,
                urgency,
                ..Assessment::default()
            }),
            ..Ticket::default()
        }
    }

    fn timed(received_at_ms: i64, deadline: Option<&str>) -> Ticket {
        Ticket {
            id: "t-1".into(),
            received_at_ms,
            attributes: deadline
                .map(|d| HashMap::from([(SLA_DEADLINE_ATTRIBUTE.to_owned(), d.to_owned())]))
                .unwrap_or_default(),
            ..Ticket::default()
        }
    }

    fn run(t: &Ticket) -> (Priority, Vec<String>) {
        let (p, steps) = prioritise(t, &PolicyConfig::default(), NOW);
        (p, steps.iter().map(|s| describe(s, Lang::En)).collect())
    }

    #[test]
    fn tone_sets_the_level_with_each_step() {
        assert_eq!(
            run(&toned(-0.8, 0.82, 0.3)),
            (
                Priority::Urgent,
                vec![
                    "anger 0.82 ≥ 0.60 (normal → high)".to_owned(),
                    "urgency 0.30 ≥ 0.25 (high → urgent)".to_owned()
                ]
            )
        );
        assert_eq!(run(&toned(0.0, 0.82, 0.0)).0, Priority::High);
        assert_eq!(run(&toned(0.0, 0.0, 0.59)).0, Priority::High);
        assert_eq!(run(&toned(0.0, 0.35, 0.59)).0, Priority::Urgent);
        assert_eq!(
            run(&toned(0.46, 0.0, 0.0)),
            (
                Priority::Low,
                vec!["sentiment 0.46 ≥ 0.30 with no anger or urgency (normal → low)".to_owned()]
            )
        );
        assert_eq!(run(&toned(-0.46, 0.18, 0.0)), (Priority::Normal, vec![]));
    }

    #[test]
    fn a_vip_customer_is_at_least_high_even_when_calm() {
        let t = Ticket {
            customer_tier: "VIP".to_owned(),
            ..toned(0.46, 0.0, 0.0)
        };
        let (p, steps) = prioritise(&t, &PolicyConfig::default(), NOW);
        assert_eq!(p, Priority::High);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].cause(), PriorityCause::Vip);
        assert_eq!(steps[0].detail, "VIP");
    }

    #[test]
    fn waiting_raises_one_level_and_says_how_long() {
        let (p, steps) = prioritise(
            &timed(NOW - 75 * MINUTE_MS, None),
            &PolicyConfig::default(),
            NOW,
        );
        assert_eq!(p, Priority::High);
        assert_eq!(
            (steps[0].cause(), steps[0].from(), steps[0].to()),
            (PriorityCause::Wait, Priority::Normal, Priority::High)
        );
        assert_eq!((steps[0].value, steps[0].limit), (75.0, 60.0));
        assert_eq!(
            run(&timed(NOW - 59 * MINUTE_MS, None)),
            (Priority::Normal, vec![])
        );
        // Unknown receipt time: no raise.
        assert_eq!(run(&timed(0, None)).0, Priority::Normal);
    }

    #[test]
    fn applied_again_later_it_raises_once_for_the_longer_wait() {
        let t = timed(NOW - 75 * MINUTE_MS, None);
        let config = PolicyConfig::default();
        let later = prioritise(&t, &config, NOW + 30 * MINUTE_MS);
        assert_eq!(later.0, Priority::High);
        assert_eq!(later.1.len(), 1);
        assert_eq!(later.1[0].value, 105.0);
    }

    #[test]
    fn a_near_or_passed_sla_deadline_sets_a_floor() {
        assert_eq!(
            run(&timed(NOW, Some("2026-11-21T12:30:00Z"))),
            (
                Priority::High,
                vec!["SLA deadline in 30 min ≤ 120 (normal → high)".to_owned()]
            )
        );
        let passed = (NOW - 10 * MINUTE_MS).to_string();
        assert_eq!(
            run(&timed(NOW, Some(&passed))),
            (
                Priority::Urgent,
                vec!["SLA deadline passed 10 min ago (normal → urgent)".to_owned()]
            )
        );
        assert_eq!(
            run(&timed(NOW, Some("2026-11-22T12:00:00Z"))).0,
            Priority::Normal
        );
        assert_eq!(run(&timed(NOW, Some("soon"))).0, Priority::Normal);
    }

    #[test]
    fn sla_waiting_and_an_incident_add_up_and_urgent_stays_urgent() {
        let mut t = timed(NOW - 90 * MINUTE_MS, Some("2026-11-21T12:20:00Z"));
        assert_eq!(
            run(&t).1,
            [
                "SLA deadline in 20 min ≤ 120 (normal → high)",
                "waited 90 min ≥ 60 (high → urgent)"
            ]
        );
        t.attributes.clear();
        t.matches = Some(Matches {
            incident: Some(IncidentSignal {
                customers: 5,
                window_minutes: 30,
            }),
            ..Matches::default()
        });
        assert_eq!(
            run(&t).1,
            [
                "waited 90 min ≥ 60 (normal → high)",
                "incident: 5 customers with similar tickets within 30 min ≥ 5 (high → urgent)"
            ]
        );
        let urgent = Ticket {
            received_at_ms: NOW - 90 * MINUTE_MS,
            ..toned(-0.8, 0.9, 0.9)
        };
        assert_eq!(
            run(&urgent).1.len(),
            2,
            "tone only: waiting cannot raise urgent"
        );
    }

    #[test]
    fn too_few_customers_are_no_incident() {
        let t = Ticket {
            matches: Some(Matches {
                incident: Some(IncidentSignal {
                    customers: 4,
                    window_minutes: 30,
                }),
                ..Matches::default()
            }),
            ..Ticket::default()
        };
        assert_eq!(run(&t), (Priority::Normal, vec![]));
    }

    #[test]
    fn each_step_reads_in_chinese_with_the_same_numbers() {
        let mut t = timed(NOW - 90 * MINUTE_MS, Some("2026-11-21T12:20:00Z"));
        t.customer_tier = "VIP".to_owned();
        t.matches = Some(Matches {
            incident: Some(IncidentSignal {
                customers: 5,
                window_minutes: 30,
            }),
            ..Matches::default()
        });
        let (p, steps) = prioritise(&t, &PolicyConfig::default(), NOW);
        let zh: Vec<String> = steps.iter().map(|s| describe(s, Lang::Zh)).collect();
        assert_eq!(
            zh,
            [
                "客户等级 VIP 属于 VIP 等级（普通 → 高）",
                "已等待 90 分钟 ≥ 60（高 → 紧急）",
            ]
        );
        assert_eq!(level(p, Lang::Zh), "紧急");
        let (_, steps) = prioritise(&toned(0.46, 0.82, 0.3), &PolicyConfig::default(), NOW);
        let zh: Vec<String> = steps.iter().map(|s| describe(s, Lang::Zh)).collect();
        assert_eq!(
            zh,
            [
                "愤怒度 0.82 ≥ 0.60（普通 → 高）",
                "紧急度 0.30 ≥ 0.25（高 → 紧急）"
            ]
        );
        let passed = (NOW - 10 * MINUTE_MS).to_string();
        let (_, steps) = prioritise(&timed(NOW, Some(&passed)), &PolicyConfig::default(), NOW);
        assert_eq!(
            describe(&steps[0], Lang::Zh),
            "SLA 截止时间已过 10 分钟（普通 → 紧急）"
        );
    }
}
