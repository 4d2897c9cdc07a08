//! The `switchboard` binary as a user runs it: configured from the environment, serving until SIGTERM,
//! refusing bad configuration and bad input with messages that name the problem.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn switchboard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn unique() -> String {
    format!(
        "cli{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    stream.read_to_string(&mut out).expect("response");
    out
}

/// `run` on NATS, configured only through `SWITCHBOARD__*`, answers health checks and stops cleanly on SIGTERM.
#[test]
fn run_is_configured_from_the_environment_and_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("temp dir");
    let id = unique();
    let nats = std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut child = switchboard()
        .args(["run", "--roles", "intake,router,metrics"])
        .env("SWITCHBOARD__DATA_DIR", data.path())
        .env("SWITCHBOARD__HTTP__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__BUS__KIND", "nats")
        .env("SWITCHBOARD__BUS__NATS__URL", &nats)
        .env("SWITCHBOARD__BUS__NATS__STREAM", id.to_uppercase())
        .env("SWITCHBOARD__BUS__NATS__KV_PREFIX", &id)
        .env("SWITCHBOARD__BUS__NATS__MAX_AGE_DAYS", "1")
        .env("SWITCHBOARD__SUBJECT_PREFIX", &id)
        .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let http: SocketAddr = loop {
        assert!(Instant::now() < deadline, "no start-up line within 30 s");
        let line = lines
            .next()
            .expect("switchboard exited early")
            .expect("log line");
        if line.contains("switchboard started") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            break log["fields"]["http_addr"]
                .as_str()
                .expect("http_addr field")
                .parse()
                .expect("address");
        }
    };
    assert!(http_get(http, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(http_get(http, "/readyz").starts_with("HTTP/1.1 200"));
    let metrics = http_get(http, "/metrics");
    assert!(
        metrics.contains("# TYPE switchboard_messages counter"),
        "{metrics}"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("switchboard stopped")),
        "{rest:?}"
    );
}

#[test]
fn invalid_configuration_names_the_key() {
    let out = switchboard()
        .args(["route", "hello"])
        .env("SWITCHBOARD__ROUTER__THRESHOLD", "2")
        .output()
        .expect("run switchboard");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("router.threshold"), "{err}");
}

#[test]
fn import_names_a_missing_column_and_lists_the_header() {
    let data = tempfile::tempdir().expect("temp dir");
    let csv = data.path().join("tickets.csv");
    std::fs::write(&csv, "body,team\nmy card is blocked,cards\n").expect("write csv");
    let out = switchboard()
        .args(["import", csv.to_str().expect("utf-8 path")])
        .env("SWITCHBOARD__DATA_DIR", data.path())
        .output()
        .expect("run switchboard");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("text") && err.contains("body") && err.contains("team"),
        "{err}"
    );

    let out = switchboard()
        .args([
            "import",
            csv.to_str().expect("utf-8 path"),
            "--text-column",
            "body",
            "--department-column",
            "team",
        ])
        .env("SWITCHBOARD__DATA_DIR", data.path())
        .output()
        .expect("run switchboard");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1 of 1 rows"));
}
