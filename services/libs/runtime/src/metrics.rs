//! Prometheus metrics, named by its conventions (base units, `_total`). One registry per process; every
//! role records into it and the binary serves it on `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleOutcome {
    role: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabel {
    field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOutcome {
    provider: String,
    outcome: String,
}

/// Outcomes of handling one message, the `outcome` label of `switchboard_messages_total`.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const RETRY: &str = "retry";
    pub const DEAD_LETTER: &str = "dead_letter";
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    messages: Family<RoleOutcome, Counter>,
    duration: Family<RoleLabel, Histogram>,
    decisions: Family<OutcomeLabel, Counter>,
    corrections: Family<ReasonLabel, Counter>,
    rejected: Family<FieldLabel, Counter>,
    llm_requests: Family<ProviderOutcome, Counter>,
    llm_dropped_departments: Counter,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let messages = Family::<RoleOutcome, Counter>::default();
        registry.register(
            "messages",
            "Messages handled per role, by outcome",
            messages.clone(),
        );
        let duration = Family::<RoleLabel, Histogram>::new_with_constructor(|| {
            // 100 µs .. ~6.5 s: covers a local parse as well as an LLM call.
            Histogram::new(exponential_buckets(0.0001, 2.0, 17))
        });
        registry.register(
            "handle_duration_seconds",
            "Time a role spent on one message",
            duration.clone(),
        );
        let decisions = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "decisions",
            "Routing decisions by outcome",
            decisions.clone(),
        );
        let corrections = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "corrections",
            "Corrections by agents, by reason",
            corrections.clone(),
        );
        let rejected = Family::<FieldLabel, Counter>::default();
        registry.register(
            "tickets_rejected",
            "Tickets rejected at intake, by the field at fault",
            rejected.clone(),
        );
        let llm_requests = Family::<ProviderOutcome, Counter>::default();
        registry.register(
            "llm_requests",
            "LLM parser requests per provider, by outcome (ok or why not)",
            llm_requests.clone(),
        );
        let llm_dropped_departments = Counter::default();
        registry.register(
            "llm_dropped_departments",
            "Departments an LLM suggested that are not in the catalog, dropped",
            llm_dropped_departments.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                messages,
                duration,
                decisions,
                corrections,
                rejected,
                llm_requests,
                llm_dropped_departments,
            }),
        }
    }

    /// Creates a role's series at zero, so `/metrics` lists them from the start and `rate()` sees the first
    /// message rather than a series appearing out of nothing.
    pub fn role_started(&self, role: &str) {
        for o in [outcome::OK, outcome::RETRY, outcome::DEAD_LETTER] {
            let _created = self.inner.messages.get_or_create(&RoleOutcome {
                role: role.to_owned(),
                outcome: o.to_owned(),
            });
        }
        let _created = self.inner.duration.get_or_create(&RoleLabel {
            role: role.to_owned(),
        });
    }

    pub fn handled(&self, role: &str, outcome: &str, seconds: f64) {
        let inner = &self.inner;
        inner
            .messages
            .get_or_create(&RoleOutcome {
                role: role.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        inner
            .duration
            .get_or_create(&RoleLabel {
                role: role.to_owned(),
            })
            .observe(seconds);
    }

    pub fn decision(&self, outcome: &str) {
        self.inner
            .decisions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn correction(&self, reason: &str) {
        self.inner
            .corrections
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn rejected(&self, field: &str) {
        self.inner
            .rejected
            .get_or_create(&FieldLabel {
                field: field.to_owned(),
            })
            .inc();
    }

    /// `outcome` must be a fixed code, never text from a ticket or a model's answer.
    pub fn llm_request(&self, provider: &str, outcome: &str) {
        self.inner
            .llm_requests
            .get_or_create(&ProviderOutcome {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn llm_dropped_departments(&self, count: u64) {
        self.inner.llm_dropped_departments.inc_by(count);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}
