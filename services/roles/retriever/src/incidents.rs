//! Incident detection: the retriever remembers the tickets it handled within the incident window and finds,
//! for each new ticket, the recent ones close to it. Many close tickets from different customers in a short
//! window usually mean one fault behind them (an outage, a failed release). The watch reports how many
//! customers that is ([`IncidentSignal`]); the priority policy, applied by the router, decides whether it
//! is enough to raise the ticket's priority.
//!
//! Closeness is the cosine of the tickets' dense embeddings, or of their BM25 term vectors when the
//! knowledge base has no embedder: an absolute measure, where the knowledge base's fused search scores
//! only rank. The memory is bounded by the window and by [`CAPACITY`].
//!
//! Every retriever replica remembers every replica's tickets: each writes the tickets it handles to the
//! [`INCIDENTS_BUCKET`] and follows the bucket, so an incident's tickets count together however the bus
//! spreads them. A ticket another replica handled a few milliseconds earlier may not have arrived yet.
//! Each replica deletes its own tickets from the bucket once they leave the window, and one that starts
//! deletes those a stopped replica left.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use qdrant_edge::SparseVector;
use switchboard_bus::{BusError, Kv};
use switchboard_knowledge::{Query, bm25};
use switchboard_policy::PolicyConfig;
use switchboard_proto::{IncidentArrival, IncidentSignal, Ticket};
use switchboard_runtime::error_chain;

/// Tickets remembered at most, whatever the window: at a byte per dimension, about 5 MiB at 512.
const CAPACITY: usize = 10_000;

/// The tickets every retriever replica handled within the incident window, as [`IncidentArrival`]s by
/// ticket id.
pub const INCIDENTS_BUCKET: &str = "incidents";

#[derive(Debug)]
pub struct IncidentWatch {
    window_minutes: u32,
    /// Off when 0: the policy would never raise, so nothing need be remembered.
    enabled: bool,
    min_similarity: f32,
    /// Oldest first.
    recent: Mutex<VecDeque<Arrival>>,
    /// Where the replicas share their tickets; `None` keeps them in this process.
    shared: Option<Arc<dyn Kv>>,
}

#[derive(Debug)]
struct Arrival {
    ticket_id: TicketId,
    customer_id: String,
    at_ms: i64,
    vector: Closeness,
    /// Written to the bucket by this replica, which deletes it there once it leaves the window.
    own: bool,
}

/// A ticket id with its hash: every ticket looks for an earlier self (a redelivery) in the whole window,
/// and comparing hashes first spares comparing the ids' bytes, which share long prefixes.
#[derive(Debug)]
struct TicketId {
    id: String,
    hash: u64,
}

impl TicketId {
    fn new(id: String) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        id.hash(&mut hasher);
        Self {
            hash: hasher.finish(),
            id,
        }
    }

    fn is(&self, other: &Self) -> bool {
        self.hash == other.hash && self.id == other.id
    }
}

/// Keeps a shared watch following the bucket; dropping it stops following.
#[derive(Debug)]
pub struct IncidentFeed(tokio::task::JoinHandle<()>);

impl Drop for IncidentFeed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What two tickets are compared by. Both sides of a comparison come from the same knowledge base, so
/// they are of the same kind.
#[derive(Debug)]
enum Closeness {
    Dense(Quantized),
    Terms(SparseVector),
}

impl Closeness {
    fn of(query: &Query) -> Self {
        match &query.dense {
            Some(dense) => Self::Dense(Quantized::new(dense)),
            None => Self::Terms(bm25::document_vector(&query.text)),
        }
    }

    fn shared(&self, customer_id: &str, at_ms: i64) -> IncidentArrival {
        let mut arrival = IncidentArrival {
            customer_id: customer_id.to_owned(),
            at_ms,
            ..IncidentArrival::default()
        };
        match self {
            Self::Dense(dense) => arrival.dense = dense.values(),
            Self::Terms(terms) => {
                arrival.term_indices.clone_from(&terms.indices);
                arrival.term_values.clone_from(&terms.values);
            }
        }
        arrival
    }

