//! `switchboard bench-load`: tickets submitted open-loop at a fixed rate through the HTTP intake of a
//! fresh pipeline, as a connector sends them: each goes out on its tick whether or not the ones before
//! it were decided, so a slow pipeline shows as latency and backlog, not as a lower offered rate. It
//! reports the time from submit to decision, the rate achieved, and first the latency of tickets sent
//! one at a time to the idle pipeline. Offered more than the pipeline decides, the intake refuses
//! tickets with 503 and `Retry-After` once its backlog bound is passed (`intake.max_backlog`): those are
//! counted as refused, apart from other failures, and every ticket it accepted must still be decided.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde::Serialize;
use switchboard_accounts::Role;
use switchboard_knowledge::ColumnMap;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::bench::{BusUse, Pipeline, read_texts};
use crate::measure::{Machine, peak_memory_mib, quantile};
use crate::settings::Settings;

/// Tickets sent one at a time to the idle pipeline before the load.
const IDLE_TICKETS: usize = 20;
/// How long the bench waits for the last decisions once it stops submitting.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct BenchLoadArgs {
    pub history: PathBuf,
    /// Texts submitted in file order, from the start again when they run out.
    pub tickets: PathBuf,
    pub columns: ColumnMap,
    /// Tickets per second offered.
    pub rate: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub machine: Machine,
    pub bus: String,
    pub embedder: Option<String>,
    /// Submit to decision of tickets sent one at a time, each after the last was decided.
    pub idle_p50_ms: f64,
    pub idle_max_ms: f64,
    pub offered_per_second: f64,
    pub seconds: f64,
    pub submitted: usize,
    /// Submissions the intake refused because its backlog was over the bound (503 with
    /// `Retry-After`): not lost, the client was told to send them again.
    pub refused: usize,
    /// Submissions the intake did not accept for any other reason, with the first answer.
    pub rejected: usize,
    pub first_rejection: Option<String>,
    pub accepted: usize,
    pub decided: usize,
    /// Accepted but not decided within 30 s of the last submission.
    pub undecided: usize,
    /// Submissions per second actually sent; below the offered rate when the bench itself lagged.
    pub submitted_per_second: f64,
    /// Decisions per second, from the first submission to the last decision.
    pub decided_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub peak_memory_mib: Option<f64>,
}

pub async fn run(mut settings: Settings, args: &BenchLoadArgs) -> anyhow::Result<LoadReport> {
    ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be a positive number of tickets per second, not {}",
        args.rate
    );
    ensure!(
        args.seconds > 0.0 && args.seconds.is_finite(),
        "--seconds must be positive, not {}",
        args.seconds
    );
    let texts = read_texts(&args.tickets, &args.columns)?;
    // One client here sends what many connectors would: the per-credential limit would measure
    // itself, not the pipeline.
    settings.auth.requests_per_second = 0;
    let mut pipeline = Pipeline::start(
        &mut settings,
        &args.history,
        &args.columns,
        BusUse::Configured,
        &[],
    )
    .await?;
    let token =
        crate::accounts::create_token(&settings, &pipeline.bus, "bench-load", Role::Connector)
            .await?;
    let client = Client {
        http: reqwest::Client::new(),
        url: format!("http://{}/v1/tickets", pipeline.running.http_addr),
        token,
        // Keys no earlier run on the same bus has used.
        run: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    };

    let mut idle = Vec::with_capacity(IDLE_TICKETS);
    for (i, text) in texts.iter().cycle().take(IDLE_TICKETS).enumerate() {
        let key = client.key("idle", i);
        let submitted = Instant::now();
        if let Answer::Refused = client.submit(&key, text).await? {
            bail!("the idle pipeline refused a ticket as overloaded");
        }
        loop {
            let (ticket, at) =
                tokio::time::timeout(Duration::from_secs(60), pipeline.decided.recv())
                    .await
                    .context("no decision for 60 s")?
                    .context("decision stream ended")?;
            if ticket.idempotency_key == key {
                idle.push(at.duration_since(submitted).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    idle.sort_by(f64::total_cmp);

    let total = (args.rate * args.seconds).ceil() as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    // Late ticks are sent at once, so the offered rate holds on average.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let (answers, mut answered) = mpsc::unbounded_channel::<Refusal>();
    let mut pending: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut latencies = Vec::with_capacity(total);
    let (mut submitted, mut refused, mut rejected, mut first_rejection) = (0, 0, 0, None);
    let started = Instant::now();
    let mut submit_seconds = 0.0;
    let mut last_decision = started;
    let drain = tokio::time::sleep(Duration::MAX);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            _ = ticker.tick(), if submitted < total => {
                let key = client.key("load", submitted);
                let text = texts[submitted % texts.len()].clone();
                pending.insert(key.clone(), Instant::now());
                let (client, answers) = (client.clone(), answers.clone());
                tokio::spawn(async move {
                    let refusal = match client.submit(&key, &text).await {
                        Ok(Answer::Accepted) => return,
                        Ok(Answer::Refused) => Refusal::Overloaded,
                        Err(e) => Refusal::Other(format!("{key}: {e:#}")),
                    };
                    let _ = answers.send(refusal);
                });
                submitted += 1;
                if submitted == total {
                    submit_seconds = started.elapsed().as_secs_f64();
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN);
                }
            }
            Some(refusal) = answered.recv() => match refusal {
                Refusal::Overloaded => refused += 1,
                Refusal::Other(answer) => {
                    rejected += 1;
                    first_rejection.get_or_insert(answer);
                }
            },
            decided = pipeline.decided.recv() => {
                let (ticket, at) = decided.context("decision stream ended")?;
                if let Some(sent) = pending.remove(&ticket.idempotency_key) {
                    latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    last_decision = at;
                    if latencies.len() % 1000 == 0 {
                        eprintln!("bench-load: {}/{total} decided", latencies.len());
                    }
                }
            }
            () = &mut drain => break,
        }
        if submitted == total && latencies.len() + refused + rejected == total {
            break;
        }
    }
    let embedder = pipeline.kb.embedder().map(|e| e.name().to_owned());
    pipeline.stop().await;
    latencies.sort_by(f64::total_cmp);
    let decided = latencies.len();
    Ok(LoadReport {
        machine: Machine::read(),
        bus: format!("{:?}", settings.bus.kind).to_lowercase(),
        embedder,
        idle_p50_ms: quantile(&idle, 0.5),
        idle_max_ms: quantile(&idle, 1.0),
        offered_per_second: args.rate,
        seconds: args.seconds,
        submitted,
        refused,
        rejected,
        first_rejection,
        accepted: submitted - refused - rejected,
        decided,
        undecided: submitted - decided - refused - rejected,
        submitted_per_second: submitted as f64 / submit_seconds.max(f64::MIN_POSITIVE),
        decided_per_second: decided as f64
            / last_decision
                .duration_since(started)
                .as_secs_f64()
                .max(f64::MIN_POSITIVE),
        p50_ms: quantile(&latencies, 0.5),
        p90_ms: quantile(&latencies, 0.9),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: quantile(&latencies, 1.0),
        peak_memory_mib: peak_memory_mib(),
    })
}

