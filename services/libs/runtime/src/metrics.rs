//! Prometheus metrics, named by its conventions (base units, `_total`). One registry per process; every
//! role records into it and the binary serves it on `/metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A gauge holding a fraction or a time, not a count.
type FloatGauge = Gauge<f64, AtomicU64>;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderKind {
    provider: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DoorOutcome {
    door: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultReason {
    result: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DepartmentLabel {
    department: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemTypeLabel {
    problem_type: String,
}

/// Outcomes of handling one message, the `outcome` label of `switchboard_messages_total`.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const RETRY: &str = "retry";
    pub const DEAD_LETTER: &str = "dead_letter";
    /// On an internal subject without the roles' signature ([`crate::signing`]): not handled.
    pub const REJECTED: &str = "rejected";
}

/// Routing decisions, the `outcome` label of `switchboard_decisions_total`.
pub mod decision {
    pub const ROUTED: &str = "routed";
    pub const REVIEW: &str = "review";
    pub const ALL: [&str; 2] = [ROUTED, REVIEW];
}

/// What became of a submission at one of intake's doors: `switchboard_intake_submissions_total`.
pub mod submission {
    /// The doors: HTTP `POST /v1/tickets`, gRPC `Intake.Submit`, NATS `<prefix>.inbound.<channel>`.
    pub const HTTP: &str = "http";
    pub const GRPC: &str = "grpc";
    pub const NATS: &str = "nats";
    pub const DOORS: [&str; 3] = [HTTP, GRPC, NATS];
    /// A new ticket is on the bus.
    pub const ACCEPTED: &str = "accepted";
    /// The idempotency key was seen before: no new ticket.
    pub const DUPLICATE: &str = "duplicate";
    /// The submission was at fault (a field, its size, its content type).
    pub const REJECTED: &str = "rejected";
    /// Intake could not take it (the bus or the idempotency store failed); the sender may retry.
    pub const FAILED: &str = "failed";
    /// Refused because the pipeline is behind; the sender may retry after `Retry-After`.
    pub const OVERLOADED: &str = "overloaded";
    pub const OUTCOMES: [&str; 5] = [ACCEPTED, DUPLICATE, REJECTED, FAILED, OVERLOADED];
}

/// Assignment results and their reason codes: `switchboard_assignments_total{result,reason}`, and the
/// causes of `switchboard_reassignments_total{cause}`.
pub mod assignment {
    pub const ASSIGNED: &str = "assigned";
    pub const REASSIGNED: &str = "reassigned";
    pub const QUEUED: &str = "queued";
    /// Why the agent: they resolved the customer's last ticket; they have a skill for the problem
    /// type; they only work in the department.
    pub const RETURNING_CUSTOMER: &str = "returning_customer";
    pub const SKILLED: &str = "skilled";
    pub const IN_DEPARTMENT: &str = "in_department";
    /// Why queued: no agent works in the department; some do, none fits now.
    pub const NO_AGENT: &str = "no_agent_in_department";
    pub const NO_ONE_FITS: &str = "no_one_fits";
    /// Every (result, reason) pair the assign role counts.
    pub const RESULTS: [(&str, &str); 8] = [
        (ASSIGNED, RETURNING_CUSTOMER),
        (ASSIGNED, SKILLED),
        (ASSIGNED, IN_DEPARTMENT),
        (REASSIGNED, RETURNING_CUSTOMER),
        (REASSIGNED, SKILLED),
        (REASSIGNED, IN_DEPARTMENT),
        (QUEUED, NO_AGENT),
        (QUEUED, NO_ONE_FITS),
    ];
    /// Why a ticket was taken from its agent: they went offline or were removed; they did not pick
    /// it up within `assign.pickup_secs`.
    pub const AGENT_LEFT: &str = "agent_left";
    pub const PICKUP_DEADLINE: &str = "pickup_deadline";
    pub const CAUSES: [&str; 2] = [AGENT_LEFT, PICKUP_DEADLINE];
}

/// Kinds of LLM tokens, the `kind` label of `switchboard_llm_tokens_total`.
pub mod tokens {
    pub const PROMPT: &str = "prompt";
    pub const COMPLETION: &str = "completion";
}

/// Upper bounds of `switchboard_handle_duration_seconds`: 100 µs doubling to ~52 s, so a local parse
/// lands in the low buckets and an LLM call up to its 20 s default timeout, with its retries, up to
/// the 30 s default ack wait, still below the top one.
fn handle_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 20)
}

/// Upper bounds of `switchboard_llm_request_duration_seconds`, one request to the provider: chat
/// completions take from a fraction of a second to tens of seconds. The default `llm.timeout_secs`
/// (20) is a bound, so a timed-out request lands above it and the share of them reads off the
/// buckets; 60 s covers any timeout below the 60 s ack wait the chart sets.
const LLM_BUCKETS: [f64; 14] = [
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0,
];

/// Upper bounds of `switchboard_handling_time_seconds`, receipt to resolution: minutes to a week.
const HANDLING_BUCKETS: [f64; 12] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 345600.0,
    604800.0,
];

