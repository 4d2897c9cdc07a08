//! `switchboard bench-scale`: how the pipeline's throughput grows with parser replicas on real NATS while
//! a stand-in LLM answers every request after a fixed latency, and what each role costs in CPU per
//! ticket, so a platform team can size a deployment.
//!
//! Every role instance runs as its own process would: on a tokio runtime of its own, whose threads carry
//! its name (the CPU it spends is read per thread from `/proc/self/task`), with its own NATS connection
//! and data directory. Each replica count gets a stream, subjects and buckets of its own, deleted after
//! it. The tickets are submitted at once; throughput is tickets over the time from the first submission
//! to the last decision.
//!
//! The stand-in speaks the OpenAI chat-completions protocol and answers every request with the same
//! parse after `--llm-latency-ms`: what is measured is a provider's latency, not its answers. Each
//! parser replica keeps at most `llm.max_concurrency` requests in flight (providers cap concurrency per
//! key); the per-process rate `llm.requests_per_second` is lifted, so latency and concurrency bound a
//! replica, as they do under a provider whose rate allows it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde::Serialize;
use switchboard_intake::Submission;
use switchboard_knowledge::{ColumnMap, TrainingPlan, import_csv};
use switchboard_runtime::Subjects;

use crate::app::{Running, connect_bus, delete_bus_data, start};
use crate::bench::{decisions, read_texts};
use crate::measure::{Machine, quantile};
use crate::roles::Roles;
use crate::settings::{BusKind, Settings};