/// Submits tickets to the intake over HTTP, as a connector does.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    run: u128,
}

/// What the intake said to a submission that was sent and answered.
enum Answer {
    Accepted,
    /// 503 with `Retry-After`: the backlog is over its bound.
    Refused,
}

/// Why a load ticket was not accepted.
enum Refusal {
    Overloaded,
    Other(String),
}

impl Client {
    fn key(&self, phase: &str, i: usize) -> String {
        format!("bench-load-{}-{phase}-{i}", self.run)
    }

    async fn submit(&self, key: &str, text: &str) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "text": text, "channel": "web", "idempotency_key": key }))
            .send()
            .await
            .context("sending a ticket to the intake")?;
        let status = response.status();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(Answer::Accepted);
        }
        let retry_after = response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER);
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && retry_after {
            return Ok(Answer::Refused);
        }
        let body = response.text().await.unwrap_or_default();
        bail!("the intake answered {status}: {body}");
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "machine      {}", self.machine)?;
        writeln!(
            f,
            "pipeline     every role in one process on the {} bus, embedder {}",
            self.bus,
            self.embedder.as_deref().unwrap_or("none (BM25 only)")
        )?;
        writeln!(
            f,
            "idle         one ticket at a time: p50 {:.1} ms, max {:.1} ms (of {IDLE_TICKETS})",
            self.idle_p50_ms, self.idle_max_ms
        )?;
        writeln!(
            f,
            "offered      {:.1} tickets/s for {:.0} s: {} submitted at {:.1}/s",
            self.offered_per_second, self.seconds, self.submitted, self.submitted_per_second,
        )?;
        writeln!(
            f,
            "answered     {} accepted, {} refused as overloaded (503, Retry-After), {} failed",
            self.accepted, self.refused, self.rejected
        )?;
        if let Some(first) = &self.first_rejection {
            writeln!(f, "             first failure: {first}")?;
        }
        writeln!(
            f,
            "decided      {} of the accepted at {:.1}/s, {} undecided",
            self.decided, self.decided_per_second, self.undecided
        )?;
        writeln!(
            f,
            "latency      p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )?;
        match self.peak_memory_mib {
            Some(mib) => write!(f, "peak memory  {mib:.0} MiB"),
            None => write!(f, "peak memory  n/a"),
        }
    }
}