/// A 0/1 state (a circuit breaker's), kept in a gauge. `Default` is one not registered anywhere.
#[derive(Debug, Clone, Default)]
pub struct Flag(Gauge);

impl Flag {
    pub fn set(&self, on: bool) {
        self.0.set(i64::from(on));
    }
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    messages: Family<RoleOutcome, Counter>,
    duration: Family<RoleLabel, Histogram>,
    pending: Family<RoleLabel, Gauge>,
    decisions: Family<OutcomeLabel, Counter>,
    corrections: Family<ReasonLabel, Counter>,
    dispatch_accuracy: FloatGauge,
    review_rate: FloatGauge,
    handling_time: Histogram,
    rejected: Family<FieldLabel, Counter>,
    submissions: Family<DoorOutcome, Counter>,
    llm_requests: Family<ProviderOutcome, Counter>,
    llm_duration: Family<ProviderLabel, Histogram>,
    llm_tokens: Family<ProviderKind, Counter>,
    llm_breaker: Family<ProviderLabel, Gauge>,
    llm_dropped_departments: Counter,
    assignments: Family<ResultReason, Counter>,
    reassignments: Family<CauseLabel, Counter>,
    queue_depth: Family<DepartmentLabel, Gauge>,
    /// Departments whose queue depth was ever set: one that empties reads 0 rather than vanishing.
    queued_departments: Mutex<BTreeSet<String>>,
    hot_issues: Family<ProblemTypeLabel, Gauge>,
    /// The problem types `hot_issues` holds a series of.
    hot_types: Mutex<BTreeSet<String>>,
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
        let build_info = Family::<VersionLabel, Gauge>::default();
        registry.register(
            "build_info",
            "The binary's version, as a label of a series that is always 1",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        let messages = Family::<RoleOutcome, Counter>::default();
        registry.register(
            "messages",
            "Messages handled per role, by outcome",
            messages.clone(),
        );
        let duration = Family::<RoleLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(handle_buckets())
        });
        registry.register(
            "handle_duration_seconds",
            "Time a role spent on one message",
            duration.clone(),
        );
        let pending = Family::<RoleLabel, Gauge>::default();
        registry.register(
            "consumer_pending",
            "Messages for a role's durable consumer not yet acknowledged (waiting or in flight), as last polled; every replica of a role reports the same consumer",
            pending.clone(),
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
        let dispatch_accuracy = FloatGauge::default();
        registry.register(
            "dispatch_accuracy",
            "Share of judged tickets (resolved or corrected) resolved without a correction, since the metrics role started; as GET /v1/stats",
            dispatch_accuracy.clone(),
        );
        let review_rate = FloatGauge::default();
        registry.register(
            "review_rate",
            "Share of decisions sent to human review, since the metrics role started; as GET /v1/stats",
            review_rate.clone(),
        );
        let handling_time = Histogram::new(HANDLING_BUCKETS);
        registry.register(
            "handling_time_seconds",
            "Time from a ticket's receipt to its resolution, observed by the metrics role as each resolution arrives",
            handling_time.clone(),
        );
        let rejected = Family::<FieldLabel, Counter>::default();
        registry.register(
            "tickets_rejected",
            "Tickets rejected at intake, by the field at fault",
            rejected.clone(),
        );
        let submissions = Family::<DoorOutcome, Counter>::default();
        registry.register(
            "intake_submissions",
            "Submissions at intake's doors (http, grpc, nats), by outcome",
            submissions.clone(),
        );
        let llm_requests = Family::<ProviderOutcome, Counter>::default();
        registry.register(
            "llm_requests",
            "LLM parser requests per provider, by outcome (ok or why not)",
            llm_requests.clone(),
        );
        let llm_duration = Family::<ProviderLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(LLM_BUCKETS)
        });
        registry.register(
            "llm_request_duration_seconds",
            "Time of one request to the LLM provider, answered, failed or timed out",
            llm_duration.clone(),
        );
        let llm_tokens = Family::<ProviderKind, Counter>::default();
        registry.register(
            "llm_tokens",
            "Tokens the LLM provider reported using, by kind (prompt, completion)",
            llm_tokens.clone(),
        );
        let llm_breaker = Family::<ProviderLabel, Gauge>::default();
        registry.register(
            "llm_breaker_open",
            "1 while the LLM circuit breaker keeps tickets from the provider (open or trying one request), 0 while closed",
            llm_breaker.clone(),
        );
        let llm_dropped_departments = Counter::default();
        registry.register(
            "llm_dropped_departments",
            "Departments an LLM suggested that are not in the catalog, dropped",
            llm_dropped_departments.clone(),
        );
        let assignments = Family::<ResultReason, Counter>::default();
        registry.register(
            "assignments",
            "Tickets given to an agent (assigned, reassigned) or queued, by reason code",
            assignments.clone(),
        );
        let reassignments = Family::<CauseLabel, Counter>::default();
        registry.register(
            "reassignments",
            "Tickets taken from their agent and given to another or queued again, by cause",
            reassignments.clone(),
        );
        let queue_depth = Family::<DepartmentLabel, Gauge>::default();
        registry.register(
            "queue_depth",
            "Tickets waiting in a department's assignment queue, as the assign role last worked it",
            queue_depth.clone(),
        );
        let hot_issues = Family::<ProblemTypeLabel, Gauge>::default();
        registry.register(
            "hot_issue_tickets",
            "Tickets of each of the most frequent problem types, as the metrics role's GET /v1/stats hot_issues lists them; a type that leaves the list leaves the series, so the labels stay bounded though problem types are free text",
            hot_issues.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                messages,
                duration,
                pending,
                decisions,
                corrections,
                dispatch_accuracy,
                review_rate,
                handling_time,
                rejected,
                submissions,
                llm_requests,
                llm_duration,
                llm_tokens,
                llm_breaker,
                llm_dropped_departments,
                assignments,
                reassignments,
                queue_depth,
                queued_departments: Mutex::new(BTreeSet::new()),
                hot_issues,
                hot_types: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Creates a role's series at zero, so `/metrics` lists them from the start and `rate()` sees the first
    /// message rather than a series appearing out of nothing.
    pub fn role_started(&self, role: &str) {
        for o in [
            outcome::OK,
            outcome::RETRY,
            outcome::DEAD_LETTER,
            outcome::REJECTED,
        ] {
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

    /// The role's consumer's backlog as just polled.
    pub fn pending(&self, role: &str, messages: u64) {
        self.inner
            .pending
            .get_or_create(&RoleLabel {
                role: role.to_owned(),
            })
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
    }

    /// Creates the decision and correction series at zero (the metrics role, at start), so the alerts'
    /// ratios have both sides from the first decision. `reasons` are every correction reason's name.
    pub fn decisions_started<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        for o in decision::ALL {
            let _created = self.inner.decisions.get_or_create(&OutcomeLabel {
                outcome: o.to_owned(),
            });
        }
        for reason in reasons {
            let _created = self.inner.corrections.get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            });
        }
    }

    /// `outcome` is one of [`decision::ALL`].
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

    /// The cockpit's dispatch accuracy and review rate, the figures `GET /v1/stats` answers.
    pub fn quality(&self, dispatch_accuracy: f64, review_rate: f64) {
        self.inner.dispatch_accuracy.set(dispatch_accuracy);
        self.inner.review_rate.set(review_rate);
    }

    /// One resolution, `seconds` after its ticket was received.
    pub fn handling_time(&self, seconds: f64) {
        self.inner.handling_time.observe(seconds);
    }

    pub fn rejected(&self, field: &str) {
        self.inner
            .rejected
            .get_or_create(&FieldLabel {
                field: field.to_owned(),
            })
            .inc();
    }

    /// Creates every door's submission series at zero (intake, at start).
    pub fn submissions_started(&self) {
        for door in submission::DOORS {
            for o in submission::OUTCOMES {
                let _created = self.inner.submissions.get_or_create(&DoorOutcome {
                    door: door.to_owned(),
                    outcome: o.to_owned(),
                });
            }
        }
    }

    /// `door` is one of [`submission::DOORS`], `outcome` one of [`submission::OUTCOMES`].
    pub fn submission(&self, door: &str, outcome: &str) {
        self.inner
            .submissions
            .get_or_create(&DoorOutcome {
                door: door.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Creates a provider's series at zero (the parser, at start): a request for each of `outcomes`,
    /// the request duration, the tokens, and its breaker, closed.
    pub fn llm_started<'a>(&self, provider: &str, outcomes: impl IntoIterator<Item = &'a str>) {
        let inner = &self.inner;
        for o in outcomes {
            let _created = inner.llm_requests.get_or_create(&ProviderOutcome {
                provider: provider.to_owned(),
                outcome: o.to_owned(),
            });
        }
        let label = ProviderLabel {
            provider: provider.to_owned(),
        };
        let _created = inner.llm_duration.get_or_create(&label);
        for kind in [tokens::PROMPT, tokens::COMPLETION] {
            let _created = inner.llm_tokens.get_or_create(&ProviderKind {
                provider: provider.to_owned(),
                kind: kind.to_owned(),
            });
        }
        inner.llm_breaker.get_or_create(&label).set(0);
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

    /// One request to the provider took `seconds`, whatever its outcome.
    pub fn llm_duration(&self, provider: &str, seconds: f64) {
        self.inner
            .llm_duration
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .observe(seconds);
    }

    /// Tokens the provider reported for one answer; `kind` is one of the [`tokens`] kinds.
    pub fn llm_tokens(&self, provider: &str, kind: &str, count: u64) {
        self.inner
            .llm_tokens
            .get_or_create(&ProviderKind {
                provider: provider.to_owned(),
                kind: kind.to_owned(),
            })
            .inc_by(count);
    }

    /// The provider's breaker state, for the breaker to set as it opens and closes.
    pub fn llm_breaker(&self, provider: &str) -> Flag {
        Flag(self.inner.llm_breaker.get_or_create_owned(&ProviderLabel {
            provider: provider.to_owned(),
        }))
    }

    pub fn llm_dropped_departments(&self, count: u64) {
        self.inner.llm_dropped_departments.inc_by(count);
    }

    /// Creates the assignment series at zero (the assign role, at start).
    pub fn assignments_started(&self) {
        for (result, reason) in assignment::RESULTS {
            let _created = self.inner.assignments.get_or_create(&ResultReason {
                result: result.to_owned(),
                reason: reason.to_owned(),
            });
        }
        for cause in assignment::CAUSES {
            let _created = self.inner.reassignments.get_or_create(&CauseLabel {
                cause: cause.to_owned(),
            });
        }
    }

    /// One of [`assignment::RESULTS`].
    pub fn assignment(&self, result: &str, reason: &str) {
        self.inner
            .assignments
            .get_or_create(&ResultReason {
                result: result.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// `cause` is one of [`assignment::CAUSES`].
    pub fn reassignment(&self, cause: &str) {
        self.inner
            .reassignments
            .get_or_create(&CauseLabel {
                cause: cause.to_owned(),
            })
            .inc();
    }

    /// The queues as just read, tickets by department. Departments are the catalog's (a ticket
    /// reaches assignment with the department its decision named), so the label stays bounded; one
    /// seen before and missing now has an empty queue.
    pub fn queue_depths(&self, depths: &BTreeMap<String, u64>) {
        let mut seen = self
            .inner
            .queued_departments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.extend(depths.keys().cloned());
        for department in seen.iter() {
            let depth = depths.get(department).copied().unwrap_or(0);
            self.inner
                .queue_depth
                .get_or_create(&DepartmentLabel {
                    department: department.clone(),
                })
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
    }

    /// The most frequent problem types with their tickets: the series of types no longer among them
    /// go, the others are set.
    pub fn hot_issues(&self, hot: &[(String, u64)]) {
        let family = &self.inner.hot_issues;
        let mut types = self
            .inner
            .hot_types
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now: BTreeSet<String> = hot.iter().map(|(t, _)| t.clone()).collect();
        for problem_type in types.difference(&now) {
            family.remove(&ProblemTypeLabel {
                problem_type: problem_type.clone(),
            });
        }
        for (problem_type, tickets) in hot {
            family
                .get_or_create(&ProblemTypeLabel {
                    problem_type: problem_type.clone(),
                })
                .set(i64::try_from(*tickets).unwrap_or(i64::MAX));
        }
        *types = now;
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one sample line starting with `series` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn known_label_values_start_at_zero_and_build_info_is_one() {
        let m = Metrics::new();
        m.decisions_started(["CORRECTION_REASON_OTHER"]);
        m.submissions_started();
        m.assignments_started();
        m.llm_started("deepseek", ["ok", "timeout"]);
        let text = m.encode();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(
                &text,
                &format!("switchboard_build_info{{version=\"{version}\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        for series in [
            r#"switchboard_decisions_total{outcome="review"}"#,
            r#"switchboard_corrections_total{reason="CORRECTION_REASON_OTHER"}"#,
            r#"switchboard_intake_submissions_total{door="grpc",outcome="rejected"}"#,
            r#"switchboard_assignments_total{result="queued",reason="no_agent_in_department"}"#,
            r#"switchboard_reassignments_total{cause="pickup_deadline"}"#,
            r#"switchboard_llm_requests_total{provider="deepseek",outcome="timeout"}"#,
            r#"switchboard_llm_tokens_total{provider="deepseek",kind="completion"}"#,
            r#"switchboard_llm_breaker_open{provider="deepseek"}"#,
            r#"switchboard_llm_request_duration_seconds_count{provider="deepseek"}"#,
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
        }
    }

    #[test]
    fn histograms_reach_past_the_llm_timeout() {
        let m = Metrics::new();
        m.role_started("parser");
        m.handled("parser", outcome::OK, 25.0);
        m.llm_started("deepseek", []);
        m.llm_duration("deepseek", 21.0);
        let text = m.encode();
        // A 25 s message falls in a finite bucket, not only in +Inf.
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    r#"switchboard_handle_duration_seconds_bucket{{le="{le}",role="parser"}}"#
                ),
            )
        };
        assert_eq!(bucket("13.1072"), Some(0.0), "{text}");
        assert_eq!(bucket("26.2144"), Some(1.0), "{text}");
        let llm = |le: &str| {
            sample(
                &text,
                &format!(
                    r#"switchboard_llm_request_duration_seconds_bucket{{le="{le}",provider="deepseek"}}"#
                ),
            )
        };
        // A request past the default 20 s timeout lies above the 20 s bound.
        assert_eq!(llm("20.0"), Some(0.0), "{text}");
        assert_eq!(llm("25.0"), Some(1.0), "{text}");
    }

    #[test]
    fn a_department_whose_queue_empties_reads_zero() {
        let m = Metrics::new();
        m.queue_depths(&BTreeMap::from([
            ("billing".to_owned(), 3),
            ("auth".to_owned(), 1),
        ]));
        m.queue_depths(&BTreeMap::from([("auth".to_owned(), 2)]));
        let text = m.encode();
        assert_eq!(
            sample(&text, r#"switchboard_queue_depth{department="billing"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"switchboard_queue_depth{department="auth"}"#),
            Some(2.0)
        );
    }

    #[test]
    fn the_breaker_flag_is_the_gauge() {
        let m = Metrics::new();
        m.llm_started("deepseek", []);
        m.llm_breaker("deepseek").set(true);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                r#"switchboard_llm_breaker_open{provider="deepseek"}"#
            ),
            Some(1.0)
        );
    }

    /// Only the types currently among the most frequent have a series: one that leaves goes.
    #[test]
    fn hot_issue_series_follow_the_list() {
        let m = Metrics::new();
        m.hot_issues(&[("login".into(), 3), ("refund \"late\"".into(), 2)]);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                r#"switchboard_hot_issue_tickets{problem_type="login"}"#
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"switchboard_hot_issue_tickets{problem_type="refund \"late\""}"#
            ),
            Some(2.0),
            "{text}"
        );
        m.hot_issues(&[("login".into(), 5), ("outage".into(), 4)]);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                r#"switchboard_hot_issue_tickets{problem_type="login"}"#
            ),
            Some(5.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"switchboard_hot_issue_tickets{problem_type="outage"}"#
            ),
            Some(4.0)
        );
        assert!(!text.contains("refund"), "{text}");
    }
}
