//! When a ticket goes to a person at once instead of waiting its turn: an angry customer handled by the
//! wrong queue turns into a public complaint, several tangled problems rarely fit one department's
//! script, and a customer who keeps coming back needs a person, not another routing attempt.

use switchboard_proto::Ticket;

use crate::PolicyConfig;

/// Why `ticket`, whose tone scored `anger`, must go to a person: one line per rule that fired, none when
/// it may wait its turn.
pub fn escalation_reasons(anger: f32, ticket: &Ticket, config: &PolicyConfig) -> Vec<String> {
    let mut reasons = Vec::new();
    if anger >= config.anger_threshold {
        reasons.push(format!("anger {anger:.2} ≥ {:.2}", config.anger_threshold));
    }
    // 0 means the parser could not tell; validation keeps the threshold at 1 or more.
    let complexity = ticket.parsed.as_ref().map_or(0, |p| p.complexity);
    if complexity >= config.complexity_threshold {
        reasons.push(format!(
            "complexity {complexity} ≥ {}",
            config.complexity_threshold
        ));
    }
    if ticket.unresolved_rounds >= config.unresolved_rounds_threshold {
        reasons.push(format!(
            "unresolved rounds {} ≥ {}",
            ticket.unresolved_rounds, config.unresolved_rounds_threshold
        ));
    }
    if config.is_vip(&ticket.customer_tier) {
        reasons.push(format!(
            "customer tier {} is a VIP tier",
            ticket.customer_tier.trim()
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use switchboard_proto::Parsed;

    use super::*;

    fn reasons(anger: f32, ticket: &Ticket) -> Vec<String> {
        escalation_reasons(anger, ticket, &PolicyConfig::default())
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
            reasons(0.7, &t),
            [
                "anger 0.70 ≥ 0.60",
                "complexity 4 ≥ 3",
                "unresolved rounds 2 ≥ 2"
            ]
        );
        let calm = Ticket {
            unresolved_rounds: 1,
            ..Ticket::default()
        };
        assert!(reasons(0.1, &calm).is_empty());
    }

    #[test]
    fn vip_customers_get_a_person() {
        let t = Ticket {
            customer_tier: "VIP".to_owned(),
            ..Ticket::default()
        };
        assert_eq!(reasons(0.0, &t), ["customer tier VIP is a VIP tier"]);
    }
}
