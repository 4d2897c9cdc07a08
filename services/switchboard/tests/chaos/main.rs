//! The chaos run: a deployment of its own (its own nats-server on a port of its own, the Qdrant server
//! in `../shared/tools`, every role in a process of its own) takes N tickets with idempotency keys at a
//! steady rate while a role is killed with SIGKILL every few seconds (every role at least twice),
//! nats-server, the Qdrant server and the LLM provider (a stand-in speaking its protocol, unreachable
//! while the parser starts) are each killed once and kept down for a while (`--nats-down`,
//! `--qdrant-down`, `--llm-down`: a minute, far longer than a message's retry budget), and intake's
//! connection to NATS is cut now and then right after a ticket's publish, before its acknowledgement. Clients retry with the same key until they are
//! told the ticket was accepted, as connectors do.
//!
//! Then it waits for quiet (every durable consumer has nothing pending or unacknowledged) and
//! classifies every ticket a client was told was accepted, from the stream itself: decided once,
//! decided more than once, never decided, dead-lettered; and every idempotency key: one ticket or
//! more. Its last line is the JSON summary; it fails unless nothing was lost, nothing was decided
//! twice, no key made two tickets, and every fault happened.
//!
//! `cargo test` runs it at 1,000 tickets; `scripts/chaos.sh [--tickets N] [--rate R] [--json]` (and
//! the other flags `parse_args` reads) runs it with other figures. Skips, saying so, where there is
//! no Qdrant server.

// Shared with the tests that run roles as processes; this run uses only part of them.
mod client;
#[allow(dead_code)]
#[path = "../support/cluster.rs"]
mod cluster;
mod fleet;
mod observe;
mod probe;
mod proxy;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
mod tally;

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use client::Client;
use cluster::{Cluster, free_port};
use fleet::{Fleet, Schedule, Tally};
use futures::TryStreamExt;
use serde::Serialize;

use crate::support::repo;

/// Every role, as `--roles` names it.
fn roles() -> [&'static str; 9] {
    switchboard::Role::ALL.map(switchboard::Role::name)
}
/// The model the parser asks the LLM stand-in for.
const LLM_MODEL: &str = "chaos-stand-in";
/// How long quiet may take after the last ticket was accepted.
const QUIET_WITHIN: Duration = Duration::from_secs(300);

struct Args {
    tickets: usize,
    rate: f64,
    kill_every: Duration,
    cut_every: usize,
    /// How long nats-server stays down once killed.
    nats_down: Duration,
    /// How long the Qdrant server stays down once killed; zero leaves it up.
    qdrant_down: Duration,
    /// How long the LLM stand-in stays down once killed; zero runs the parser without an LLM.
    llm_down: Duration,
    seed: u64,
    json: bool,
}

/// `None` when the run is not wanted: `--list`, or a test-name filter that does not name it (as
/// `cargo test FILTER` passes one to every test binary).
fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        tickets: 1000,
        rate: 10.0,
        kill_every: Duration::from_secs(4),
        cut_every: 40,
        nats_down: Duration::from_secs(60),
        qdrant_down: Duration::from_secs(60),
        llm_down: Duration::from_secs(60),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        json: false,
    };
    let mut given = std::env::args().skip(1);
    let mut wanted = true;
    while let Some(arg) = given.next() {
        let mut value = |name: &str| {
            given
                .next()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--tickets" => args.tickets = value("--tickets")?.parse().context("--tickets")?,
            "--rate" => args.rate = value("--rate")?.parse().context("--rate")?,
            "--kill-every" => {
                let secs: f64 = value("--kill-every")?.parse().context("--kill-every")?;
                args.kill_every = Duration::try_from_secs_f64(secs).context("--kill-every")?;
            }
            "--nats-down" => {
                let secs: f64 = value("--nats-down")?.parse().context("--nats-down")?;
                args.nats_down = Duration::try_from_secs_f64(secs).context("--nats-down")?;
            }
            "--qdrant-down" => {
                let secs: f64 = value("--qdrant-down")?.parse().context("--qdrant-down")?;
                args.qdrant_down = Duration::try_from_secs_f64(secs).context("--qdrant-down")?;
            }
            "--llm-down" => {
                let secs: f64 = value("--llm-down")?.parse().context("--llm-down")?;
                args.llm_down = Duration::try_from_secs_f64(secs).context("--llm-down")?;
            }
            "--cut-every" => {
                args.cut_every = value("--cut-every")?.parse().context("--cut-every")?
            }
            "--seed" => args.seed = value("--seed")?.parse().context("--seed")?,
            "--json" => args.json = true,
            "--list" => {
                println!("chaos: test");
                return Ok(None);
            }
            // The test harness's own flags, which cargo passes on.
            flag if flag.starts_with("--") => {}
            filter => wanted &= "chaos".contains(filter),
        }
    }
    if args.tickets == 0 || !args.rate.is_finite() || args.rate <= 0.0 || args.cut_every == 0 {
        bail!("--tickets, --rate and --cut-every must be numbers above 0");
    }
    Ok(wanted.then_some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    match runtime.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Serialize)]
