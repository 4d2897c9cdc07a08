//! From signals and what the earlier stages found to a priority and an escalation, each with its reasons:
//! the decision board shows them, so every rule that fires says so in one line.

use switchboard_proto::{Assessment, Priority, Ticket};

use crate::{SentimentConfig, Signals};

/// A signal at half its threshold is "raised": not enough on its own, enough to agree with the other one.
const RAISED: f32 = 0.5;
/// Sentiment from which a calm ticket is clearly positive (one plain positive word gives 0.46).
const POSITIVE_SENTIMENT: f32 = 0.3;

pub(crate) fn assess(signals: Signals, ticket: &Ticket, config: &SentimentConfig) -> Assessment {
    let vip = config.is_vip(&ticket.customer_tier);
    let (priority, priority_reasons) = priority(signals, vip, &ticket.customer_tier, config);
    let escalation_reasons = escalation(signals, vip, ticket, config);
    let mut assessment = Assessment {
        sentiment: signals.sentiment,
        anger: signals.anger,
        urgency: signals.urgency,
        escalate: !escalation_reasons.is_empty(),
        escalation_reasons,
        priority_reasons,
        ..Assessment::default()
    };
    assessment.set_priority(priority);
    assessment
}

/// URGENT when one signal reaches its threshold and the other is raised; HIGH when either reaches its
/// threshold or the customer is VIP; LOW when clearly positive with neither signal raised; else NORMAL.
fn priority(s: Signals, vip: bool, tier: &str, c: &SentimentConfig) -> (Priority, Vec<String>) {
    let angry = s.anger >= c.anger_threshold;
    let pressing = s.urgency >= c.urgency_threshold;
    let anger_raised = s.anger >= c.anger_threshold * RAISED;
    let urgency_raised = s.urgency >= c.urgency_threshold * RAISED;
    let urgent = (angry && urgency_raised) || (pressing && anger_raised);

    let mut reasons = Vec::new();
    if angry {
        reasons.push(at_least("anger", s.anger, c.anger_threshold));
    } else if urgent {
        reasons.push(format!(
            "{} (raised)",
            at_least("anger", s.anger, c.anger_threshold * RAISED)
        ));
    }
    if pressing {
        reasons.push(at_least("urgency", s.urgency, c.urgency_threshold));
    } else if urgent {
        reasons.push(format!(
            "{} (raised)",
            at_least("urgency", s.urgency, c.urgency_threshold * RAISED)
        ));
    }
    if vip {
        reasons.push(vip_reason(tier));
    }

    let priority = if urgent {
        Priority::Urgent
    } else if angry || pressing || vip {
        Priority::High
    } else if s.sentiment >= POSITIVE_SENTIMENT && !anger_raised && !urgency_raised {
        reasons.push(format!(
            "sentiment {:.2} ≥ {POSITIVE_SENTIMENT:.2} with no urgency",
            s.sentiment
        ));
        Priority::Low
    } else {
        reasons.push(format!(
            "anger {:.2} < {:.2} and urgency {:.2} < {:.2}",
            s.anger, c.anger_threshold, s.urgency, c.urgency_threshold
        ));
        Priority::Normal
    };
    (priority, reasons)
}

fn escalation(s: Signals, vip: bool, ticket: &Ticket, c: &SentimentConfig) -> Vec<String> {
    let mut reasons = Vec::new();
    if s.anger >= c.anger_threshold {
        reasons.push(at_least("anger", s.anger, c.anger_threshold));
    }
    // 0 means the parser could not tell; validation keeps the threshold at 1 or more.
    let complexity = ticket.parsed.as_ref().map_or(0, |p| p.complexity);
    if complexity >= c.complexity_threshold {
        reasons.push(format!(
            "complexity {complexity} ≥ {}",
            c.complexity_threshold
        ));
    }
    if ticket.unresolved_rounds >= c.unresolved_rounds_threshold {
        reasons.push(format!(
            "unresolved rounds {} ≥ {}",
            ticket.unresolved_rounds, c.unresolved_rounds_threshold
        ));
    }
    if vip {
        reasons.push(vip_reason(&ticket.customer_tier));
    }
    reasons
}

fn at_least(signal: &str, value: f32, threshold: f32) -> String {
    format!("{signal} {value:.2} ≥ {threshold:.2}")
}

fn vip_reason(tier: &str) -> String {
    format!("customer tier {} is a VIP tier", tier.trim())
}

#[cfg(test)]
mod tests {
    use switchboard_proto::Parsed;

    use super::*;

    fn signals(sentiment: f32, anger: f32, urgency: f32) -> Signals {
        Signals {
            sentiment,
            anger,
            urgency,
        }
    }

    fn run(s: Signals, ticket: &Ticket) -> Assessment {
        assess(s, ticket, &SentimentConfig::default())
    }

    #[test]
    fn priority_tiers() {
        let t = Ticket::default();
        let urgent = run(signals(-0.8, 0.82, 0.3), &t);
        assert_eq!(urgent.priority(), Priority::Urgent);
        assert_eq!(
            urgent.priority_reasons,
            ["anger 0.82 ≥ 0.60", "urgency 0.30 ≥ 0.25 (raised)"]
        );
        assert_eq!(run(signals(0.0, 0.82, 0.0), &t).priority(), Priority::High);
        assert_eq!(run(signals(0.0, 0.0, 0.59), &t).priority(), Priority::High);
        assert_eq!(
            run(signals(0.0, 0.35, 0.59), &t).priority(),
            Priority::Urgent
        );
        let low = run(signals(0.46, 0.0, 0.0), &t);
        assert_eq!(low.priority(), Priority::Low);
        assert_eq!(
            low.priority_reasons,
            ["sentiment 0.46 ≥ 0.30 with no urgency"]
        );
        let normal = run(signals(-0.46, 0.18, 0.0), &t);
        assert_eq!(normal.priority(), Priority::Normal);
        assert_eq!(normal.priority_reasons.len(), 1);
    }

    #[test]
    fn vip_customers_get_high_priority_and_a_person() {
        let t = Ticket {
            customer_tier: "VIP".to_owned(),
            ..Ticket::default()
        };
        let a = run(signals(0.46, 0.0, 0.0), &t);
        assert_eq!(a.priority(), Priority::High);
        assert!(a.escalate);
        assert_eq!(a.escalation_reasons, ["customer tier VIP is a VIP tier"]);
    }

    #[test]
    fn escalation_rules_each_give_a_reason() {
        let t = Ticket {
            unresolved_rounds: 2,
            parsed: Some(Parsed {
                complexity: 4,
                ..Parsed::default()
            }),
            ..Ticket::default()
        };
        let a = run(signals(-0.9, 0.7, 0.0), &t);
        assert!(a.escalate);
        assert_eq!(
            a.escalation_reasons,
            [
                "anger 0.70 ≥ 0.60",
                "complexity 4 ≥ 3",
                "unresolved rounds 2 ≥ 2"
            ]
        );

        let calm = run(
            signals(0.0, 0.1, 0.0),
            &Ticket {
                unresolved_rounds: 1,
                ..Ticket::default()
            },
        );
        assert!(!calm.escalate);
        assert!(calm.escalation_reasons.is_empty());
    }
}
