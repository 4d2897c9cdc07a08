//! The chart's layout: feedback in one process, the retriever (with the rest of the pipeline) in
//! another, sharing one NATS and one Qdrant collection. A correction feedback applies must change the
//! next decision of the retriever's classifier within seconds, without a restart: the knowledge base's
//! change feed carries it. Runs against the Qdrant server in `../shared/tools` and skips, saying so,
//! where there is none (two processes cannot share an embedded store).

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use support::{Process, repo};
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::{Corrected, CorrectionReason, GetDecisionRequest, SubmitRequest, Ticket};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Starts the Qdrant server on free ports and returns it with its gRPC URL, once it is ready.
fn qdrant(dir: &Path) -> Option<(Process, String)> {
    let server = repo().join("../shared/tools/qdrant");
    if !server.exists() {
        return None;
    }
    let (http, grpc) = (free_port(), free_port());
    let child = Command::new(server)
        .env("QDRANT__SERVICE__HOST", "127.0.0.1")
        .env("QDRANT__SERVICE__HTTP_PORT", http.to_string())
        .env("QDRANT__SERVICE__GRPC_PORT", grpc.to_string())
        .env("QDRANT__STORAGE__STORAGE_PATH", dir.join("storage"))
        .env("QDRANT__STORAGE__SNAPSHOTS_PATH", dir.join("snapshots"))
        .env("QDRANT__TELEMETRY_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qdrant");
    let process = Process(child);
    // The first start unpacks the binary.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !http_ok(("127.0.0.1", http), "/readyz") {
        assert!(Instant::now() < deadline, "qdrant not ready within 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((process, format!("http://127.0.0.1:{grpc}")))
}

fn http_ok(addr: impl std::net::ToSocketAddrs, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut out).is_ok()
        && out.starts_with("HTTP/1.1 200")
}

/// The environment both processes share: one NATS stream and KV prefix, one Qdrant collection.
fn configured(cmd: &mut Command, id: &str, qdrant: &str, data: &Path) {
    cmd.env_remove("RUST_LOG")
        .env("SWITCHBOARD__DATA_DIR", data)
        .env("SWITCHBOARD__HTTP__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD__BUS__KIND", "nats")
        .env("SWITCHBOARD__BUS__NATS__URL", nats_url())
        .env("SWITCHBOARD__BUS__NATS__STREAM", id.to_uppercase())
        .env("SWITCHBOARD__BUS__NATS__KV_PREFIX", id)
        .env("SWITCHBOARD__BUS__NATS__MAX_AGE_DAYS", "1")
        .env("SWITCHBOARD__SUBJECT_PREFIX", id)
        .env("SWITCHBOARD__QDRANT__URL", qdrant)
        .env("SWITCHBOARD__QDRANT__COLLECTION", id)
        // BM25 only: the feed, not the embedder, is under test, and every record travels the same way.
        .env("SWITCHBOARD__EMBEDDER__KIND", "none")
        .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json");
}

/// `switchboard run --roles ROLES`, once it has started: the process and its gRPC address.
fn run(roles: &str, id: &str, qdrant: &str, data: &Path) -> (Process, SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["run", "--roles", roles]).stderr(Stdio::piped());
    configured(&mut cmd, id, qdrant, data);
    let mut child = cmd.spawn().expect("start switchboard");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let process = Process(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let grpc = loop {
        assert!(
            Instant::now() < deadline,
            "{roles}: no start-up line within 60 s"
        );
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{roles}: switchboard exited early"))
            .expect("log line");
        if line.contains("switchboard started") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            break log["fields"]["grpc_addr"]
                .as_str()
                .expect("grpc_addr field")
                .parse()
                .expect("address");
        }
    };
    // Keep reading its log, so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (process, grpc)
}

/// An admin API token, made as an operator makes one: `switchboard token create` against the
/// deployment's NATS.
fn admin_token(id: &str, qdrant: &str, data: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["token", "create", "--name", "freshness", "--role", "admin"]);
    configured(&mut cmd, id, qdrant, data);
    let out = cmd.output().expect("token create");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// A gRPC channel to `addr` that presents `token` with every call.
