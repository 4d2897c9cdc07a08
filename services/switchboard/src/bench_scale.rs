//! `switchboard bench-scale`: how the pipeline's throughput grows with parser replicas on real NATS while
//! a stand-in LLM answers every request after a fixed latency, and what each role costs in CPU per
//! ticket, so a platform team can size a deployment.
//!
//! Every role instance is a process of its own (`switchboard run --roles ROLE`, this binary), as the
//! chart deploys them: the bench's configuration, its own data directory and NATS connection, and the
//! CPU it spends read from `/proc/PID/stat`. The retriever's knowledge base is imported before it
//! starts, and the tickets are submitted once every instance answers `/readyz`. Each replica count
//! gets a stream, subjects and buckets of its own, deleted after it. The tickets are submitted at once
//! over HTTP, as connectors do; throughput is tickets over the time from the first submission to the
//! last decision.
//!
//! The stand-in speaks the OpenAI chat-completions protocol and answers every request with the same
//! parse after `--llm-latency-ms`: what is measured is a provider's latency, not its answers. Each
//! parser replica keeps at most `llm.max_concurrency` requests in flight (providers cap concurrency per
//! key); the per-process rate `llm.requests_per_second` is lifted, so latency and concurrency bound a
//! replica, as they do under a provider whose rate allows it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde::Serialize;
use switchboard_accounts::Role;
use switchboard_knowledge::{ColumnMap, import_csv};
use switchboard_runtime::Subjects;

use crate::app::{connect_bus, delete_bus_data};
use crate::bench::{decisions, read_texts};
use crate::measure::{Machine, quantile};
use crate::settings::{BusKind, Settings};

/// The roles a ticket passes through to its decision, each in an instance of its own.
const STAGES: [&str; 4] = ["intake", "sentiment", "retriever", "router"];
/// How long the bench waits for the last decision once every ticket is submitted.
const DRAIN: Duration = Duration::from_secs(120);
/// How long an instance may take to start, the retriever's classifier training included.
const READY_WITHIN: Duration = Duration::from_secs(600);
/// Linux reports CPU time in clock ticks of 1/100 s (`USER_HZ`) on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct BenchScaleArgs {
    /// The configuration file the bench was started with, which every instance starts with too.
    pub config: Option<PathBuf>,
    pub history: PathBuf,
    pub tickets: PathBuf,
    pub columns: ColumnMap,
    /// Parser replica counts, one run each.
    pub replicas: Vec<usize>,
    pub llm_latency_ms: u64,
    /// Tickets per run.
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub machine: Machine,
    pub llm_latency_ms: u64,
    /// Requests one parser replica keeps in flight at most.
    pub llm_max_concurrency: usize,
    pub tickets: usize,
    pub runs: Vec<ScaleRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleRun {
    pub parser_replicas: usize,
    pub seconds: f64,
    pub decided_per_second: f64,
    /// This run's throughput over the first run's.
    pub speedup: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    /// Requests the stand-in answered: one per ticket unless the parser retried.
    pub llm_requests: usize,
    /// Tickets the LLM parsed; the others fell back to the local parser.
    pub parsed_by_llm: usize,
    /// CPU milliseconds per ticket by role, each read from its processes (the parser's summed over its
    /// replicas), and `bench` for the bench's own process: the client submitting over HTTP and the
    /// reader of decisions.
    pub cpu_ms_per_ticket: BTreeMap<String, f64>,
}

pub async fn run(settings: Settings, args: &BenchScaleArgs) -> anyhow::Result<ScaleReport> {
    ensure!(
        settings.bus.kind == BusKind::Nats,
        "bench-scale measures replicas on real NATS: set bus.kind = \"nats\" (SWITCHBOARD__BUS__KIND=nats) and bus.nats.url"
    );
    ensure!(args.count > 0, "--count must be at least 1");
    ensure!(
        !args.replicas.is_empty() && args.replicas.iter().all(|&r| r > 0),
        "--replicas must list replica counts of at least 1, such as 1,2,4"
    );
    let texts = read_texts(&args.tickets, &args.columns)?;
    let stand_in = StandIn::start(Duration::from_millis(args.llm_latency_ms)).await?;
    let mut runs: Vec<ScaleRun> = Vec::new();
    for &replicas in &args.replicas {
        eprintln!("bench-scale: {replicas} parser replica(s)");
        let mut run = measure(&settings, args, &texts, &stand_in, replicas).await?;
        run.speedup = runs.first().map_or(1.0, |first| {
            run.decided_per_second / first.decided_per_second
        });
        runs.push(run);
    }
    Ok(ScaleReport {
        machine: Machine::read(),
        llm_latency_ms: args.llm_latency_ms,
        llm_max_concurrency: settings.llm.max_concurrency,
        tickets: args.count,
        runs,
    })
}