struct Summary {
    tickets: usize,
    accepted: usize,
    not_accepted: usize,
    #[serde(flatten)]
    classes: tally::Classes,
    /// Intake connections cut after a publish, before its acknowledgement.
    cut_after_publish: usize,
    nats_down_seconds: f64,
    qdrant_down_seconds: f64,
    llm_down_seconds: f64,
    /// How the accepted tickets were parsed, with the LLM down for a while.
    parsed: Parsed,
    kills: BTreeMap<String, Tally>,
    /// How a process's `/readyz` answered while what it depends on was down.
    readiness: BTreeMap<String, probe::Readiness>,
    /// Seconds from each dependency's restart until every ticket accepted before it had a decision.
    caught_up_seconds_after: BTreeMap<String, f64>,
    offered_per_second: f64,
    seconds: f64,
    seed: u64,
}

impl Summary {
    fn passed(&self) -> bool {
        let killed_once = |name: &str| self.kills.get(name).is_some_and(|t| t.killed >= 1);
        let faults = self.cut_after_publish > 0
            && killed_once("nats-server")
            && (self.qdrant_down_seconds == 0.0 || killed_once("qdrant"))
            && (self.llm_down_seconds == 0.0
                || killed_once("llm") && self.parsed.through_the_outage())
            && roles()
                .iter()
                .all(|r| self.kills.get(*r).is_some_and(|t| t.killed >= 2));
        let honest = self
            .readiness
            .values()
            .all(|r| r.ready_while_down == 0 && r.not_ready_while_down > 0 && r.ready_at_end);
        faults
            && honest
            && self.accepted == self.tickets
            && self.classes.decided_once == self.accepted
            && self.classes.keys_with_two_tickets == 0
            && self.classes.answered_with_unknown_id == 0
    }
}

/// Which parser read the accepted tickets: the LLM, or the local parser it falls back to.
#[derive(Debug, Default, Serialize)]
struct Parsed {
    by_the_llm: usize,
    locally: usize,
    /// Of the tickets accepted after the LLM came back, how many it parsed.
    by_the_llm_after_its_restart: usize,
    /// Seconds from the LLM's restart to the acceptance of the first ticket it parsed after it.
    llm_in_use_again_seconds_after: Option<f64>,
}

impl Parsed {
    /// The LLM parsed tickets, the local parser those it could not, and the LLM again once back.
    fn through_the_outage(&self) -> bool {
        self.by_the_llm > 0 && self.locally > 0 && self.by_the_llm_after_its_restart > 0
    }

