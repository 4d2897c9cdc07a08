//! What the end-to-end tests share: a bus of either kind under a fresh subject prefix, a pipeline seeded
//! with the project's demo knowledge base, and a collector of decisions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use switchboard::settings::BusKind;
use switchboard::{Roles, Running, Settings};
use switchboard_accounts::{Accounts, Role};
use switchboard_bus::{Bus, ConsumerSpec};
use switchboard_knowledge::{ColumnMap, import_csv};
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::Subjects;
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Nats,
}

pub fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Settings for one test: its own subject prefix, stream, buckets and data directory, listeners on free
/// ports, and a short ack wait so redeliveries after a simulated crash come quickly.
pub fn settings(kind: Kind, data: &tempfile::TempDir) -> Settings {
    let unique = format!(
        "t{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut s = Settings {
        data_dir: data.path().to_path_buf(),
        subject_prefix: unique.clone(),
        ..Settings::default()
    };
    s.http.addr = ([127, 0, 0, 1], 0).into();
    s.grpc.addr = ([127, 0, 0, 1], 0).into();
    s.runner.ack_wait_secs = 2;
    s.shutdown_timeout_secs = 10;
    s.bus.kind = match kind {
        Kind::Memory => BusKind::Memory,
        Kind::Nats => BusKind::Nats,
    };
    s.bus.nats.url = nats_url();
    s.bus.nats.stream = unique.to_uppercase();
    s.bus.nats.kv_prefix = unique;
    // Left behind only when a test fails before `clean_up`; the server then drops it within a day.
    s.bus.nats.max_age_days = 1;
    s
}

/// Deletes a NATS test's stream and KV buckets from the shared server; a no-op on the embedded bus.
pub async fn clean_up(settings: &Settings) -> anyhow::Result<()> {
    switchboard::delete_bus_data(settings)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

pub async fn bus(settings: &Settings) -> anyhow::Result<Arc<dyn Bus>> {
    switchboard::connect_bus(settings).await.with_context(|| {
        format!(
            "no bus at {}: run scripts/ensure-nats.sh (or scripts/test.sh) first",
            settings.bus.nats.url
        )
    })
}

pub fn demo_history() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/history.csv")
}

/// Starts `roles` and, when they include the retriever, imports the demo history and waits until the
/// classifier, retrained in the background, has learnt it.
pub async fn start(settings: &Settings, roles: &str, bus: Arc<dyn Bus>) -> anyhow::Result<Running> {
    let roles: Roles = roles.parse().map_err(anyhow::Error::msg)?;
    let running = switchboard::start(settings, &roles, bus).await?;
    if let Some(kb) = &running.shared.kb
        && kb.count().await? == 0
    {
        let columns = ColumnMap {
            id: Some("id".into()),
            problem_type: Some("problem_type".into()),
            ..ColumnMap::default()
        };
        import_csv(kb, &demo_history(), &columns, &mut |_| {}).await?;
        if running.shared.kb.is_some() && roles.contains(switchboard::Role::Retriever) {
            eventually(
                Duration::from_secs(60),
                "the classifier to learn the history",
                || {
                    let current = kb.classifier().is_current(kb);
                    async move { current }
                },
            )
            .await?;
        }
    }
    Ok(running)
}

/// Every decision published, routed or review, as the bus stored it (duplicates included).
#[derive(Debug, Default)]
pub struct Decisions {
    pub messages: usize,
    pub by_ticket: HashMap<String, Ticket>,
}

pub async fn collect_decisions(
    settings: &Settings,
    bus: &Arc<dyn Bus>,
) -> anyhow::Result<Arc<Mutex<Decisions>>> {
    let subjects = Subjects::new(&settings.subject_prefix);
    let decisions: Arc<Mutex<Decisions>> = Arc::default();
    for stage in [Stage::Routed, Stage::Review] {
        let consumer = bus
            .consumer(ConsumerSpec {
                durable: format!(
                    "test-{}",
                    stage.as_str_name().to_lowercase().replace('_', "-")
                ),
                filter: subjects.stage(stage),
                ack_wait: Duration::from_secs(30),
            })
            .await?;
        let decisions = decisions.clone();
        tokio::spawn(async move {
            while let Ok(d) = consumer.next().await {
                let ticket = Ticket::decode(d.payload.clone()).expect("decision payload decodes");
                let mut all = decisions.lock().await;
                all.messages += 1;
                all.by_ticket.insert(ticket.id.clone(), ticket);
                drop(all);
                d.acker.ack().await.expect("ack decision");
            }
        });
    }
    Ok(decisions)
}

/// Waits until `check` holds, failing after `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    while !check().await {
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

/// A gRPC channel that presents an API token with every call, as a connector or script does.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to each call.
#[derive(Debug, Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A new API token of `role` in the accounts the process on `bus` checks.
pub async fn token(bus: &Arc<dyn Bus>, role: Role) -> anyhow::Result<String> {
    let accounts = Accounts::open(bus, Duration::from_secs(3600)).await?;
    Ok(accounts.create_token("e2e-tests", role).await?.token)
}

/// A channel to `addr` that presents `token`.
pub async fn grpc_at(addr: impl std::fmt::Display, token: &str) -> anyhow::Result<Authed> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let bearer = MetadataValue::try_from(format!("Bearer {token}"))?;
    Ok(InterceptedService::new(channel, Bearer(bearer)))
}

/// A channel to a started process's gRPC door with an admin token.
pub async fn grpc(running: &Running) -> anyhow::Result<Authed> {
    let token = token(&running.shared.bus, Role::Admin).await?;
    grpc_at(running.grpc_addr, &token).await
}