/// One replica count: a fresh deployment on its own stream, the tickets through it, then torn down.
async fn measure(
    base: &Settings,
    args: &BenchScaleArgs,
    texts: &[String],
    stand_in: &StandIn,
    replicas: usize,
) -> anyhow::Result<ScaleRun> {
    let mut settings = base.clone();
    let unique = format!(
        "scale{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    settings.subject_prefix.clone_from(&unique);
    settings.bus.nats.stream = unique.to_uppercase();
    settings.bus.nats.kv_prefix.clone_from(&unique);
    let outcome = deploy_and_run(&settings, args, texts, stand_in, replicas).await;
    let cleaned = delete_bus_data(&settings).await;
    let run = outcome?;
    cleaned
        .map_err(|e| anyhow::anyhow!(e))
        .context("deleting the run's stream and buckets")?;
    Ok(run)
}

async fn deploy_and_run(
    settings: &Settings,
    args: &BenchScaleArgs,
    texts: &[String],
    stand_in: &StandIn,
    replicas: usize,
) -> anyhow::Result<ScaleRun> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let launch = Launch {
        settings,
        config: args.config.as_deref(),
        llm: format!("http://{}", stand_in.addr),
        scratch: scratch.path(),
    };
    // The retriever's knowledge base, imported before it starts, as an operator does; it trains its
    // classifier while warming up.
    let retriever_data = scratch.path().join("sb-retriever");
    let mut import_settings = settings.clone();
    import_settings.data_dir.clone_from(&retriever_data);
    let kb = crate::knowledge::open(&import_settings).await?;
    import_csv(&kb, &args.history, &args.columns, &mut |_| {})
        .await
        .with_context(|| format!("importing {}", args.history.display()))?;
    drop(kb);

    let mut instances = Vec::new();
    for role in STAGES {
        instances.push(launch.start(role, &format!("sb-{role}"))?);
    }
    for i in 1..=replicas {
        instances.push(launch.start("parser", &format!("sb-parser-{i}"))?);
    }
    for instance in &mut instances {
        instance.ready().await?;
    }

    let bus = connect_bus(settings).await?;
    let mut decided = decisions(&bus, &Subjects::new(&settings.subject_prefix)).await?;
    let token =
        crate::accounts::create_token(settings, &bus, "bench-scale", Role::Connector).await?;
    let intake = instances
        .iter()
        .find(|i| i.role == "intake")
        .context("no intake instance")?;
    let url = format!("http://{}/v1/tickets", intake.http);
    let http = reqwest::Client::new();
    let cpu_before: Vec<f64> = instances.iter().map(Instance::cpu_seconds).collect();
    let bench_before = process_cpu_seconds("self");
    let requests_before = stand_in.requests.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut sent = BTreeMap::new();
    let mut submissions = tokio::task::JoinSet::new();
    for (i, text) in texts.iter().cycle().take(args.count).enumerate() {
        let key = format!("bench-scale-{i}");
        sent.insert(key.clone(), Instant::now());
        let submit = http
            .post(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "text": text, "channel": "api", "idempotency_key": key }));
        submissions.spawn(async move {
            let response = submit
                .send()
                .await
                .context("sending a ticket to the intake")?;
            let status = response.status();
            ensure!(
                status == reqwest::StatusCode::ACCEPTED,
                "the intake answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
            anyhow::Ok(())
        });
    }
    let mut latencies = Vec::with_capacity(args.count);
    let mut parsed_by_llm = 0;
    let mut last = started;
    while latencies.len() < args.count {
        let next = tokio::select! {
            Some(submitted) = submissions.join_next() => {
                submitted.context("a submission panicked")??;
                continue;
            }
            next = tokio::time::timeout(DRAIN, decided.recv()) => next,
        };
        let (ticket, at) = next
            .with_context(|| {
                format!(
                    "{} of {} tickets decided, then none for {DRAIN:?}",
                    latencies.len(),
                    args.count
                )
            })?
            .context("the decision stream ended")?;
        if let Some(at_sent) = sent.remove(&ticket.idempotency_key) {
            latencies.push(at.duration_since(at_sent).as_secs_f64() * 1000.0);
            last = at;
            parsed_by_llm +=
                usize::from(ticket.parsed.is_some_and(|p| p.parser.starts_with("llm:")));
        }
    }
    let seconds = last.duration_since(started).as_secs_f64();
    let mut cpu_ms_per_ticket = BTreeMap::new();
    for (instance, before) in instances.iter().zip(&cpu_before) {
        let spent = instance.cpu_seconds() - before;
        *cpu_ms_per_ticket
            .entry(instance.role.clone())
            .or_insert(0.0) += spent * 1000.0 / args.count as f64;
    }
    cpu_ms_per_ticket.insert(
        "bench".into(),
        (process_cpu_seconds("self") - bench_before) * 1000.0 / args.count as f64,
    );
    let llm_requests = stand_in.requests.load(Ordering::Relaxed) - requests_before;
    drop(instances);
    latencies.sort_by(f64::total_cmp);
    Ok(ScaleRun {
        parser_replicas: replicas,
        seconds,
        decided_per_second: args.count as f64 / seconds.max(f64::MIN_POSITIVE),
        speedup: 1.0,
        p50_ms: quantile(&latencies, 0.5),
        p90_ms: quantile(&latencies, 0.9),
        llm_requests,
        parsed_by_llm,
        cpu_ms_per_ticket,
    })
}

