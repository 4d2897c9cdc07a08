//! The `switchboard` binary as a user runs it: configured from the environment, serving until SIGTERM,
//! refusing bad configuration and bad input with messages that name the problem.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
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

fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `cmd` configured only through `SWITCHBOARD__*`: on the NATS at `SWITCHBOARD_TEST_NATS_URL` under
/// its own stream, KV prefix and subject prefix `id`, with JSON logs and open metrics.
fn on_nats<'c>(cmd: &'c mut Command, data: &Path, id: &str) -> &'c mut Command {
    cmd.env("SWITCHBOARD__DATA_DIR", data)
        .env("SWITCHBOARD__HTTP__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__BUS__KIND", "nats")
        .env("SWITCHBOARD__BUS__NATS__URL", nats_url())
        .env("SWITCHBOARD__BUS__NATS__STREAM", id.to_uppercase())
        .env("SWITCHBOARD__BUS__NATS__KV_PREFIX", id)
        .env("SWITCHBOARD__BUS__NATS__MAX_AGE_DAYS", "1")
        .env("SWITCHBOARD__SUBJECT_PREFIX", id)
        .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json")
        .env("SWITCHBOARD__AUTH__OPEN_METRICS", "true")
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
    let mut run = switchboard();
    on_nats(&mut run, data.path(), &id).args(["run", "--roles", "intake,router,metrics"]);
    let (mut process, fields, log) = support::start(&mut run, "run", |_| {});
    let http = support::addr(&fields, "http_addr");
    assert!(http_get(http, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(http_get(http, "/readyz").starts_with("HTTP/1.1 200"));
    // Without an Accept naming OpenMetrics, the Prometheus text format.
    let metrics = http_get(http, "/metrics");
    assert!(
        metrics.contains("# TYPE switchboard_messages_total counter")
            && metrics.contains("switchboard_build_info{version="),
        "{metrics}"
    );
    // Everything else needs a credential, the API's description included.
    assert!(http_get(http, "/openapi.json").starts_with("HTTP/1.1 401"));

    let pid = process.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let status = process.0.wait().expect("wait");
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

/// `models/NAME` at the repository root, where `scripts/fetch-model.sh` puts it; `None` (saying so)
/// when it has not been fetched.
fn fetched_model(name: &str) -> Option<std::path::PathBuf> {
    let dir = support::repo().join("models").join(name);
    if dir.join("tokenizer.json").is_file() {
        Some(dir)
    } else {
        eprintln!("note: skipping: no model in {}", dir.display());
        None
    }
}

/// Imports `csv` with the sentence model in `model` and returns what the import printed.
fn import_with(model: &std::path::Path, csv: &std::path::Path) -> String {
    let data = tempfile::tempdir().expect("temp dir");
    let out = switchboard()
        .args(["import", csv.to_str().expect("utf-8 path")])
        .env("SWITCHBOARD__DATA_DIR", data.path())
        .env("SWITCHBOARD__EMBEDDER__KIND", "local")
        .env("SWITCHBOARD__EMBEDDER__MODEL_DIR", model)
        .output()
        .expect("run switchboard");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A mostly Chinese history (3 of 4 rows) under the English sentence model is said once, naming the options; under the
/// Chinese model or the multilingual default, or with an English history, nothing is said.
#[test]
fn import_says_once_when_the_sentence_model_reads_the_history_poorly() {
    let (Some(english), Some(chinese), Some(multilingual)) = (
        fetched_model("all-MiniLM-L6-v2"),
        fetched_model("m3e-small"),
        fetched_model("use-multilingual"),
    ) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let chinese_csv = data.path().join("chinese.csv");
    std::fs::write(
        &chinese_csv,
        "text,department\n输对密码也进不去,统一认证\n社保卡丢了怎么补办,社保\n\
         楼上邻居装修噪音太大,城管\nthe VPN drops every hour,network\n",
    )
    .expect("write csv");

    let said = import_with(&english, &chinese_csv);
    assert_eq!(said.matches("reads Chinese poorly").count(), 1, "{said}");
    assert!(
        said.contains("all-MiniLM-L6-v2")
            && said.contains("use-multilingual")
            && said.contains("embedder.kind = \"openai\"")
            && said.contains("m3e-small"),
        "{said}"
    );

    for model in [&chinese, &multilingual] {
        let said = import_with(model, &chinese_csv);
        assert!(!said.contains("reads Chinese"), "{said}");
    }

    let csv = data.path().join("english.csv");
    std::fs::write(
        &csv,
        "text,department\nmy card is blocked,cards\nthe app will not let me log in,access\n",
    )
    .expect("write csv");
    let said = import_with(&english, &csv);
    assert!(!said.contains("reads Chinese"), "{said}");
}

/// `route` prints the review reason and the explanation in English and, on the line under each, in
/// Chinese: a history of two departments imported, then one of its tickets routed again.
#[test]
fn route_prints_the_decision_in_english_and_in_chinese() {
    let data = tempfile::tempdir().expect("temp dir");
    let csv = data.path().join("history.csv");
    std::fs::write(
        &csv,
        "text,department\n\
         my card is blocked,cards\n\
         card blocked after three wrong pins,cards\n\
         lost my card yesterday,cards\n\
         what is the interest rate on a loan,loans\n\
         how do I repay my loan early,loans\n\
         loan application still pending,loans\n",
    )
    .expect("write csv");
    let run = |args: &[&str]| {
        let out = switchboard()
            .args(args)
            .env("SWITCHBOARD__DATA_DIR", data.path())
            .env("SWITCHBOARD__EMBEDDER__KIND", "none")
            .output()
            .expect("run switchboard");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    };
    run(&["import", csv.to_str().expect("utf-8 path")]);
    let out = run(&["route", "my card is blocked"]);
    let lines: Vec<&str> = out.lines().collect();
    let under = |label: &str| {
        let i = lines
            .iter()
            .position(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in\n{out}"));
        let next = lines.get(i + 1).copied().unwrap_or_default();
        (lines[i], next)
    };
    let (english, chinese) = under("explanation  ");
    assert!(english.contains("similar tickets"), "{out}");
    let chinese = chinese
        .strip_prefix("             ")
        .unwrap_or_else(|| panic!("no Chinese explanation under the English one in\n{out}"));
    assert!(
        chinese.starts_with("已自动分派至 cards，") || chinese.starts_with("转人工审核："),
        "{out}"
    );
    assert!(chinese.contains("张相似工单中"), "{out}");
    if out.contains("decision     human review: ") {
        let (_, reason) = under("decision     human review: ");
        assert!(reason.starts_with("             转人工审核："), "{out}");
    }
    let (priority, _) = under("priority     ");
    assert!(
        ["（紧急）", "（高）", "（普通）", "（低）"]
            .iter()
            .any(|zh| priority.ends_with(zh)),
        "{out}"
    );
    // An angry ticket is escalated, and each reason has its Chinese wording under it.
    let out = run(&[
        "route",
        "MY CARD IS BLOCKED AGAIN!!! This is outrageous, I am furious, fix it NOW!!!",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    let escalations: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("escalate: "))
        .collect();
    assert!(!escalations.is_empty(), "{out}");
    for i in escalations {
        let next = lines.get(i + 1).copied().unwrap_or_default();
        assert!(next.starts_with("             转人工："), "{out}");
    }
}

/// `deadletter list` shows what a role gave up on; `replay` sends it back to that role, which handles
/// it again (here an event that is still unreadable, so the intake gives up on it a second time).
#[test]
fn dead_letters_are_listed_and_replayed_from_the_command_line() {
    let data = tempfile::tempdir().expect("temp dir");
    let id = unique();
    let nats = nats_url();
    let deadletter = |args: &[&str]| {
        let mut cmd = switchboard();
        on_nats(&mut cmd, data.path(), &id);
        let out = cmd
            .arg("deadletter")
            .args(args)
            .output()
            .expect("deadletter");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut run = switchboard();
    on_nats(&mut run, data.path(), &id).args(["run", "--roles", "intake"]);
    let (process, fields, log) = support::start(&mut run, "run", |_| {});
    support::drain(log);
    let http = support::addr(&fields, "http_addr");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let js = runtime.block_on(async {
        async_nats::jetstream::new(async_nats::connect(&nats).await.expect("connect"))
    });
    runtime.block_on(async {
        js.publish(format!("{id}.inbound.web"), "not an event".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    });

    let dead_lettered = |times: u32| {
        let series = r#"switchboard_messages_total{role="intake",outcome="dead_letter"} "#;
        http_get(http, "/metrics")
            .lines()
            .any(|l| l.strip_prefix(series) == Some(times.to_string().as_str()))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dead_lettered(1) {
        assert!(
            Instant::now() < deadline,
            "the intake gave up on the event within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, listed, err) = deadletter(&["list"]);
    assert!(ok, "{err}");
    let subject = format!("{id}.inbound.web");
    assert!(
        listed.contains(&subject)
            && listed.contains("  intake  ")
            && listed.ends_with("1 dead letters\n"),
        "{listed}"
    );
    let key = listed.split_whitespace().next().expect("a key").to_owned();
    assert!(key.starts_with("intake."), "{listed}");
    let (ok, other_role, _) = deadletter(&["list", "--role", "router"]);
    assert!(ok && other_role.trim() == "no dead letters", "{other_role}");
    let (ok, _, err) = deadletter(&["list", "--since", "yesterday"]);
    assert!(!ok && err.contains("--since \"yesterday\""), "{err}");

    let (ok, replayed, err) = deadletter(&["replay", "--role", "intake", "--since", "1h"]);
    // Whether the intake gave up on it again before the entry was removed is a race; either way it
    // counts as replayed.
    assert!(
        ok && replayed.starts_with("replayed 1 dead letters"),
        "{replayed} {err}"
    );
    // The intake handled it again and gave up again: the same message, the same key.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dead_lettered(2) {
        assert!(
            Instant::now() < deadline,
            "the replayed event reached the intake within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, again, err) = deadletter(&["list"]);
    assert!(
        ok && again.starts_with(&key) && again.ends_with("1 dead letters\n"),
        "{again} {err}"
    );

    drop(process);
    runtime.block_on(async {
        use futures::TryStreamExt;
        let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
        for name in names {
            if name == id.to_uppercase() || name.starts_with(&format!("KV_{id}_")) {
                js.delete_stream(&name).await.expect("delete stream");
            }
        }
    });
}
