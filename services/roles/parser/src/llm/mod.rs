//! The LLM parser: an OpenAI-compatible chat-completions provider (DeepSeek by default) asked for a JSON
//! object, with the answer schema-checked, departments limited to the catalog, retries with backoff
//! inside a per-ticket deadline, per-provider concurrency and rate limits, and a circuit breaker.

mod client;
mod config;
mod error;
pub(crate) mod prompt;
mod schema;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_proto::{Entity, Parsed, ProblemTypeSource, Ticket};
use switchboard_runtime::Metrics;
use switchboard_runtime::metrics::tokens;
use tokio::time::Instant;
use tracing::Instrument;

use crate::breaker::CircuitBreaker;
use crate::catalog::DepartmentCatalog;
use crate::limiter::Limiter;
use crate::{LocalParser, ParseError, Parser};

use client::ChatClient;
pub use config::{LlmConfig, LlmConfigError};
pub use error::LlmError;
use schema::Checked;

/// Longest delay between attempts, however many there were.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum LlmSetupError {
    #[error("invalid LLM configuration")]
    Config(#[from] LlmConfigError),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

#[derive(Debug)]
pub struct LlmParser {
    /// `llm:<provider>/<model>`: recorded in every section it produces.
    name: String,
    provider: String,
    client: ChatClient,
    catalog: DepartmentCatalog,
    breaker: CircuitBreaker,
    limiter: Limiter,
    metrics: Metrics,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    /// Everything one ticket may spend here, waits and retries included. The caller sets it below the
    /// message's ack wait, so an answer never arrives for a message the bus already gave to another
    /// replica.
    deadline: Duration,
}

impl LlmParser {
    pub fn new(
        config: &LlmConfig,
        catalog: DepartmentCatalog,
        metrics: Metrics,
        deadline: Duration,
    ) -> Result<Self, LlmSetupError> {
        config.check()?;
        let client = ChatClient::new(config, config.api_key()?).map_err(LlmSetupError::Client)?;
        metrics.llm_started(
            &config.provider,
            std::iter::once("ok").chain(LlmError::REASONS),
        );
        Ok(Self {
            name: format!("llm:{}/{}", config.provider, config.model),
            provider: config.provider.clone(),
            client,
            catalog,
            breaker: CircuitBreaker::new(
                config.breaker_failures,
                Duration::from_secs(config.breaker_cooldown_secs),
            )
            .reporting_to(metrics.llm_breaker(&config.provider)),
            limiter: Limiter::new(config.max_concurrency, config.requests_per_second),
            metrics,
            timeout: config.timeout(),
            max_retries: config.max_retries,
            backoff: Duration::from_millis(config.backoff_ms),
            deadline,
        })
    }

    /// Attempts until one answer passes the schema, the error is not worth retrying, the retries are
    /// spent, or the next attempt could not finish before the deadline.
    async fn call(&self, ticket: &Ticket, started: Instant) -> Result<Checked, LlmError> {
        let departments = self.catalog.departments();
        let allowed: BTreeSet<String> = departments.iter().map(|d| d.id.clone()).collect();
        let system = prompt::system(&departments);
        let user = prompt::user(&ticket.text);
        let mut attempt = 0;
        loop {
            let remaining = self.deadline.saturating_sub(started.elapsed());
            // Waiting for our own limits is not the provider's fault: it is bounded by the deadline but
            // never counts against the breaker.
            let Ok(slot) = tokio::time::timeout(remaining, self.limiter.acquire()).await else {
                self.record("deadline");
                return Err(LlmError::Deadline(self.deadline));
            };
            let Some(pass) = self.breaker.pass() else {
                self.record("breaker_open");
                return Err(LlmError::BreakerOpen);
            };
            let budget = self
                .timeout
                .min(self.deadline.saturating_sub(started.elapsed()));
            let asked = Instant::now();
            let answer = tokio::time::timeout(budget, self.client.complete(&system, &user)).await;
            self.metrics
                .llm_duration(&self.provider, asked.elapsed().as_secs_f64());
            drop(slot);
            let result = match answer {
                Ok(Ok((content, usage))) => {
                    if let Some(usage) = usage {
                        self.count_tokens(usage);
                    }
                    schema::check(&content, &allowed)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(LlmError::Timeout(budget)),
            };
            let e = match result {
                Ok(checked) => {
                    pass.succeeded();
                    self.record("ok");
                    return Ok(checked);
                }
                Err(e) => e,
            };
            pass.failed();
            self.record(e.reason());
            let delay = self.delay(attempt, &e);
            if !e.retryable()
                || attempt >= self.max_retries
                || started.elapsed() + delay >= self.deadline
            {
                return Err(e);
            }
            tracing::debug!(
                ticket = %ticket.id,
                attempt,
                reason = e.reason(),
                "LLM attempt failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Doubling from the configured backoff, or what a 429's `Retry-After` asked for if longer.
    fn delay(&self, attempt: u32, e: &LlmError) -> Duration {
        let doubled = self.backoff.saturating_mul(1 << attempt.min(16));
        let asked = match e {
            LlmError::RateLimited { retry_after } => retry_after.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        doubled.max(asked).min(MAX_BACKOFF)
    }

    fn record(&self, outcome: &str) {
        self.metrics.llm_request(&self.provider, outcome);
    }

    /// Tokens are spent whether or not the answer passes the schema, so every answer's are counted.
    fn count_tokens(&self, usage: client::Usage) {
        let provider = &self.provider;
        self.metrics
            .llm_tokens(provider, tokens::PROMPT, usage.prompt_tokens);
        self.metrics
            .llm_tokens(provider, tokens::COMPLETION, usage.completion_tokens);
    }

    /// The section, from the checked answer and what the local parser finds in the same text.
    fn section(&self, ticket: &Ticket, checked: Checked) -> Parsed {
        let local = LocalParser.parse_text(&ticket.text);
        if checked.dropped > 0 {
            self.metrics.llm_dropped_departments(checked.dropped as u64);
            tracing::info!(
                ticket = %ticket.id,
                dropped = checked.dropped,
                "LLM suggested departments outside the catalog; dropped"
            );
        }
        let text = ticket.text.to_lowercase();
        // The router fires a rule when the ticket's text or its keywords hold the rule's keyword. A
        // keyword the ticket does not contain could fire a rule the text alone would not, so only
        // keywords taken from the text are kept: the model can then not route through the rules either.
        let keywords: Vec<String> = checked
            .keywords
            .into_iter()
            .filter(|k| text.contains(&k.to_lowercase()))
            .collect();
        // Pattern entities are exact (intake's placeholders, order numbers); the model's are added when
        // they quote the ticket, so it cannot invent facts.
        let mut entities: Vec<Entity> = local.entities;
        for e in checked.entities {
            if text.contains(&e.value.to_lowercase())
                && !entities.iter().any(|have| have.value == e.value)
            {
                entities.push(e);
            }
        }
        // An answer without a problem type keeps the local guess, marked as one, so the retriever can
        // still give the ticket the type of its nearest neighbours; the model's own type is final.
        let (problem_type, problem_type_source) = if checked.problem_type.is_empty() {
            (local.problem_type, local.problem_type_source)
        } else {
            (checked.problem_type, ProblemTypeSource::Parser.into())
        };
        Parsed {
            parser: self.name.clone(),
            summary: checked.summary,
            problem_type,
            problem_type_source,
            problem_type_neighbours: Vec::new(),
            keywords: if keywords.is_empty() {
                local.keywords
            } else {
                keywords
            },
            entities,
            // The sentiment stage escalates from a complexity tier. The local tier is computed from what
            // the text demonstrably holds (length, problem sentences, entities); the model may judge a
            // ticket simpler than that, never more complex: an honest answer and one a ticket talked the
            // model into ("complexity 5", "escalate this") look the same, and any raise, even by one
            // tier, could carry a ticket into the escalation tier on its own say-so.
            complexity: checked.complexity.clamp(1, local.complexity.max(1)),
            suggested_departments: checked.departments,
            language: checked.language,
        }
    }
}

#[async_trait]
impl Parser for LlmParser {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn parse(&self, ticket: &Ticket) -> Result<Parsed, ParseError> {
        let started = Instant::now();
        // Identifiers only: the ticket text never goes into a span.
        let span = tracing::info_span!(
            "llm.parse",
            provider = %self.provider,
            parser = %self.name,
            ticket = %ticket.id,
        );
        // `call` keeps to the deadline itself; this is the guarantee, should a wait inside it not.
        let call = tokio::time::timeout(self.deadline, self.call(ticket, started)).instrument(span);
        let result = match call.await {
            Ok(result) => result,
            Err(_) => {
                self.record("deadline");
                Err(LlmError::Deadline(self.deadline))
            }
        };
        match result {
            Ok(checked) => Ok(self.section(ticket, checked)),
            Err(e) if e.is_invalid_output() => Err(ParseError::InvalidOutput {
                parser: self.name.clone(),
                source: e.into(),
            }),
            Err(e) => Err(ParseError::Unavailable {
                parser: self.name.clone(),
                source: e.into(),
            }),
        }
    }
}