    fn of_shared(arrival: IncidentArrival) -> Self {
        if arrival.dense.is_empty() {
            Self::Terms(SparseVector {
                indices: arrival.term_indices,
                values: arrival.term_values,
            })
        } else {
            Self::Dense(Quantized::new(&arrival.dense))
        }
    }

    fn cosine(&self, other: &Self) -> f32 {
        match (self, other) {
            (Self::Dense(a), Self::Dense(b)) => a.dot(b),
            (Self::Terms(a), Self::Terms(b)) => sparse_cosine(a, b),
            _ => 0.0,
        }
    }
}

/// An embedding as one byte per dimension, scaled by its largest component. Every ticket is compared
/// with the whole window, so this is the watch's inner loop, and it reads the window's vectors from
/// memory: a quarter of the bytes of `f32`s. The cosine moves by a few thousandths at most (a test
/// checks), against a threshold that tells close tickets from others by tenths.
#[derive(Debug)]
struct Quantized {
    levels: Vec<i8>,
    /// What one level is worth.
    scale: f32,
}

impl Quantized {
    fn new(vector: &[f32]) -> Self {
        let largest = vector.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        Self {
            // Within -127..=127 by the scale, so the cast never saturates.
            levels: vector.iter().map(|v| (v / scale).round() as i8).collect(),
            scale,
        }
    }

    /// The vector it stands for, as shared with other replicas: quantised again it gives the same
    /// levels and scale.
    fn values(&self) -> Vec<f32> {
        self.levels
            .iter()
            .map(|&l| f32::from(l) * self.scale)
            .collect()
    }

