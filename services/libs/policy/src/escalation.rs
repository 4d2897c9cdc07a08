//! When a ticket goes to a person at once instead of waiting its turn: an angry customer handled by the
//! wrong queue turns into a public complaint, several tangled problems rarely fit one department's
//! script, and a customer who keeps coming back needs a person, not another routing attempt.

use switchboard_proto::Ticket;

use crate::{Lang, PolicyConfig};

/// One escalation rule that fired, with the measure that fired it, so it can be worded in any
/// language ([`Escalation::describe`]) without deciding twice.
#[derive(Debug, Clone, PartialEq)]
pub enum Escalation {
    Anger { anger: f32, limit: f32 },
    Complexity { complexity: u32, limit: u32 },
    UnresolvedRounds { rounds: u32, limit: u32 },
    Vip { tier: String },
}

/// Why `ticket`, whose tone scored `anger`, must go to a person: one per rule that fired, none when it
/// may wait its turn.
pub fn escalations(anger: f32, ticket: &Ticket, config: &PolicyConfig) -> Vec<Escalation> {
    let mut found = Vec::new();
    if anger >= config.anger_threshold {
        found.push(Escalation::Anger {
            anger,
            limit: config.anger_threshold,
        });
    }
    // 0 means the parser could not tell; validation keeps the threshold at 1 or more.
    let complexity = ticket.parsed.as_ref().map_or(0, |p| p.complexity);
    if complexity >= config.complexity_threshold {
        found.push(Escalation::Complexity {
            complexity,
            limit: config.complexity_threshold,
        });
    }
    if ticket.unresolved_rounds >= config.unresolved_rounds_threshold {
        found.push(Escalation::UnresolvedRounds {
            rounds: ticket.unresolved_rounds,
            limit: config.unresolved_rounds_threshold,
        });
    }
    if config.is_vip(&ticket.customer_tier) {
        found.push(Escalation::Vip {
            tier: ticket.customer_tier.trim().to_owned(),
        });
    }
    found
}

impl Escalation {
    /// The reason in words: `anger 0.70 ≥ 0.60`, `愤怒度 0.70 ≥ 0.60`.
    pub fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (Escalation::Anger { anger, limit }, Lang::En) => {
                format!("anger {anger:.2} ≥ {limit:.2}")
            }
            (Escalation::Anger { anger, limit }, Lang::Zh) => {
                format!("愤怒度 {anger:.2} ≥ {limit:.2}")
            }
            (Escalation::Complexity { complexity, limit }, Lang::En) => {
                format!("complexity {complexity} ≥ {limit}")
            }
            (Escalation::Complexity { complexity, limit }, Lang::Zh) => {
                format!("复杂度 {complexity} ≥ {limit}")
            }
            (Escalation::UnresolvedRounds { rounds, limit }, Lang::En) => {
                format!("unresolved rounds {rounds} ≥ {limit}")
            }
            (Escalation::UnresolvedRounds { rounds, limit }, Lang::Zh) => {
                format!("未解决轮次 {rounds} ≥ {limit}")
            }
            (Escalation::Vip { tier }, Lang::En) => format!("customer tier {tier} is a VIP tier"),
            (Escalation::Vip { tier }, Lang::Zh) => format!("客户等级 {tier} 属于 VIP 等级"),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::Parsed;

    use super::*;

    fn reasons(anger: f32, ticket: &Ticket, lang: Lang) -> Vec<String> {
        escalations(anger, ticket, &PolicyConfig::default())
            .iter()
            .map(|e| e.describe(lang))
            .collect()
    }

    #[test]
    fn each_rule_gives_a_reason() {
        let t = Ticket {
            unresolved_rounds: 2,
            parsed: Some(Parsed {
                complexity: 4,
                ..Parsed::default()
            }),
            ..Ticket::default()
        };
        assert_eq!(
            reasons(0.7, &t, Lang::En),
            [
                "anger 0.70 ≥ 0.60",
                "complexity 4 ≥ 3",
                "unresolved rounds 2 ≥ 2"
            ]
        );
        assert_eq!(
            reasons(0.7, &t, Lang::Zh),
            ["愤怒度 0.70 ≥ 0.60", "复杂度 4 ≥ 3", "未解决轮次 2 ≥ 2"]
        );
        let calm = Ticket {
            unresolved_rounds: 1,
            ..Ticket::default()
        };
        assert!(escalations(0.1, &calm, &PolicyConfig::default()).is_empty());
    }

    #[test]
    fn vip_customers_get_a_person() {
        let t = Ticket {
            customer_tier: " VIP".to_owned(),
            ..Ticket::default()
        };
        assert_eq!(
            reasons(0.0, &t, Lang::En),
            ["customer tier VIP is a VIP tier"]
        );
        assert_eq!(reasons(0.0, &t, Lang::Zh), ["客户等级 VIP 属于 VIP 等级"]);
    }
}
