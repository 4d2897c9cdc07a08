//! The embedded default across a crash, as an operator would see it: `switchboard run` with nothing but a
//! data directory takes tickets over HTTP, is killed with SIGKILL while deciding them, and starts again
//! on the same directory. Every accepted ticket is then decided, its work state kept, a resubmitted
//! idempotency key returns its first ticket's id, and the first start's admin is made only once.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Process, repo};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_tickets_survive_a_kill_9_of_the_embedded_default() {
    let data = tempfile::tempdir().expect("temp dir");
    let history = repo().join("deploy/demo/history.csv");
    let import = switchboard(data.path())
        .args(["import", history.to_str().expect("UTF-8 path")])
        .args(["--id-column", "id", "--problem-type-column", "problem_type"])
        .output()
        .expect("import");
    assert!(import.status.success(), "{import:?}");
    let token = switchboard(data.path())
        .args(["token", "create", "--name", "restart", "--role", "admin"])
        .output()
        .expect("token create");
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();

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
            if view["ticket"]["decision"]["department"].is_string() {
                let state = view["state"]["state"].as_str().unwrap_or_default();
                assert!(
                    ["TICKET_STATE_ROUTED", "TICKET_STATE_IN_REVIEW"].contains(&state),
                    "{id}: {view}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not decided after the restart: {view}"
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