    /// The dot product, which for L2-normalised embeddings is the cosine. Integer sums are exact in
    /// any order, so they go in sixteen lanes, which the compiler turns into SIMD multiplies of
    /// whole registers (2.4 times the speed of one running sum, which it vectorised eight bytes at a
    /// time); a product of two levels fits `i16`, and 127² times any embedding's dimension is far
    /// inside `i32`.
    fn dot(&self, other: &Self) -> f32 {
        const LANES: usize = 16;
        let (a, b) = (
            self.levels.chunks_exact(LANES),
            other.levels.chunks_exact(LANES),
        );
        let tail: i32 = a
            .remainder()
            .iter()
            .zip(b.remainder())
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        let mut lanes = [0i32; LANES];
        for (x, y) in a.zip(b) {
            for i in 0..LANES {
                lanes[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
            }
        }
        (lanes.iter().sum::<i32>() + tail) as f32 * self.scale * other.scale
    }
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
    /// From the `[policy]` incident settings; `incident_min_customers = 0` turns detection off. It
    /// remembers the tickets of this process only.
    pub fn new(config: &PolicyConfig) -> Self {
        Self {
            window_minutes: config.incident_window_minutes,
            enabled: config.incident_min_customers > 0,
            min_similarity: config.incident_min_similarity,
            recent: Mutex::new(VecDeque::new()),
            shared: None,
        }
    }

    /// A watch that shares its tickets with every replica through `kv` (the [`INCIDENTS_BUCKET`]): it
    /// holds what the bucket holds within the window before it returns, deleting what has left it, and
    /// follows the bucket until the [`IncidentFeed`] is dropped. With detection off it neither reads
    /// nor writes the bucket.
    pub async fn shared(
        config: &PolicyConfig,
        kv: Arc<dyn Kv>,
    ) -> Result<(Arc<Self>, Option<IncidentFeed>), BusError> {
        let mut watch = Self::new(config);
        if !watch.enabled {
            return Ok((Arc::new(watch), None));
        }
        watch.shared = Some(kv.clone());
        let watch = Arc::new(watch);
        let since = watch.since(switchboard_runtime::now_ms());
        for (ticket_id, entry) in kv.entries().await? {
            let stale = watch.apply(ticket_id.clone(), Some(&entry.value), since);
            if stale {
                // A replica racing us may have deleted or rewritten it: either way it is settled.
                let _ = kv.delete_expect_revision(&ticket_id, entry.revision).await;
            }
        }
        let mut changes = kv.watch().await?;
        let kept = watch.clone();
        let task = tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                match change {
                    Ok(change) => {
                        let since = kept.since(switchboard_runtime::now_ms());
                        kept.apply(change.key, change.value.as_deref(), since);
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "the incidents watch failed; other replicas' tickets are no longer compared");
                        break;
                    }
                }
            }
        });
        Ok((watch, Some(IncidentFeed(task))))
    }

    fn since(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.window_minutes) * 60_000
    }

    /// Remembers (`Some`) or forgets (`None`) a ticket the bucket holds; says whether it was too old to
    /// remember. An unreadable value is logged and skipped.
    fn apply(&self, ticket_id: String, value: Option<&[u8]>, since: i64) -> bool {
        let ticket_id = TicketId::new(ticket_id);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(value) = value else {
            recent.retain(|a| !a.ticket_id.is(&ticket_id));
            return false;
        };
        let arrival = match IncidentArrival::decode(value) {
            Ok(arrival) => arrival,
            Err(e) => {
                tracing::warn!(ticket = %ticket_id.id, error = %e, "an unreadable entry in the incidents bucket; skipped");
                return false;
            }
        };
        if arrival.at_ms < since {
            return true;
        }
        // This replica's own, written before: it is already here.
        if recent.iter().any(|a| a.ticket_id.is(&ticket_id) && a.own) {
            return false;
        }
        recent.retain(|a| !a.ticket_id.is(&ticket_id));
        let arrival = Arrival {
            ticket_id,
            customer_id: arrival.customer_id.clone(),
            at_ms: arrival.at_ms,
            vector: Closeness::of_shared(arrival),
            own: false,
        };
        insert(&mut recent, arrival);
        false
    }

    /// Remembers the ticket and, when other customers sent a close ticket within the window, says how
    /// many customers that makes (this one included). A ticket seen again (a redelivery) replaces its
    /// earlier self, so it never counts twice; a ticket without a customer id cannot show that another
    /// customer is affected, so it is not counted. A shared watch also writes the ticket to the bucket,
    /// and deletes there its own tickets that have left the window; a failed write is logged, and only
    /// costs the other replicas this ticket.
    pub async fn observe(
        &self,
        ticket: &Ticket,
        query: &Query,
        now_ms: i64,
    ) -> Option<IncidentSignal> {
        if !self.enabled {
            return None;
        }
        let vector = Closeness::of(query);
        let shared = self
            .shared
            .as_ref()
            .map(|_| vector.shared(&ticket.customer_id, now_ms));
        let (signal, expired) = self.compare_and_remember(ticket, vector, now_ms);
        if let (Some(kv), Some(arrival)) = (&self.shared, shared) {
            let value = Bytes::from(arrival.encode_to_vec());
            if let Err(e) = kv.put(&ticket.id, value).await {
                tracing::warn!(ticket = %ticket.id, error = %error_chain(&e), "not shared with the other retriever replicas");
            }
            for ticket_id in expired {
                if let Err(e) = kv.delete(&ticket_id).await {
                    tracing::warn!(ticket = %ticket_id, error = %error_chain(&e), "an expired ticket not deleted from the incidents bucket");
                }
            }
        }
        signal
    }

    /// The signal against the tickets remembered, then the ticket remembered; with the ids of this
    /// replica's own tickets that left the window.
    fn compare_and_remember(
        &self,
        ticket: &Ticket,
        vector: Closeness,
        now_ms: i64,
    ) -> (Option<IncidentSignal>, Vec<String>) {
        let since = self.since(now_ms);
        let ticket_id = TicketId::new(ticket.id.clone());
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut expired = Vec::new();
        while let Some(old) = recent.pop_front_if(|a| a.at_ms < since) {
            if old.own {
                expired.push(old.ticket_id.id);
            }
        }
        recent.retain(|a| !a.ticket_id.is(&ticket_id));
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
        let arrival = Arrival {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            at_ms: now_ms,
            vector,
            own: true,
        };
        insert(&mut recent, arrival);
        (signal, expired)
    }
}

