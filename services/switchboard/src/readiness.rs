//! Liveness, readiness and the Prometheus exposition. `/healthz` says the process answers; `/readyz`
//! says it can take work: every role it started has warmed up and bound its consumer, the bus answers,
//! and so does the knowledge base's store when a role here uses it. Kubernetes sends no traffic to a
//! replica that is not ready, so a pod whose NATS or Qdrant went away drops out until they are back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use switchboard_bus::Bus;
use switchboard_knowledge::KnowledgeBase;
use switchboard_runtime::{Metrics, error_chain};

/// Longest a readiness check waits for the bus or the store (both are asked at once): below the chart's
/// probe timeout, so a hung dependency reads as not ready rather than as a probe that timed out.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone)]
pub struct Readiness {
    bus: Arc<dyn Bus>,
    kb: Option<KnowledgeBase>,
    started: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(bus: Arc<dyn Bus>, kb: Option<KnowledgeBase>) -> Self {
        Self {
            bus,
            kb,
            started: Arc::default(),
        }
    }

    /// Every role has warmed up and bound its consumer.
    pub fn roles_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// `Ok` when ready, else what is not.
    pub async fn check(&self) -> Result<(), String> {
        if !self.started.load(Ordering::SeqCst) {
            return Err("starting: not every role has its consumer yet".to_owned());
        }
        let bus = async {
            match tokio::time::timeout(CHECK_TIMEOUT, self.bus.reachable()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("bus: {}", error_chain(&e))),
                Err(_) => Err(format!("bus: no answer within {CHECK_TIMEOUT:?}")),
            }
        };
        let store = async {
            let Some(kb) = &self.kb else { return Ok(()) };
            match tokio::time::timeout(CHECK_TIMEOUT, kb.count()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("knowledge base: {}", error_chain(&e))),
                Err(_) => Err(format!(
                    "knowledge base: no answer within {CHECK_TIMEOUT:?}"
                )),
            }
        };
        let (bus, store) = tokio::join!(bus, store);
        bus?;
        store?;
        Ok(())
    }
}

pub fn ops_routes(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    match readiness.check().await {
                        Ok(()) => (StatusCode::OK, "ready".to_owned()),
                        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let metrics = metrics.clone();
                async move {
                    let openmetrics = metrics.encode();
                    let asks_openmetrics = headers
                        .get_all(ACCEPT)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .any(|v| v.contains("application/openmetrics-text"));
                    if asks_openmetrics {
                        ([(CONTENT_TYPE, OPENMETRICS)], openmetrics)
                    } else {
                        (
                            [(CONTENT_TYPE, PROMETHEUS_TEXT)],
                            prometheus_text(&openmetrics),
                        )
                    }
                }
            }),
        )
}

/// What Prometheus asks for first, and gets.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// For every other client (`curl`, `promtool check metrics`, older scrapers), which read the
/// Prometheus text format and take an OpenMetrics counter's samples for a family of their own.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenMetrics exposition in the Prometheus text format 0.0.4. The two differ, for what the
/// registry holds (counters, gauges, histograms, no units, no `_created`), in a counter's family name,
/// which OpenMetrics gives without its samples' `_total`, and in the closing `# EOF`.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (family, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(family)
                .then(|| format!("{p}{family}_total {tail}"))
        });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use switchboard_bus::memory::MemoryBus;

    use super::*;

    #[test]
    fn the_prometheus_text_names_counters_as_their_samples() {
        let metrics = Metrics::new();
        metrics.role_started("parser");
        let text = prometheus_text(&metrics.encode());
        assert!(
            text.contains("# HELP switchboard_messages_total Messages handled per role")
                && text.contains("# TYPE switchboard_messages_total counter\n")
                && text.contains("switchboard_messages_total{role=\"parser\",outcome=\"ok\"} 0\n"),
            "{text}"
        );
        // Gauges and histograms keep their names; the OpenMetrics end marker goes.
        assert!(
            text.contains("# TYPE switchboard_build_info gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE switchboard_handle_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[tokio::test]
    async fn not_ready_until_every_role_has_started() {
        let readiness = Readiness::new(Arc::new(MemoryBus::new()), None);
        let err = readiness.check().await.expect_err("starting");
        assert!(err.contains("consumer"), "{err}");
        readiness.roles_started();
        assert_eq!(readiness.check().await, Ok(()));
    }
}
