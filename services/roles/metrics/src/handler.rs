use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prost::Message;
use switchboard_proto::{Corrected, PriorityCause, Resolved, Stage, Ticket};
use switchboard_runtime::metrics::decision;
use switchboard_runtime::{Handler, HandlerError, Inbound, Metrics, Outbound, Subjects};

use crate::tally::Tally;

/// Reads every subject of the pipeline; publishes nothing.
///
/// Every replica reads the whole stream, history first ([`switchboard_runtime::RoleParts::each_replica_reads_all`]):
/// the tally, and the gauges set from it, are the same in each. The counters and the handling-time
/// histogram count only what happened since this replica started, so a restart that re-reads a month
/// of history into the tally is no burst in their rates; each replica counts every event, so
/// dashboards take one replica's rate (`max`), not the sum.
///
/// It watches other roles' input without owning it: a message it cannot read is skipped (and logged),
/// never failed, because the role that consumes that subject dead-letters it already; failing here
/// would put each bad message in the dead letters a second time, under `metrics`.
#[derive(Debug)]
pub struct MetricsHandler {
    tally: Arc<Mutex<Tally>>,
    metrics: Metrics,
    subjects: Subjects,
    /// Events before this time (ms) are history: into the tally, not the counters.
    counts_from_ms: i64,
}

impl MetricsHandler {
    pub fn new(
        tally: Arc<Mutex<Tally>>,
        metrics: Metrics,
        subjects: Subjects,
        counts_from_ms: i64,
    ) -> Self {
        Self {
            tally,
            metrics,
            subjects,
            counts_from_ms,
        }
    }

    fn live(&self, at_ms: i64) -> bool {
        at_ms >= self.counts_from_ms
    }