async fn channel(
    addr: SocketAddr,
    token: &str,
) -> InterceptedService<Channel, impl Interceptor + Clone> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("URL")
        .connect()
        .await
        .expect("connect");
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().expect("ASCII");
    InterceptedService::new(channel, move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        Ok(request)
    })
}

/// Submits `text` to the pipeline process and waits for its decision, read through the feedback
/// process's `Decisions` service.
async fn decided(intake: SocketAddr, decisions: SocketAddr, token: &str, text: &str) -> Ticket {
    let mut intake = IntakeClient::new(channel(intake, token).await);
    let mut decisions = DecisionsClient::new(channel(decisions, token).await);
    let id = intake
        .submit(SubmitRequest {
            text: text.into(),
            channel: "web".into(),
            ..SubmitRequest::default()
        })
        .await
        .expect("submitted")
        .into_inner()
        .ticket_id;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = decisions
            .get(GetDecisionRequest {
                ticket_id: id.clone(),
            })
            .await;
        if let Ok(ticket) = got {
            return ticket.into_inner();
        }
        assert!(
            Instant::now() < deadline,
            "no decision for {id} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn classifier_top(ticket: &Ticket) -> String {
    ticket
        .matches
        .as_ref()
        .and_then(|m| m.model_scores.first())
        .map(|s| s.department.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correction_in_the_feedback_process_reaches_the_retrievers_classifier() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_qdrant, qdrant)) = qdrant(dir.path()) else {
        eprintln!("skipped: no Qdrant server at ../shared/tools/qdrant");
        return;
    };
    let id = format!("fresh{}", std::process::id());
    let history = repo().join("deploy/demo/history.csv");
    let mut import = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    import.args([
        "import",
        history.to_str().expect("UTF-8 path"),
        "--id-column",
        "id",
        "--problem-type-column",
        "problem_type",
    ]);
    configured(&mut import, &id, &qdrant, dir.path());
    let imported = import.output().expect("import");
    assert!(imported.status.success(), "{imported:?}");

    let (_pipeline, pipeline) = run(
        "intake,parser,sentiment,retriever,router",
        &id,
        &qdrant,
        &dir.path().join("a"),
    );
    let (_feedback, feedback) = run("feedback", &id, &qdrant, &dir.path().join("b"));
    let token = admin_token(&id, &qdrant, dir.path());

    let text = "电脑用起来特别卡，想申请换一台新的。";
    let first = decided(pipeline, feedback, &token, text).await;
    let before = classifier_top(&first);
    let scores = &first.matches.as_ref().expect("matches").model_scores;
    assert!(
        scores.len() >= 2,
        "the classifier ranks departments: {first:?}"
    );
    // The department the classifier thinks least likely: a correction it cannot have guessed.
    let to = scores.last().expect("scores").department.clone();
    assert_ne!(before, to);

    let mut decisions = DecisionsClient::new(channel(feedback, &token).await);
    let corrected_at = Instant::now();
    decisions
        .correct(Corrected {
            ticket_id: first.id.clone(),
            to_department: to.clone(),
            reason: CorrectionReason::PolicyUpdated as i32,
            agent: "agent-7".into(),
            ..Corrected::default()
        })
        .await
        .expect("corrected");

    // The pipeline process never restarts; its classifier must learn the correction from the feed.
    let deadline = corrected_at + Duration::from_secs(20);
    let after = loop {
        let next = decided(pipeline, feedback, &token, text).await;
        if classifier_top(&next) == to {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "the retriever's classifier still ranks {} first 20 s after the correction to {to}",
            classifier_top(&next)
        );
    };
    eprintln!(
        "correction to {to} reached the other process's classifier in {:.2} s",
        corrected_at.elapsed().as_secs_f64()
    );
    let version = |t: &Ticket| t.matches.as_ref().map(|m| m.model_version.clone());
    assert_ne!(version(&first), version(&after), "the model moved on");

    // The test's stream and buckets; the collection goes with the server's directory.
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("nats"));
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == id.to_uppercase() || name.starts_with(&format!("KV_{id}_")) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
}
