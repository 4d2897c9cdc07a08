//! Incident detection: the retriever remembers the tickets it handled within the incident window and finds,
//! for each new ticket, the recent ones close to it. Many close tickets from different customers in a short
//! window usually mean one fault behind them (an outage, a failed release). The watch reports how many
//! customers that is ([`IncidentSignal`]); the priority policy, applied by the router, decides whether it
//! is enough to raise the ticket's priority.
//!
//! Closeness is the cosine of the tickets' dense embeddings, or of their BM25 term vectors when the
//! knowledge base has no embedder: an absolute measure, where the knowledge base's fused search scores
//! only rank. The memory is per process, bounded by the window and by [`CAPACITY`]: with several retriever
//! replicas, each sees the share of an incident's tickets that the bus gives it.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use std::collections::HashSet;

use qdrant_edge::SparseVector;
use switchboard_knowledge::{Query, bm25};
use switchboard_policy::PolicyConfig;
use switchboard_proto::{IncidentSignal, Ticket};

/// Tickets remembered at most, whatever the window: at 384 floats each, about 15 MiB.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct IncidentWatch {
    window_minutes: u32,
    /// Off when 0: the policy would never raise, so nothing need be remembered.
    enabled: bool,
    min_similarity: f32,
    recent: Mutex<VecDeque<Arrival>>,
}

#[derive(Debug)]
struct Arrival {
    ticket_id: String,
    customer_id: String,
    at_ms: i64,
    vector: Closeness,
}

/// What two tickets are compared by. Both sides of a comparison come from the same knowledge base, so
/// they are of the same kind.
#[derive(Debug)]
enum Closeness {
    Dense(Vec<f32>),
    Terms(SparseVector),
}

impl Closeness {
    fn of(query: &Query) -> Self {
        match &query.dense {
            Some(dense) => Self::Dense(dense.clone()),
            None => Self::Terms(bm25::document_vector(&query.text)),
        }
    }

    fn cosine(&self, other: &Self) -> f32 {
        match (self, other) {
            // Embeddings are L2-normalised: the dot product is the cosine.
            (Self::Dense(a), Self::Dense(b)) => dot(a, b),
            (Self::Terms(a), Self::Terms(b)) => sparse_cosine(a, b),
            _ => 0.0,
        }
    }
}

/// Every ticket is compared with the whole window, so this is the watch's inner loop. A plain `sum` adds
/// in order, which the compiler may not vectorise; eight running sums let it use SIMD lanes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

fn sparse_cosine(a: &SparseVector, b: &SparseVector) -> f32 {
    let norm = |v: &SparseVector| v.values.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    // Both index lists are sorted and unique: merge them.
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.indices.len() && j < b.indices.len() {
        match a.indices[i].cmp(&b.indices[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a.values[i] * b.values[j];
                i += 1;
                j += 1;
            }
        }
    }
    dot / (na * nb)
}

