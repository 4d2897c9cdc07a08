//! The embedded default across crashes, as an operator would see it: `switchboard run` with nothing but
//! a data directory takes tickets over HTTP, is killed with SIGKILL while deciding them, and starts
//! again on the same directory. Every accepted ticket is then decided, its work state kept, a
//! resubmitted idempotency key returns its first ticket's id, and the first start's admin is made only
//! once. Then the chaos run's classification for the embedded default: a steady stream of tickets
//! through repeated kill -9s, every accepted ticket decided exactly once, every key one ticket, read
//! from the stored bus itself.

#[path = "chaos/client.rs"]
mod client;
mod support;
// Shared with the chaos run, which also reads what only NATS has (stream sequences).
#[allow(dead_code)]
#[path = "chaos/tally.rs"]
mod tally;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Process, repo};
use switchboard_bus::Bus;

const TICKETS: usize = 60;

fn switchboard(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env_remove("RUST_LOG")
        .env("SWITCHBOARD__DATA_DIR", data)
        .env("SWITCHBOARD__HTTP__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
        // BM25 only: what is under test is the store, not the embedder.
        .env("SWITCHBOARD__EMBEDDER__KIND", "none")
        .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json");
    cmd
}

/// `switchboard run` on `data` once started: the process, its HTTP address, and whether it said it made
/// the first admin.
fn run(data: &Path) -> (Process, SocketAddr, bool) {
    let mut first_admin = false;
    let (process, fields, log) = support::start(switchboard(data).arg("run"), "run", |line| {
        first_admin |= line.starts_with("first start: created user admin");
    });
    support::drain(log);
    (process, support::addr(&fields, "http_addr"), first_admin)
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn submit(&self, i: usize) -> (String, bool) {
        let reply: Value = self
            .http
            .post(format!("{}/v1/tickets", self.base))
            .bearer_auth(&self.token)
            .json(&json!({
                "text": format!("打印机又卡纸了，第{i}次，合同打不出来"),
                "channel": "web",
                "idempotency_key": format!("restart-{i}"),
            }))
            .send()
            .await
            .expect("submitted")
            .json()
            .await
            .expect("JSON");
        let id = reply["ticket_id"].as_str().expect("ticket_id").to_owned();
        (id, reply["duplicate"].as_bool().expect("duplicate"))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON")
    }
}

/// Imports the demo history into `data` and returns an admin's API token.
fn prepare(data: &Path) -> String {
    let history = repo().join("deploy/demo/history.csv");
    let import = switchboard(data)
        .args(["import", history.to_str().expect("UTF-8 path")])
        .args(["--id-column", "id", "--problem-type-column", "problem_type"])
        .output()
        .expect("import");
    assert!(import.status.success(), "{import:?}");
    let token = switchboard(data)
        .args(["token", "create", "--name", "restart", "--role", "admin"])
        .output()
        .expect("token create");
    assert!(token.status.success(), "{token:?}");
    String::from_utf8(token.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_tickets_survive_a_kill_9_of_the_embedded_default() {
    let data = tempfile::tempdir().expect("temp dir");
    let token = prepare(data.path());

    let (process, http, first_admin) = run(data.path());
    assert!(first_admin, "the first start makes the admin and says so");
    let mut client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{http}"),
        token,
    };
    // All at once, so that many are still in the pipeline when it dies.
    let submitted = futures::future::join_all((0..TICKETS).map(|i| client.submit(i))).await;
    assert!(submitted.iter().all(|(_, duplicate)| !duplicate));
    let ids: Vec<String> = submitted.into_iter().map(|(id, _)| id).collect();
    let undecided = client.get("/v1/tickets?state=received&limit=500").await["tickets"]
        .as_array()
        .map_or(0, Vec::len);
    drop(process); // SIGKILL: no drain, no flush.
    eprintln!("killed with {undecided} of {TICKETS} accepted tickets not yet decided");

    let (_process, http, first_admin) = run(data.path());
    assert!(!first_admin, "the admin is made once");
    client.base = format!("http://{http}");
    let deadline = Instant::now() + Duration::from_secs(90);
    for id in &ids {
        loop {
            let view = client.get(&format!("/v1/tickets/{id}")).await;
            let state = view["state"]["state"].as_str().unwrap_or_default();
            // The router stores the decision, then moves the work state: a read between the two
            // sees the decision of a ticket still received, so wait for both.
            if view["ticket"]["decision"]["department"].is_string()
                && ["TICKET_STATE_ROUTED", "TICKET_STATE_IN_REVIEW"].contains(&state)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not decided and moved to routed or in review after the restart: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for (i, id) in ids.iter().enumerate().take(10) {
        assert_eq!(
            client.submit(i).await,
            (id.clone(), true),
            "key restart-{i}"
        );
    }
}

/// Tickets of the steady stream, and how often the process is killed while they arrive.
const STREAM: usize = 150;
const STREAM_RATE: f64 = 15.0;
const KILL_EVERY: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_ticket_is_decided_once_through_repeated_kill_9s() {
    let data = tempfile::tempdir().expect("temp dir");
    let token = prepare(data.path());
    // One address across restarts, as a Service gives clients.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let start = || {
        let mut cmd = switchboard(data.path());
        cmd.env("SWITCHBOARD__HTTP__ADDR", addr.to_string())
            // One client here sends what many connectors would.
            .env("SWITCHBOARD__AUTH__REQUESTS_PER_SECOND", "0")
            .arg("run");
        let (process, _, log) = support::start(&mut cmd, "run", |_| {});
        support::drain(log);
        process
    };
    let mut process = start();
    let client = client::Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        url: format!("http://{addr}/v1/tickets"),
        token: token.clone(),
    };
    let sending = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / STREAM_RATE));
        let mut sent = Vec::new();
        for i in 0..STREAM {
            ticker.tick().await;
            let (client, key) = (client.clone(), format!("stream-{i}"));
            let text = format!("第{i}位用户：社保卡补办以后网上还是登录不了");
            sent.push(tokio::spawn(async move {
                let id = client.submit(key.clone(), text).await;
                (key, id)
            }));
        }
        let mut accepted = Vec::new();
        for answer in sent {
            let (key, id) = answer.await.expect("client task");
            accepted.push((key.clone(), id.unwrap_or_else(|e| panic!("{key}: {e:#}"))));
        }
        accepted
    });
    let mut kills = 0;
    while !sending.is_finished() {
        tokio::time::sleep(KILL_EVERY).await;
        drop(process); // SIGKILL: no drain, no flush.
        kills += 1;
        process = tokio::task::block_in_place(start);
    }
    let accepted = sending.await.expect("sending");
    assert!(kills >= 3, "only {kills} kills while sending");

    // Decided after the last start, as the API says…
    let api = Client {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        token,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    for (_, id) in &accepted {
        while !api.get(&format!("/v1/tickets/{id}")).await["ticket"]["decision"]["department"]
            .is_string()
        {
            assert!(Instant::now() < deadline, "{id} not decided");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(process);

    // …and exactly once, as the stored bus's stream says.
    let bus =
        switchboard_bus::memory::MemoryBus::open(&data.path().join("bus")).expect("open the bus");
    let audit = bus
        .consumer(switchboard_bus::ConsumerSpec {
            durable: "audit".into(),
            filter: ">".into(),
            ack_wait: Duration::from_secs(60),
        })
        .await
        .expect("consumer");
    let mut observed = tally::Observed::default();
    while let Ok(Ok(delivery)) = tokio::time::timeout(Duration::from_secs(2), audit.next()).await {
        observed.take("tickets", &delivery.subject, &delivery.payload);
        delivery.acker.ack().await.expect("ack");
    }
    let classes = observed.classify(&accepted);
    eprintln!("{kills} kills: {classes:?}");
    assert_eq!(
        classes,
        tally::Classes {
            decided_once: STREAM,
            ..tally::Classes::default()
        }
    );
}