/// What every instance of one run shares: the bench's configuration, the run's bus names (in
/// `settings`), the stand-in's address and a scratch directory for data and logs.
struct Launch<'a> {
    settings: &'a Settings,
    config: Option<&'a Path>,
    llm: String,
    scratch: &'a Path,
}

impl Launch<'_> {
    /// `switchboard run --roles ROLE` as a process of its own: the bench's configuration and
    /// environment, with the run's stream and buckets, a data directory and HTTP port of its own, and
    /// for a parser the stand-in as its provider.
    fn start(&self, role: &str, name: &str) -> anyhow::Result<Instance> {
        let data = self.scratch.join(name);
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let http = free_addr()?;
        let log = self.scratch.join(format!("{name}.log"));
        let nats = &self.settings.bus.nats;
        let mut cmd = Command::new(std::env::current_exe().context("cannot find this binary")?);
        match self.config {
            Some(config) => cmd.env("SWITCHBOARD_CONFIG", config),
            None => cmd.env_remove("SWITCHBOARD_CONFIG"),
        };
        cmd.args(["run", "--roles", role])
            .env_remove("RUST_LOG")
            .env("SWITCHBOARD__DATA_DIR", &data)
            .env("SWITCHBOARD__HTTP__ADDR", http.to_string())
            .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD__BUS__KIND", "nats")
            .env("SWITCHBOARD__BUS__NATS__URL", &nats.url)
            .env("SWITCHBOARD__BUS__NATS__STREAM", &nats.stream)
            .env("SWITCHBOARD__BUS__NATS__KV_PREFIX", &nats.kv_prefix)
            .env("SWITCHBOARD__SUBJECT_PREFIX", &self.settings.subject_prefix)
            .env("SWITCHBOARD__TELEMETRY__LOG_FILTER", "warn")
            // One client here sends what many connectors would.
            .env("SWITCHBOARD__AUTH__REQUESTS_PER_SECOND", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                File::create(&log).with_context(|| format!("cannot create {}", log.display()))?,
            );
        if role == "parser" {
            cmd.env("SWITCHBOARD__LLM__ENABLED", "true")
                .env("SWITCHBOARD__LLM__PROVIDER", "stand-in")
                .env("SWITCHBOARD__LLM__BASE_URL", &self.llm)
                .env("SWITCHBOARD__LLM__MODEL", "stand-in")
                .env("SWITCHBOARD__LLM__REQUESTS_PER_SECOND", "0");
            match &self.settings.llm.api_key_env {
                Some(var) => cmd.env(var, "stand-in"),
                None => cmd.env("SWITCHBOARD__LLM__API_KEY", "stand-in"),
            };
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Instance {
            role: role.to_owned(),
            name: name.to_owned(),
            child,
            http,
            log,
        })
    }
}

