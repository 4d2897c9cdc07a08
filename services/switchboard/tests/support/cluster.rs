//! Roles in processes of their own, as the chart deploys them: one NATS stream and KV prefix, one
//! collection on the Qdrant server in `../shared/tools`, started here on free ports.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_proto::{GetDecisionRequest, SubmitRequest, Ticket};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{self, Process, repo};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The Qdrant server in `../shared/tools`, where there is one.
pub fn qdrant_server() -> Option<PathBuf> {
    let server = repo().join("../shared/tools/qdrant");
    server.exists().then_some(server)
}

/// The command that starts `server` on these ports, keeping its data under `dir`: run again, it
/// finds what the last run stored.
pub fn qdrant_command(server: &Path, dir: &Path, http: u16, grpc: u16) -> Command {
    let mut cmd = Command::new(server);
    cmd.env("QDRANT__SERVICE__HOST", "127.0.0.1")
        .env("QDRANT__SERVICE__HTTP_PORT", http.to_string())
        .env("QDRANT__SERVICE__GRPC_PORT", grpc.to_string())
        .env("QDRANT__STORAGE__STORAGE_PATH", dir.join("storage"))
        .env("QDRANT__STORAGE__SNAPSHOTS_PATH", dir.join("snapshots"))
        .env("QDRANT__TELEMETRY_DISABLED", "true");
    cmd
}

/// Waits until the Qdrant server on `http` says it is ready.
pub fn wait_for_qdrant(http: u16) {
    // The first start unpacks the binary.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !http_ok(("127.0.0.1", http), "/readyz") {
        assert!(Instant::now() < deadline, "qdrant not ready within 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the Qdrant server on free ports and returns it with its gRPC URL, once it is ready; `None`
/// where there is no server.
pub fn qdrant(dir: &Path) -> Option<(Process, String)> {
    let server = qdrant_server()?;
    let (http, grpc) = (free_port(), free_port());
    let child = qdrant_command(&server, dir, http, grpc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qdrant");
    let process = Process(child);
    wait_for_qdrant(http);
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

/// One deployment: its name (the stream, KV prefix, subject prefix and collection), its NATS and
/// Qdrant servers, and a data directory.
pub struct Cluster<'a> {
    pub id: String,
    pub nats: String,
    pub qdrant: String,
    pub data: &'a Path,
}

impl Cluster<'_> {
    /// `switchboard` with the environment every process of the deployment shares.
    pub fn command(&self, data: &Path) -> Command {
        let id = self.id.as_str();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.env_remove("RUST_LOG")
            .env("SWITCHBOARD__DATA_DIR", data)
            .env("SWITCHBOARD__HTTP__ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD__GRPC__ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD__BUS__KIND", "nats")
            .env("SWITCHBOARD__BUS__NATS__URL", &self.nats)
            .env("SWITCHBOARD__BUS__NATS__STREAM", id.to_uppercase())
            .env("SWITCHBOARD__BUS__NATS__KV_PREFIX", id)
            .env("SWITCHBOARD__BUS__NATS__MAX_AGE_DAYS", "1")
            .env("SWITCHBOARD__SUBJECT_PREFIX", id)
            // Signed, as the chart deploys it: every role rejects what another key signed.
            .env(
                "SWITCHBOARD__BUS__SIGNING_KEY",
                format!("{id}: this deployment's own signing key"),
            )
            .env("SWITCHBOARD__QDRANT__URL", &self.qdrant)
            .env("SWITCHBOARD__QDRANT__COLLECTION", id)
            // BM25 only: every record travels the same way, and no process loads a model.
            .env("SWITCHBOARD__EMBEDDER__KIND", "none")
            .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json");
        cmd
    }

    /// Imports the demo history into the deployment's collection, as an operator does.
    pub fn import_demo_history(&self) {
        let history = repo().join("deploy/demo/history.csv");
        let mut import = self.command(self.data);
        import.args([
            "import",
            history.to_str().expect("UTF-8 path"),
            "--id-column",
            "id",
            "--problem-type-column",
            "problem_type",
        ]);
        let imported = import.output().expect("import");
        assert!(imported.status.success(), "{imported:?}");
    }

    /// `switchboard run --roles ROLES` (with `env` added), once it has started: the process and its
    /// gRPC address.
    pub fn run(&self, roles: &str, data: &Path, env: &[(&str, &str)]) -> (Process, SocketAddr) {
        let mut cmd = self.command(data);
        cmd.args(["run", "--roles", roles])
            .envs(env.iter().copied());
        let (process, fields, log) = support::start(&mut cmd, roles, |_| {});
        support::drain(log);
        (process, support::addr(&fields, "grpc_addr"))
    }

    /// An admin API token, made as an operator makes one: `switchboard token create` against the
    /// deployment's NATS.
    pub fn admin_token(&self) -> String {
        let mut cmd = self.command(self.data);
        cmd.args(["token", "create", "--name", "cluster", "--role", "admin"]);
        let out = cmd.output().expect("token create");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    }

    /// Deletes the deployment's stream and buckets; the collection goes with the server's directory.
    pub async fn clean_up(&self) {
        let js = async_nats::jetstream::new(
            async_nats::connect(self.nats.as_str()).await.expect("nats"),
        );
        let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
        for name in names {
            if name == self.id.to_uppercase() || name.starts_with(&format!("KV_{}_", self.id)) {
                js.delete_stream(&name).await.expect("delete stream");
            }
        }
    }
}

/// A gRPC channel to `addr` that presents `token` with every call.
pub async fn channel(
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

/// Submits `text` to the intake at `intake` and waits for its decision, read through the
/// `Decisions` service at `decisions` (the feedback role's).
pub async fn decided(intake: SocketAddr, decisions: SocketAddr, token: &str, text: &str) -> Ticket {
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