impl IncidentWatch {
    /// From the `[policy]` incident settings; `incident_min_customers = 0` turns detection off.
    pub fn new(config: &PolicyConfig) -> Self {
        Self {
            window_minutes: config.incident_window_minutes,
            enabled: config.incident_min_customers > 0,
            min_similarity: config.incident_min_similarity,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Remembers the ticket and, when other customers sent a close ticket within the window, says how
    /// many customers that makes (this one included). A ticket seen again (a redelivery) replaces its
    /// earlier self, so it never counts twice; a ticket without a customer id cannot show that another
    /// customer is affected, so it is not counted.
    pub fn observe(&self, ticket: &Ticket, query: &Query, now_ms: i64) -> Option<IncidentSignal> {
        if !self.enabled {
            return None;
        }
        let vector = Closeness::of(query);
        let since = now_ms - i64::from(self.window_minutes) * 60_000;
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        // Arrivals are stamped when observed and pushed at the back, so the old ones are at the front.
        while recent.front().is_some_and(|a| a.at_ms < since) {
            recent.pop_front();
        }
        recent.retain(|a| a.ticket_id != ticket.id);
        let customers: HashSet<&str> = recent
            .iter()
            .filter(|a| vector.cosine(&a.vector) >= self.min_similarity)
            .map(|a| a.customer_id.as_str())
            .chain([ticket.customer_id.as_str()])
            .filter(|c| !c.is_empty())
            .collect();
        let signal = (customers.len() >= 2).then(|| IncidentSignal {
            customers: u32::try_from(customers.len()).unwrap_or(u32::MAX),
            window_minutes: self.window_minutes,
        });
        if recent.len() == CAPACITY {
            recent.pop_front();
        }
        recent.push_back(Arrival {
            ticket_id: ticket.id.clone(),
            customer_id: ticket.customer_id.clone(),
            at_ms: now_ms,
            vector,
        });
        signal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_262_400_000;
    const MIN: i64 = 60_000;

    fn watch() -> IncidentWatch {
        IncidentWatch::new(&PolicyConfig {
            incident_window_minutes: 30,
            incident_min_similarity: 0.6,
            ..PolicyConfig::default()
        })
    }

    fn ticket(id: &str, customer: &str) -> Ticket {
        Ticket {
            id: id.into(),
            customer_id: customer.into(),
            ..Ticket::default()
        }
    }

    fn customers(signal: Option<IncidentSignal>) -> u32 {
        signal.map_or(0, |s| s.customers)
    }

    fn query(text: &str) -> Query {
        Query {
            text: text.into(),
            dense: None,
        }
    }

    const OUTAGE: &str = "支付宝付款一直失败 payment keeps failing";

    #[test]
    fn close_tickets_from_several_customers_are_counted_with_the_window() {
        let w = watch();
        assert_eq!(w.observe(&ticket("t-0", "a"), &query(OUTAGE), NOW), None);
        assert_eq!(
            customers(w.observe(&ticket("t-1", "b"), &query(OUTAGE), NOW + MIN)),
            2
        );
        let found = w
            .observe(&ticket("t-2", "c"), &query(OUTAGE), NOW + 2 * MIN)
            .expect("three customers");
        assert_eq!(
            found,
            IncidentSignal {
                customers: 3,
                window_minutes: 30
            }
        );
    }

    #[test]
    fn one_customer_unlike_tickets_old_tickets_and_redeliveries_do_not_count() {
        let w = watch();
        // Old: outside the 30-minute window by the time the last one comes.
        w.observe(&ticket("old", "x"), &query(OUTAGE), NOW - 40 * MIN);
        // Unlike: shares no term.
        w.observe(&ticket("other", "y"), &query("invoice address change"), NOW);
        // The same customer twice, and one ticket redelivered.
        assert_eq!(w.observe(&ticket("a-1", "a"), &query(OUTAGE), NOW), None);
        assert_eq!(w.observe(&ticket("a-2", "a"), &query(OUTAGE), NOW), None);
        w.observe(&ticket("b-1", "b"), &query(OUTAGE), NOW);
        assert_eq!(
            customers(w.observe(&ticket("b-1", "b"), &query(OUTAGE), NOW)),
            2,
            "a, b: two customers"
        );
        // A ticket without a customer cannot show another customer is affected.
        assert_eq!(
            customers(w.observe(&ticket("anon", ""), &query(OUTAGE), NOW)),
            2
        );
    }

    #[test]
    fn dense_embeddings_compare_by_cosine() {
        let w = watch();
        let near = |x: f32| Query {
            text: String::new(),
            dense: Some(vec![x, (1.0 - x * x).sqrt()]),
        };
        w.observe(&ticket("1", "a"), &near(1.0), NOW);
        assert_eq!(customers(w.observe(&ticket("2", "b"), &near(0.9), NOW)), 2);
        // cos = 0.0 with both: far.
        assert_eq!(w.observe(&ticket("3", "c"), &near(0.0), NOW), None);
        assert_eq!(customers(w.observe(&ticket("4", "d"), &near(0.95), NOW)), 3);
    }

    #[test]
    fn the_lane_dot_product_counts_every_component() {
        // 19 = two full lanes of 8 and a tail of 3.
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 + (i % 3) as f32).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), plain);
    }

    #[test]
    fn zero_customers_turns_detection_off() {
        let w = IncidentWatch::new(&PolicyConfig {
            incident_min_customers: 0,
            ..PolicyConfig::default()
        });
        for i in 0..10 {
            let t = ticket(&i.to_string(), &i.to_string());
            assert!(w.observe(&t, &query(OUTAGE), NOW).is_none());
        }
    }
}