    fn of(
        accepted_at: &BTreeMap<String, Instant>,
        observed: &observe::Observed,
        llm_restarted: Option<Instant>,
    ) -> Self {
        let mut parsed = Parsed::default();
        for (id, &at) in accepted_at {
            let Some(parser) = observed.parsers.get(id) else {
                continue;
            };
            // The local parser names itself "local", with the reason when it stood in for the LLM.
            if parser.starts_with("local") {
                parsed.locally += 1;
                continue;
            }
            parsed.by_the_llm += 1;
            if let Some(restarted) = llm_restarted.filter(|r| at > *r) {
                parsed.by_the_llm_after_its_restart += 1;
                let after = at.duration_since(restarted).as_secs_f64();
                let first = parsed.llm_in_use_again_seconds_after.get_or_insert(after);
                *first = first.min(after);
            }
        }
        parsed
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir()?;
    let Some(qdrant_server) = cluster::qdrant_server() else {
        println!(
            "chaos: skipped: no Qdrant server at ../shared/tools/qdrant (roles in processes of \
             their own cannot share an embedded store)"
        );
        return Ok(true);
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut fleet = Fleet::new();

    let (qdrant_http, qdrant_grpc) = (free_port(), free_port());
    let qdrant_data = dir.path().join("qdrant");
    fleet.keep("qdrant", &logs, move || {
        cluster::qdrant_command(&qdrant_server, &qdrant_data, qdrant_http, qdrant_grpc)
    });
    cluster::wait_for_qdrant(qdrant_http);
    let qdrant = format!("http://127.0.0.1:{qdrant_grpc}");

    let nats_port = free_port();
    let nats = format!("nats://127.0.0.1:{nats_port}");
    let store = dir.path().join("nats");
    let server = nats_server()?;
    fleet.keep("nats-server", &logs, move || {
        let mut cmd = Command::new(&server);
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &nats_port.to_string()])
            .arg("-sd")
            .arg(&store);
        cmd
    });
    wait_for_port(nats_port, Duration::from_secs(20))?;

    let id = format!("chaos{}", std::process::id());
    let (proxied, cuts) = proxy::start(
        ([127, 0, 0, 1], nats_port).into(),
        format!("{id}.received"),
        args.cut_every,
    )
    .await;
    let deployment = Cluster {
        id: id.clone(),
        nats: nats.clone(),
        qdrant: qdrant.clone(),
        data: dir.path(),
    };
    deployment.import_demo_history();
    let token = deployment.admin_token();

    // The LLM comes up only once the pipeline has decided a ticket: the parser starts without it.
    let llm_port = free_port();
    let llm = (!args.llm_down.is_zero()).then(|| format!("http://127.0.0.1:{llm_port}"));

    let (intake_port, retriever_port) = (free_port(), free_port());
    for role in roles() {
        let (id, nats, qdrant, llm) = (id.clone(), nats.clone(), qdrant.clone(), llm.clone());
        let (data, proxied) = (dir.path().join(role), proxied.clone());
        std::fs::create_dir_all(&data)?;
        fleet.keep(role, &logs, move || {
            let cluster = Cluster {
                id: id.clone(),
                nats: nats.clone(),
                qdrant: qdrant.clone(),
                data: &data,
            };
            let mut cmd = cluster.command(&data);
            cmd.args(["run", "--roles", role]);
            if role == "retriever" {
                cmd.env(
                    "SWITCHBOARD__HTTP__ADDR",
                    format!("127.0.0.1:{retriever_port}"),
                );
            }
            if let Some(llm) = llm.as_ref().filter(|_| role == "parser") {
                cmd.env("SWITCHBOARD__LLM__ENABLED", "true")
                    .env("SWITCHBOARD__LLM__BASE_URL", llm)
                    .env("SWITCHBOARD__LLM__MODEL", LLM_MODEL)
                    // The stand-in has no quota; the default 5 requests a second would make the
                    // parser the bottleneck below the offered rate.
                    .env("SWITCHBOARD__LLM__REQUESTS_PER_SECOND", "0");
            }
            if role == "intake" {
                cmd.env("SWITCHBOARD__BUS__NATS__URL", &proxied)
                    .env(
                        "SWITCHBOARD__HTTP__ADDR",
                        format!("127.0.0.1:{intake_port}"),
                    )
                    // One client here sends what many connectors would.
                    .env("SWITCHBOARD__AUTH__REQUESTS_PER_SECOND", "0");
            }
            cmd
        });
    }