/// The roles a ticket passes through to its decision, each in an instance of its own.
const STAGES: [&str; 4] = ["intake", "sentiment", "retriever", "router"];
/// How long the bench waits for the last decision once every ticket is submitted.
const DRAIN: Duration = Duration::from_secs(120);
/// Linux reports thread CPU time in clock ticks of 1/100 s (`USER_HZ`) on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct BenchScaleArgs {
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
    /// CPU milliseconds per ticket by role (the parser's summed over its replicas), and `other` for the
    /// process's threads no role owns (the bench's own, and pools a library starts).
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
    settings.llm.enabled = true;
    settings.llm.provider = "stand-in".into();
    settings.llm.base_url = format!("http://{}", stand_in.addr);
    settings.llm.model = "stand-in".into();
    settings.llm.api_key = Some("stand-in".into());
    settings.llm.api_key_env = None;
    settings.llm.requests_per_second = 0.0;
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
    let mut instances = Vec::new();
    for role in STAGES {
        instances.push(Instance::launch(settings, role, format!("sb-{role}")).await?);
    }
    for i in 1..=replicas {
        instances.push(Instance::launch(settings, "parser", format!("sb-parser-{i}")).await?);
    }
    let retriever = instances
        .iter()
        .find(|i| i.role == "retriever")
        .and_then(|i| i.running.as_ref()?.shared.kb.clone())
        .context("the retriever opened no knowledge base")?;
    import_csv(&retriever, &args.history, &args.columns, &mut |_| {})
        .await
        .with_context(|| format!("importing {}", args.history.display()))?;
    let plan = TrainingPlan {
        neighbours: settings.retriever.top_k,
        weighing: settings.router.weighing(),
    };
    retriever.classifier().refresh(&retriever, &plan).await?;
    drop(retriever);

    let bus = connect_bus(settings).await?;
    let mut decided = decisions(&bus, &Subjects::new(&settings.subject_prefix)).await?;
    let intake = instances
        .iter()
        .find(|i| i.role == "intake")
        .context("no intake instance")?;
    let handle = intake
        .running
        .as_ref()
        .and_then(|r| r.intake.clone())
        .context("intake is not running")?;
    let cpu_before: Vec<f64> = instances.iter().map(Instance::cpu_seconds).collect();
    let process_before = process_cpu_seconds();
    let requests_before = stand_in.requests.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut sent = BTreeMap::new();
    for (i, text) in texts.iter().cycle().take(args.count).enumerate() {
        let key = format!("bench-scale-{i}");
        sent.insert(key.clone(), Instant::now());
        let submission = Submission {
            text: text.as_bytes().to_vec(),
            channel: "api".into(),
            idempotency_key: key,
            ..Submission::default()
        };
        let handle = handle.clone();
        // On the intake's runtime, so its CPU is the intake's.
        intake.runtime.spawn(async move {
            if let Err(e) = handle.submit(submission).await {
                tracing::error!(error = %e, "bench-scale: a ticket was not accepted");
            }
        });
    }
    let mut latencies = Vec::with_capacity(args.count);
    let mut parsed_by_llm = 0;
    let mut last = started;
    while latencies.len() < args.count {
        let (ticket, at) = tokio::time::timeout(DRAIN, decided.recv())
            .await
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
    let mut attributed = 0.0;
    for (instance, before) in instances.iter().zip(&cpu_before) {
        let spent = instance.cpu_seconds() - before;
        attributed += spent;
        *cpu_ms_per_ticket
            .entry(instance.role.clone())
            .or_insert(0.0) += spent * 1000.0 / args.count as f64;
    }
    let process = process_cpu_seconds() - process_before;
    cpu_ms_per_ticket.insert(
        "other".into(),
        (process - attributed).max(0.0) * 1000.0 / args.count as f64,
    );
    let llm_requests = stand_in.requests.load(Ordering::Relaxed) - requests_before;
    for instance in instances {
        instance.stop().await;
    }
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

/// One role instance, run as its own process would be: its runtime, its bus connection, its data.
struct Instance {
    role: String,
    /// Its threads' name, which its CPU time is read by.
    name: String,
    runtime: tokio::runtime::Runtime,
    running: Option<Running>,
    _data: tempfile::TempDir,
}

impl Instance {
    async fn launch(settings: &Settings, role: &str, name: String) -> anyhow::Result<Self> {
        let data = tempfile::tempdir().context("cannot create a scratch data directory")?;
        let mut settings = settings.clone();
        settings.data_dir = data.path().to_path_buf();
        settings.http.addr = ([127, 0, 0, 1], 0).into();
        settings.grpc.addr = ([127, 0, 0, 1], 0).into();
        let roles: Roles = role.parse().map_err(anyhow::Error::msg)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name.clone())
            .enable_all()
            .build()
            .context("cannot start a runtime")?;
        let running = runtime
            .spawn(async move {
                let bus = connect_bus(&settings).await?;
                anyhow::Ok(start(&settings, &roles, bus).await?)
            })
            .await
            .context("the instance's start panicked")?
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            role: role.to_owned(),
            name,
            runtime,
            running: Some(running),
            _data: data,
        })
    }

    fn cpu_seconds(&self) -> f64 {
        thread_cpu_seconds(&self.name)
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.spawn(running.shutdown()).await;
        }
        // Not dropped here: dropping a runtime inside another's task would block it.
        self.runtime.shutdown_background();
    }
}

/// CPU seconds (user and system) the live threads of this process named `name` have spent.
fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| cpu_of(&stat, name))
        .sum()
}

/// CPU seconds the whole process has spent, threads that have ended included.
fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_of(&stat, ""))
        .unwrap_or(0.0)
}

/// User and system CPU seconds from a `/proc` `stat` line, when its name is `name` (any name for "").
fn cpu_of(stat: &str, name: &str) -> Option<f64> {
    // `pid (comm) state …`: the name may hold spaces and parentheses, so split at the last `)`.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    if !name.is_empty() && &stat[open + 1..close] != name {
        return None;
    }
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
        assert_eq!(cpu_of(stat, "sb (odd) name"), Some(3.0));
        assert_eq!(cpu_of(stat, ""), Some(3.0));
        assert_eq!(cpu_of(stat, "sb-parser-1"), None);
        assert_eq!(cpu_of("42 (cut) S 1", ""), None);
    }

    #[test]
    fn this_threads_cpu_is_counted_under_its_name() {
        let name = std::thread::current()
            .name()
            .map(|n| n.chars().take(15).collect::<String>())
            .unwrap_or_default();
        let before = process_cpu_seconds();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert_ne!(x, 1);
        assert!(process_cpu_seconds() - before >= 0.1);
        // The test harness names each test's thread after the test (cut to 15 bytes by Linux).
        assert!(thread_cpu_seconds(&name) >= 0.1, "{name}");
    }
}