/// One role instance in a process of its own, killed when dropped.
struct Instance {
    role: String,
    name: String,
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Instance {
    /// Waits until its `/readyz` answers 200 (the retriever's after it has trained its classifier),
    /// or fails with the end of its log when it exits or takes too long.
    async fn ready(&mut self) -> anyhow::Result<()> {
        let url = format!("http://{}/readyz", self.http);
        // A probe that hangs counts as not ready, as a kubelet's would.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("cannot build an HTTP client")?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited ({status}): {}", self.name, self.log_tail());
            }
            let ok = client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{} not ready within {READY_WITHIN:?}: {}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 now, for a process to bind next.
fn free_addr() -> anyhow::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free port")
}

/// CPU seconds (user and system) the process `pid` (or `self`) has spent, ended threads included.
fn process_cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| cpu_of(&stat))
        .unwrap_or(0.0)
}

/// User and system CPU seconds from a `/proc` `stat` line.
fn cpu_of(stat: &str) -> Option<f64> {
    // `pid (comm) state …`: the name may hold spaces and parentheses, so split at the last `)`.
    let close = stat.rfind(')')?;
    // After the name: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?) as f64 / TICKS_PER_SECOND)
}

/// An OpenAI-compatible provider that answers every chat completion with the same parse after a fixed
/// latency, counting the requests.
struct StandIn {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl StandIn {
    async fn start(latency: Duration) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen for the stand-in LLM")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let answer = move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(latency).await;
                axum::Json(completion())
            }
        };
        let app = axum::Router::new().route("/chat/completions", axum::routing::post(answer));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the stand-in LLM stopped");
            }
        });
        Ok(Self { addr, requests })
    }
}

fn completion() -> serde_json::Value {
    let parse = serde_json::json!({
        "summary": "A customer reports a problem.",
        "problem_type": "",
        "keywords": [],
        "entities": [],
        "complexity": 1,
        "language": "en",
        "suggested_departments": [],
    });
    serde_json::json!({
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "model": "stand-in",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": parse.to_string()},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
}

impl fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "stand-in LLM: {} ms per answer, {} requests in flight per parser replica; {} tickets per run, on NATS",
            self.llm_latency_ms, self.llm_max_concurrency, self.tickets
        )?;
        let roles: Vec<&String> = self
            .runs
            .first()
            .map(|r| r.cpu_ms_per_ticket.keys().collect())
            .unwrap_or_default();
        write!(
            f,
            "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "parsers", "tickets/s", "speedup", "p50 ms", "p90 ms", "LLM req", "by LLM"
        )?;
        for role in &roles {
            write!(f, " {:>11}", format!("{role} ms"))?;
        }
        writeln!(f)?;
        for run in &self.runs {
            write!(
                f,
                "{:>8} {:>9.1} {:>7.2}x {:>8.0} {:>8.0} {:>8} {:>8}",
                run.parser_replicas,
                run.decided_per_second,
                run.speedup,
                run.p50_ms,
                run.p90_ms,
                run.llm_requests,
                run.parsed_by_llm
            )?;
            for role in &roles {
                write!(
                    f,
                    " {:>11.2}",
                    run.cpu_ms_per_ticket.get(*role).copied().unwrap_or(0.0)
                )?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "(role ms: CPU milliseconds per ticket; 1000 over it is tickets per second per core)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_last_parenthesis_of_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let stat = "42 (sb (odd) name) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_of(stat), Some(3.0));
        assert_eq!(cpu_of("42 (cut) S 1"), None);
    }

    #[test]
    fn this_process_cpu_is_counted() {
        let before = process_cpu_seconds("self");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert_ne!(x, 1);
        assert!(process_cpu_seconds("self") - before >= 0.1);
        assert_eq!(process_cpu_seconds("no-such-process"), 0.0);
    }
}