    // Each process that needs a dependency the run takes down, with that dependency.
    let probes = [
        ("intake", intake_port, "nats-server"),
        ("retriever", retriever_port, "qdrant"),
    ]
    .map(|(role, port, needs)| {
        let answers = probe::start(format!("http://127.0.0.1:{port}/readyz"));
        (role, needs, answers)
    });
    let observed = observe::start(nats.clone(), id.to_uppercase(), id.clone());
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        url: format!("http://127.0.0.1:{intake_port}/v1/tickets"),
        token,
    };
    let texts = demo_texts()?;
    // The pipeline is up once one ticket went through it.
    let warm_up = client
        .submit("chaos-warm-up".into(), texts[0].clone())
        .await?;
    wait_until(
        Duration::from_secs(180),
        "the warm-up ticket's decision",
        || {
            observed
                .lock()
                .expect("observed")
                .decisions
                .contains_key(&warm_up)
        },
    )
    .await?;
    if llm.is_some() {
        let script = repo().join("services/switchboard/tests/chaos/llm_stand_in.py");
        fleet.keep("llm", &logs, move || {
            let mut cmd = Command::new("python3");
            cmd.arg(&script).arg(llm_port.to_string()).arg(LLM_MODEL);
            cmd
        });
        wait_for_port(llm_port, Duration::from_secs(20))?;
    }

    let planned = Duration::from_secs_f64(args.tickets as f64 / args.rate);
    let phase = Arc::new(Phase::default());
    let monkey = {
        let phase = phase.clone();
        let faults = Faults {
            kill_every: args.kill_every,
            nats_at: planned / 2,
            nats_down: args.nats_down,
            qdrant_at: planned / 4,
            qdrant_down: args.qdrant_down,
            llm_at: planned / 8,
            llm_down: args.llm_down,
        };
        let seed = args.seed;
        std::thread::spawn(move || chaos(fleet, &faults, seed, &phase))
    };

    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(args.tickets);
    for i in 0..args.tickets {
        ticker.tick().await;
        let key = format!("chaos-{}-{i}", args.seed);
        let (client, text) = (client.clone(), texts[i % texts.len()].clone());
        sent.push((
            key.clone(),
            tokio::spawn(async move {
                let id = client.submit(key, text).await?;
                anyhow::Ok((id, Instant::now()))
            }),
        ));
    }
    let mut accepted = Vec::with_capacity(args.tickets);
    let mut accepted_at = BTreeMap::new();
    for (key, answer) in sent {
        match answer.await? {
            Ok((ticket_id, at)) => {
                accepted_at.insert(ticket_id.clone(), at);
                accepted.push((key, ticket_id));
            }
            Err(e) => eprintln!("chaos: {key} never accepted: {e:#}"),
        }
    }
    phase.sent.store(true, Ordering::SeqCst);
    wait_until(QUIET_WITHIN, "end of the kills", || {
        phase.killed.load(Ordering::SeqCst)
    })
    .await?;
    let quiet = quiet(&nats, &id.to_uppercase(), &observed).await;
    let seconds = started.elapsed().as_secs_f64();
    // What the probes saw from here on is the fleet stopping.
    let end = Instant::now();
    phase.stop.store(true, Ordering::SeqCst);
    let kills = monkey.join().expect("the chaos thread");
    let down = phase.down.lock().expect("down").clone();
    let readiness = probes
        .iter()
        .filter_map(|(role, needs, answers)| {
            let (from, to) = *down.get(*needs)?;
            // A probe sent just before the kill may be answered just after it; an outage too short
            // for a probe to fall in says nothing.
            let from = from + Duration::from_secs(1);
            if to <= from + Duration::from_secs(1) {
                return None;
            }
            let seen = probe::during(answers, from, to, end);
            Some((format!("{role} while {needs} was down"), seen))
        })
        .collect();
    let caught_up = catch_up(&down, &accepted_at, &observed.lock().expect("observed"));
    let parsed = Parsed::of(
        &accepted_at,
        &observed.lock().expect("observed"),
        down.get("llm").map(|&(_, restarted)| restarted),
    );

    let summary = Summary {
        tickets: args.tickets,
        accepted: accepted.len(),
        not_accepted: args.tickets - accepted.len(),
        classes: observed.lock().expect("observed").classify(&accepted),
        cut_after_publish: cuts.cut.load(Ordering::SeqCst),
        nats_down_seconds: args.nats_down.as_secs_f64(),
        qdrant_down_seconds: args.qdrant_down.as_secs_f64(),
        llm_down_seconds: args.llm_down.as_secs_f64(),
        parsed,
        kills,
        readiness,
        caught_up_seconds_after: caught_up,
        offered_per_second: args.rate,
        seconds,
        seed: args.seed,
    };
    let passed = quiet.is_ok() && summary.passed();
    if !args.json {
        report(&summary);
        if let Err(e) = &quiet {
            println!("not quiet: {e:#}");
        }
        if !passed {
            println!(
                "processes' logs kept in {}",
                dir.keep().join("logs").display()
            );
        }
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(passed)
}