/// Inserts in time order (another replica's ticket may come after a later one of ours), dropping the
/// oldest at [`CAPACITY`].
fn insert(recent: &mut VecDeque<Arrival>, arrival: Arrival) {
    if recent.len() == CAPACITY {
        recent.pop_front();
    }
    let at = recent.partition_point(|a| a.at_ms <= arrival.at_ms);
    recent.insert(at, arrival);
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

    #[tokio::test]
    async fn close_tickets_from_several_customers_are_counted_with_the_window() {
        let w = watch();
        assert_eq!(
            w.observe(&ticket("t-0", "a"), &query(OUTAGE), NOW).await,
            None
        );
        assert_eq!(
            customers(
                w.observe(&ticket("t-1", "b"), &query(OUTAGE), NOW + MIN)
                    .await
            ),
            2
        );
        let found = w
            .observe(&ticket("t-2", "c"), &query(OUTAGE), NOW + 2 * MIN)
            .await
            .expect("three customers");
        assert_eq!(
            found,
            IncidentSignal {
                customers: 3,
                window_minutes: 30
            }
        );
    }

    #[tokio::test]
    async fn one_customer_unlike_tickets_old_tickets_and_redeliveries_do_not_count() {
        let w = watch();
        // Old: outside the 30-minute window by the time the last one comes.
        w.observe(&ticket("old", "x"), &query(OUTAGE), NOW - 40 * MIN)
            .await;
        // Unlike: shares no term.
        w.observe(&ticket("other", "y"), &query("invoice address change"), NOW)
            .await;
        // The same customer twice, and one ticket redelivered.
        assert_eq!(
            w.observe(&ticket("a-1", "a"), &query(OUTAGE), NOW).await,
            None
        );
        assert_eq!(
            w.observe(&ticket("a-2", "a"), &query(OUTAGE), NOW).await,
            None
        );
        w.observe(&ticket("b-1", "b"), &query(OUTAGE), NOW).await;
        assert_eq!(
            customers(w.observe(&ticket("b-1", "b"), &query(OUTAGE), NOW).await),
            2,
            "a, b: two customers"
        );
        // A ticket without a customer cannot show another customer is affected.
        assert_eq!(
            customers(w.observe(&ticket("anon", ""), &query(OUTAGE), NOW).await),
            2
        );
    }

    #[tokio::test]
    async fn dense_embeddings_compare_by_cosine() {
        let w = watch();
        let near = |x: f32| Query {
            text: String::new(),
            dense: Some(vec![x, (1.0 - x * x).sqrt()]),
        };
        w.observe(&ticket("1", "a"), &near(1.0), NOW).await;
        assert_eq!(
            customers(w.observe(&ticket("2", "b"), &near(0.9), NOW).await),
            2
        );
        // cos = 0.0 with both: far.
        assert_eq!(w.observe(&ticket("3", "c"), &near(0.0), NOW).await, None);
        assert_eq!(
            customers(w.observe(&ticket("4", "d"), &near(0.95), NOW).await),
            3
        );
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !check() {
            assert!(std::time::Instant::now() < until, "{what}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn remembered(w: &IncidentWatch) -> usize {
        w.recent.lock().unwrap().len()
    }

    /// Two replicas sharing the bucket count an incident's tickets together, whichever handled each; a
    /// replica started later holds them too; what left the window is deleted from the bucket, by the
    /// replica that wrote it or, for a stopped one's, by the next to start.
    #[tokio::test]
    async fn replicas_sharing_the_bucket_count_each_others_tickets() {
        let bus = switchboard_bus::memory::MemoryBus::new();
        let kv = switchboard_bus::Bus::kv(&bus, INCIDENTS_BUCKET)
            .await
            .unwrap();
        let config = PolicyConfig {
            incident_window_minutes: 30,
            incident_min_similarity: 0.6,
            ..PolicyConfig::default()
        };
        let (a, _a) = IncidentWatch::shared(&config, kv.clone()).await.unwrap();
        let (b, _b) = IncidentWatch::shared(&config, kv.clone()).await.unwrap();
        let now = switchboard_runtime::now_ms();
        let outage = query(OUTAGE);
        assert_eq!(
            a.observe(&ticket("old", "x"), &outage, now - 40 * MIN)
                .await,
            None
        );
        assert_eq!(a.observe(&ticket("t-0", "a"), &outage, now).await, None);
        eventually("b hears of t-0 (old is out of its window)", || {
            remembered(&b) == 1
        })
        .await;
        assert_eq!(
            customers(b.observe(&ticket("t-1", "b"), &outage, now + MIN).await),
            2
        );
        eventually("a hears of t-1", || remembered(&a) == 2).await;
        assert_eq!(
            customers(a.observe(&ticket("t-2", "c"), &outage, now + 2 * MIN).await),
            3
        );

        let stale = Closeness::of(&outage).shared("y", now - 60 * MIN);
        kv.put("gone", Bytes::from(stale.encode_to_vec()))
            .await
            .unwrap();
        let (c, _c) = IncidentWatch::shared(&config, kv.clone()).await.unwrap();
        let mut keys: Vec<String> = kv
            .entries()
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(keys, ["t-0", "t-1", "t-2"]);
        assert_eq!(
            customers(c.observe(&ticket("t-3", "d"), &outage, now + 3 * MIN).await),
            4
        );
    }

    #[test]
    fn the_lanes_add_up_to_the_plain_sum_at_any_length() {
        for len in (0..40).chain([100, 512, 1030]) {
            let levels = |seed: usize| -> Vec<i8> {
                (0..len)
                    .map(|i| match (i * 7 + seed) % 5 {
                        0 => 127,
                        1 => -127,
                        k => (k as i8 - 3) * 40,
                    })
                    .collect()
            };
            let (a, b) = (
                Quantized {
                    levels: levels(1),
                    scale: 1.0,
                },
                Quantized {
                    levels: levels(3),
                    scale: 1.0,
                },
            );
            let plain: i32 = a
                .levels
                .iter()
                .zip(&b.levels)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
            assert_eq!(a.dot(&b), plain as f32, "{len} dimensions");
        }
    }

    #[test]
    fn quantised_cosines_stay_within_a_few_thousandths() {
        // Unit vectors of 512 dimensions from a fixed sequence, each pair at some angle.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut unit = || {
            let v: Vec<f32> = (0..512)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        for _ in 0..50 {
            let (a, noise) = (unit(), unit());
            // b close to a, so cosines near the threshold are covered as well as unrelated ones.
            let b: Vec<f32> = a.iter().zip(&noise).map(|(x, n)| x + 0.6 * n).collect();
            let norm = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            let b: Vec<f32> = b.into_iter().map(|x| x / norm).collect();
            for (x, y) in [(&a, &b), (&a, &noise)] {
                let exact: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
                let quantised = Quantized::new(x).dot(&Quantized::new(y));
                assert!(
                    (exact - quantised).abs() < 0.005,
                    "{exact} against {quantised}"
                );
            }
        }
        // Shared with another replica and quantised there, a vector keeps its levels and scale.
        let q = Quantized::new(&unit());
        let again = Quantized::new(&q.values());
        assert_eq!(again.levels, q.levels);
        assert!((again.scale - q.scale).abs() <= q.scale * 1e-6);
    }

    #[tokio::test]
    async fn zero_customers_turns_detection_off() {
        let w = IncidentWatch::new(&PolicyConfig {
            incident_min_customers: 0,
            ..PolicyConfig::default()
        });
        for i in 0..10 {
            let t = ticket(&i.to_string(), &i.to_string());
            assert!(w.observe(&t, &query(OUTAGE), NOW).await.is_none());
        }
    }
}
