//! Incidents: many similar tickets from different customers within a short window usually mean one fault
//! behind them (an outage, a failed release), which deserves a higher priority than any one ticket's tone.
//!
//! Detected from the retriever's neighbours (`switchboard_retriever::IncidentWatch` keeps the recent
//! tickets and says which are close), so this is a pure function for it to call, with
//! [`crate::raise_for_incident`] to apply the result.

use std::collections::HashSet;

/// A similar ticket as the incident rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour<'a> {
    /// Empty when unknown: such a neighbour cannot show that a different customer is affected, so it is not
    /// counted.
    pub customer_id: &'a str,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Distinct customers among the neighbours inside the window.
    pub customers: usize,
    pub window_minutes: u32,
    pub min_customers: usize,
}

impl Incident {
    pub fn reason(&self) -> String {
        format!(
            "incident: {} customers with similar tickets within {} min ≥ {}",
            self.customers, self.window_minutes, self.min_customers
        )
    }
}

/// An incident when at least `min_customers` distinct customers sent one of `matches` within the last
/// `window_minutes` before `now_ms`. Neighbours dated after `now_ms` (clock skew between replicas) count as
/// inside the window.
pub fn incident<'a>(
    matches: impl IntoIterator<Item = Neighbour<'a>>,
    now_ms: i64,
    window_minutes: u32,
    min_customers: usize,
) -> Option<Incident> {
    let since = now_ms - i64::from(window_minutes) * 60_000;
    let customers: HashSet<&str> = matches
        .into_iter()
        .filter(|n| !n.customer_id.is_empty() && n.created_at_ms >= since)
        .map(|n| n.customer_id)
        .collect();
    (min_customers > 0 && customers.len() >= min_customers).then_some(Incident {
        customers: customers.len(),
        window_minutes,
        min_customers,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{Assessment, Priority};

    use super::*;
    use crate::raise_for_incident;

    const NOW: i64 = 1_795_262_400_000;
    const MIN: i64 = 60_000;

    fn n(customer_id: &str, minutes_ago: i64) -> Neighbour<'_> {
        Neighbour {
            customer_id,
            created_at_ms: NOW - minutes_ago * MIN,
        }
    }

    #[test]
    fn distinct_recent_customers_make_an_incident() {
        let recent = [n("a", 1), n("b", 5), n("c", 14), n("a", 2)];
        let found = incident(recent, NOW, 15, 3);
        assert_eq!(
            found,
            Some(Incident {
                customers: 3,
                window_minutes: 15,
                min_customers: 3
            })
        );
        let mut a = Assessment::default();
        a.set_priority(Priority::Normal);
        raise_for_incident(&mut a, &found.expect("found above"));
        assert_eq!(a.priority(), Priority::High);
        assert_eq!(
            a.priority_reasons,
            ["incident: 3 customers with similar tickets within 15 min ≥ 3"]
        );
    }

    #[test]
    fn one_customer_old_tickets_or_unknown_customers_are_not_an_incident() {
        assert_eq!(
            incident([n("a", 1), n("a", 2), n("a", 3)], NOW, 15, 2),
            None
        );
        assert_eq!(
            incident([n("a", 1), n("b", 30), n("c", 60)], NOW, 15, 2),
            None
        );
        assert_eq!(incident([n("", 1), n("", 2), n("a", 3)], NOW, 15, 2), None);
        assert_eq!(incident([], NOW, 15, 0), None);
    }
}
