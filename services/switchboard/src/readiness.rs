//! Liveness, readiness and the Prometheus exposition. `/healthz` says the process answers; `/readyz`
//! says it can take work: every role it started has warmed up and bound its consumer, the bus answers,
//! and so does the knowledge base's store when a role here uses it. Kubernetes sends no traffic to a
//! replica that is not ready, so a pod whose NATS or Qdrant went away drops out until they are back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
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
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use switchboard_bus::memory::MemoryBus;

    use super::*;

    #[tokio::test]
    async fn not_ready_until_every_role_has_started() {
        let readiness = Readiness::new(Arc::new(MemoryBus::new()), None);
        let err = readiness.check().await.expect_err("starting");
        assert!(err.contains("consumer"), "{err}");
        readiness.roles_started();
        assert_eq!(readiness.check().await, Ok(()));
    }
}