/// Where the run is, between the main task and the chaos thread.
#[derive(Default)]
struct Phase {
    /// Every ticket was sent and answered.
    sent: AtomicBool,
    /// The kills are over: every role was killed twice and nats-server once.
    killed: AtomicBool,
    stop: AtomicBool,
    /// When nats-server, the Qdrant server and the LLM were down: from their kill to their restart.
    down: Mutex<BTreeMap<String, (Instant, Instant)>>,
}

/// When the chaos thread kills what, from the start of the sending.
struct Faults {
    /// A random role, every this often.
    kill_every: Duration,
    /// nats-server, once, kept down for `nats_down`.
    nats_at: Duration,
    nats_down: Duration,
    /// The Qdrant server, once, kept down for `qdrant_down` (none when that is zero).
    qdrant_at: Duration,
    qdrant_down: Duration,
    /// The LLM stand-in, once, kept down for `llm_down` (none when that is zero).
    llm_at: Duration,
    llm_down: Duration,
}

/// The chaos thread: keeps every process running until told to stop; kills a role every
/// `kill_every` while tickets are sent and until every role was killed twice, nats-server and the
/// Qdrant server once each. Returns what happened to each process.
fn chaos(mut fleet: Fleet, faults: &Faults, seed: u64, phase: &Phase) -> BTreeMap<String, Tally> {
    let mut schedule = Schedule::new(roles().map(String::from).to_vec(), seed);
    let started = Instant::now();
    let mut next_kill = started + faults.kill_every;
    let mut nats_killed = false;
    let mut qdrant_killed = faults.qdrant_down.is_zero();
    let mut llm_killed = faults.llm_down.is_zero();
    while !phase.stop.load(Ordering::SeqCst) {
        fleet.supervise();
        let now = Instant::now();
        if !nats_killed && now >= started + faults.nats_at {
            take_down(&mut fleet, "nats-server", faults.nats_down, phase);
            nats_killed = true;
        } else if !qdrant_killed && now >= started + faults.qdrant_at {
            take_down(&mut fleet, "qdrant", faults.qdrant_down, phase);
            qdrant_killed = true;
        } else if !llm_killed && now >= started + faults.llm_at {
            take_down(&mut fleet, "llm", faults.llm_down, phase);
            llm_killed = true;
        } else if now >= next_kill && !phase.killed.load(Ordering::SeqCst) {
            let all_killed = schedule.completed(2) && nats_killed && qdrant_killed && llm_killed;
            if phase.sent.load(Ordering::SeqCst) && all_killed {
                phase.killed.store(true, Ordering::SeqCst);
            } else {
                fleet.kill(&schedule.next(), Duration::from_millis(500));
                next_kill = now + faults.kill_every;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    fleet.stop();
    std::mem::take(&mut fleet.tally)
}

/// For each dependency the run took down, the seconds from its restart until the observer had seen a
/// decision for every ticket accepted before it (0 when all had one already).
fn catch_up(
    down: &BTreeMap<String, (Instant, Instant)>,
    accepted_at: &BTreeMap<String, Instant>,
    observed: &observe::Observed,
) -> BTreeMap<String, f64> {
    down.iter()
        .map(|(name, &(_, restarted))| {
            let last = accepted_at
                .iter()
                .filter(|(_, at)| **at < restarted)
                .filter_map(|(id, _)| observed.decided_at.get(id))
                .max();
            let seconds = last.map_or(0.0, |l| {
                l.saturating_duration_since(restarted).as_secs_f64()
            });
            (name.clone(), seconds)
        })
        .collect()
}

fn take_down(fleet: &mut Fleet, name: &str, down: Duration, phase: &Phase) {
    let now = Instant::now();
    fleet.kill(name, down);
    let window = (now, now + down);
    phase
        .down
        .lock()
        .expect("down")
        .insert(name.to_owned(), window);
}

/// Waits until the observer has read the whole stream and every durable consumer has nothing
/// pending or unacknowledged, twice in a row a second apart.
async fn quiet(nats: &str, stream: &str, observed: &observe::Shared) -> anyhow::Result<()> {
    // One connection for every look: the outages are over, and the client reconnects by itself.
    let js = async_nats::jetstream::new(async_nats::connect(nats).await?);
    let deadline = Instant::now() + QUIET_WITHIN;
    let mut calm = 0;
    let mut last = String::new();
    while calm < 2 {
        if Instant::now() > deadline {
            bail!("not quiet within {QUIET_WITHIN:?}: {last}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        match busy(&js, stream, observed).await {
            Ok(None) => calm += 1,
            Ok(Some(why)) => {
                calm = 0;
                last = why;
            }
            Err(e) => {
                calm = 0;
                last = format!("{e:#}");
            }
        }
    }
    Ok(())
}

async fn busy(
    js: &async_nats::jetstream::Context,
    stream: &str,
    observed: &observe::Shared,
) -> anyhow::Result<Option<String>> {
    let mut stream = js.get_stream(stream).await?;
    let last = stream.info().await?.state.last_sequence;
    let read = observed.lock().expect("observed").next_sequence;
    if read <= last {
        return Ok(Some(format!("the observer read to {read} of {last}")));
    }
    let consumers: Vec<_> = stream.consumers().try_collect().await?;
    Ok(consumers
        .iter()
        .filter(|c| c.config.durable_name.is_some())
        .find(|c| c.num_pending > 0 || c.num_ack_pending > 0)
        .map(|c| {
            format!(
                "{}: {} pending, {} unacknowledged",
                c.name, c.num_pending, c.num_ack_pending
            )
        }))
}

fn report(s: &Summary) {
    println!(
        "chaos: {} tickets offered at {:.1}/s, {} accepted, {} never accepted ({:.0} s, seed {})",
        s.tickets, s.offered_per_second, s.accepted, s.not_accepted, s.seconds, s.seed
    );
    let c = &s.classes;
    println!(
        "decided      {} once, {} more than once, {} never, {} dead-lettered",
        c.decided_once, c.decided_more_than_once, c.never_decided, c.dead_lettered
    );
    println!(
        "keys         {} with two tickets, {} answered with an id the stream never got",
        c.keys_with_two_tickets, c.answered_with_unknown_id
    );
    let kills: Vec<String> = s
        .kills
        .iter()
        .map(|(name, t)| format!("{name} {}", t.killed))
        .collect();
    println!("kill -9      {}", kills.join(", "));
    println!(
        "cut          {} intake connections after a publish, before its acknowledgement",
        s.cut_after_publish
    );
    println!(
        "down         nats-server {:.0} s, the Qdrant server {:.0} s, the LLM {:.0} s",
        s.nats_down_seconds, s.qdrant_down_seconds, s.llm_down_seconds
    );
    let p = &s.parsed;
    println!(
        "parsed       {} by the LLM, {} locally; {} by the LLM of those accepted after its restart, the first {}",
        p.by_the_llm,
        p.locally,
        p.by_the_llm_after_its_restart,
        p.llm_in_use_again_seconds_after
            .map_or("never".to_owned(), |s| format!("{s:.1} s after it")),
    );
    for (what, seconds) in &s.caught_up_seconds_after {
        println!("caught up    {seconds:.1} s after {what} was restarted");
    }
    for (what, r) in &s.readiness {
        println!(
            "readiness    {what}: {} probes not ready, {} ready; ready at the end: {}",
            r.not_ready_while_down, r.ready_while_down, r.ready_at_end
        );
    }
}

/// The demo history's ticket texts: the project's own data, sent round and round.
fn demo_texts() -> anyhow::Result<Vec<String>> {
    let path = repo().join("deploy/demo/history.csv");
    let mut texts = Vec::new();
    for row in csv::Reader::from_path(&path)?.records() {
        texts.push(row?.get(1).context("a text column")?.to_owned());
    }
    Ok(texts)
}

fn nats_server() -> anyhow::Result<std::path::PathBuf> {
    [
        "/usr/sbin/nats-server",
        "/usr/local/bin/nats-server",
        "/usr/bin/nats-server",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
    .context("no nats-server: scripts/ensure-nats.sh installs it")
}

fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

async fn wait_until(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            bail!("no {what} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