    /// The cockpit's accuracy and review rate as gauges, the same figures `GET /v1/stats` answers;
    /// both are O(1) to read, so they are set after every event that changes them.
    fn publish_quality(&self, tally: &Tally) {
        let (accuracy, review_rate) = tally.quality();
        self.metrics.quality(accuracy, review_rate);
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Handler for MetricsHandler {
    async fn handle(&self, msg: &Inbound) -> Result<Vec<Outbound>, HandlerError> {
        let s = &self.subjects;
        let subject = msg.subject.as_str();
        if subject == s.stage(Stage::Received) {
            let Some(t) = readable::<Ticket>(msg) else {
                return Ok(Vec::new());
            };
            self.tally().received(&t.id, t.received_at_ms);
        } else if subject == s.stage(Stage::Routed) || subject == s.stage(Stage::Review) {
            let Some(t) = readable::<Ticket>(msg) else {
                return Ok(Vec::new());
            };
            let routed = t.stage() == Stage::Routed;
            if self.live(t.decision.as_ref().map_or(0, |d| d.decided_at_ms)) {
                self.metrics.decision(if routed {
                    decision::ROUTED
                } else {
                    decision::REVIEW
                });
            }
            let problem = t
                .parsed
                .as_ref()
                .map(|p| p.problem_type.as_str())
                .unwrap_or_default();
            let department = t
                .decision
                .as_ref()
                .map(|d| d.department.as_str())
                .unwrap_or_default();
            let incident = t.decision.as_ref().and_then(|d| {
                d.priority_steps
                    .iter()
                    .any(|s| s.cause() == PriorityCause::Incident)
                    .then(|| t.matches.as_ref()?.incident.as_ref())
                    .flatten()
            });
            let mut tally = self.tally();
            tally.decided(&t.id, routed, department, problem, t.received_at_ms);
            if let Some(incident) = incident {
                tally.incident(problem, t.received_at_ms, incident.customers);
            }
            self.publish_quality(&tally);
        } else if subject == s.corrected() {
            let Some(c) = readable::<Corrected>(msg) else {
                return Ok(Vec::new());
            };
            if self.live(c.at_ms) {
                self.metrics.correction(c.reason().as_str_name());
            }
            let mut tally = self.tally();
            tally.corrected(&c.ticket_id, c.reason().as_str_name(), &c.to_department);
            self.publish_quality(&tally);
        } else if subject == s.resolved() {
            let Some(r) = readable::<Resolved>(msg) else {
                return Ok(Vec::new());
            };
            let mut tally = self.tally();
            if let Some(seconds) = tally.resolved(&r.ticket_id, r.resolved_at_ms, &r.department)
                && self.live(r.resolved_at_ms)
            {
                self.metrics.handling_time(seconds);
            }
            self.publish_quality(&tally);
        } else if subject.starts_with(&format!("{}.deadletter.", s.prefix())) {
            self.tally().dead_lettered();
        }
        Ok(Vec::new())
    }

    fn observes(&self) -> bool {
        true
    }
}

/// The message decoded, or `None` (logged) when it cannot be: see [`MetricsHandler`].
fn readable<M: Message + Default>(msg: &Inbound) -> Option<M> {
    match M::decode(msg.payload.clone()) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(
                subject = %msg.subject,
                error = %e,
                "metrics skipped a message it cannot read; the role consuming the subject dead-letters it"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn unreadable_input_is_skipped_not_failed() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let subjects = Subjects::default();
        let handler = MetricsHandler::new(tally.clone(), Metrics::new(), subjects.clone(), 0);
        for subject in [
            subjects.stage(Stage::Received),
            subjects.stage(Stage::Routed),
            subjects.corrected(),
            subjects.resolved(),
        ] {
            let garbage = Inbound {
                subject: subject.clone(),
                payload: Bytes::from_static(&[0xff, 0xff, 0xff]),
                attempt: 1,
            };
            let out = handler.handle(&garbage).await;
            assert!(matches!(out.as_deref(), Ok([])), "{subject}: {out:?}");
        }
        let report = tally.lock().unwrap().report(5, 0);
        assert_eq!(
            (
                report.received,
                report.routed,
                report.corrected,
                report.resolved
            ),
            (0, 0, 0, 0)
        );
        // A readable one is still counted.
        let ticket = Ticket {
            id: "t-1".into(),
            received_at_ms: 1,
            ..Ticket::default()
        };
        let received = Inbound {
            subject: subjects.stage(Stage::Received),
            payload: Bytes::from(ticket.encode_to_vec()),
            attempt: 1,
        };
        handler.handle(&received).await.unwrap();
        assert_eq!(tally.lock().unwrap().report(5, 0).received, 1);
    }

    /// A replica re-reads history into its tally on start, but counts only what happens after it started.
    #[tokio::test]
    async fn history_reaches_the_tally_but_not_the_counters() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let subjects = Subjects::default();
        let metrics = Metrics::new();
        let handler = MetricsHandler::new(tally.clone(), metrics.clone(), subjects.clone(), 10_000);
        for (id, decided_at_ms) in [("old", 5_000), ("new", 10_000)] {
            let ticket = Ticket {
                id: id.into(),
                received_at_ms: decided_at_ms - 1_000,
                stage: Stage::Routed.into(),
                decision: Some(switchboard_proto::Decision {
                    decided_at_ms,
                    ..Default::default()
                }),
                ..Ticket::default()
            };
            let msg = Inbound {
                subject: subjects.stage(Stage::Routed),
                payload: Bytes::from(ticket.encode_to_vec()),
                attempt: 1,
            };
            handler.handle(&msg).await.unwrap();
        }
        for (id, at_ms) in [("old", 9_999), ("new", 10_001)] {
            let corrected = Corrected {
                ticket_id: id.into(),
                at_ms,
                ..Corrected::default()
            };
            let msg = Inbound {
                subject: subjects.corrected(),
                payload: Bytes::from(corrected.encode_to_vec()),
                attempt: 1,
            };
            handler.handle(&msg).await.unwrap();
        }
        let report = tally.lock().unwrap().report(5, 0);
        assert_eq!((report.routed, report.corrected), (2, 2));
        let text = metrics.encode();
        assert!(
            text.contains(r#"switchboard_decisions_total{outcome="routed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchboard_corrections_total{reason="CORRECTION_REASON_UNSPECIFIED"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn accuracy_review_rate_and_handling_time_reach_the_gauges() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let subjects = Subjects::default();
        let metrics = Metrics::new();
        let handler = MetricsHandler::new(tally.clone(), metrics.clone(), subjects.clone(), 0);
        let send = |subject: String, payload: Vec<u8>| {
            let handler = &handler;
            async move {
                let msg = Inbound {
                    subject,
                    payload: Bytes::from(payload),
                    attempt: 1,
                };
                handler.handle(&msg).await.expect("handled");
            }
        };
        for (id, stage) in [
            ("a", Stage::Routed),
            ("b", Stage::Routed),
            ("c", Stage::Review),
        ] {
            let mut ticket = Ticket {
                id: id.into(),
                received_at_ms: 1_000,
                ..Ticket::default()
            };
            send(subjects.stage(Stage::Received), ticket.encode_to_vec()).await;
            ticket.set_stage(stage);
            send(subjects.stage(stage), ticket.encode_to_vec()).await;
        }
        let corrected = Corrected {
            ticket_id: "b".into(),
            ..Corrected::default()
        };
        send(subjects.corrected(), corrected.encode_to_vec()).await;
        for id in ["a", "b"] {
            let resolved = Resolved {
                ticket_id: id.into(),
                resolved_at_ms: 1_000 + 120_000,
                ..Resolved::default()
            };
            send(subjects.resolved(), resolved.encode_to_vec()).await;
        }
        let text = metrics.encode();
        let value = |series: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
        };
        // a resolved as routed, b corrected: one of two judged right; one of three reviewed.
        assert_eq!(value("switchboard_dispatch_accuracy"), Some(0.5), "{text}");
        let review = value("switchboard_review_rate").expect("review rate");
        assert!((review - 1.0 / 3.0).abs() < 1e-9, "{text}");
        assert_eq!(value("switchboard_handling_time_seconds_count"), Some(2.0));
        assert_eq!(value("switchboard_handling_time_seconds_sum"), Some(240.0));
        assert_eq!(
            value(r#"switchboard_handling_time_seconds_bucket{le="60.0"}"#),
            Some(0.0)
        );
        assert_eq!(
            value(r#"switchboard_handling_time_seconds_bucket{le="300.0"}"#),
            Some(2.0)
        );
    }
}
