//! Wires the roles a process runs to the bus, the knowledge base and the HTTP and gRPC listeners, under
//! one supervisor, and shuts them down in order. Each role describes itself ([`RoleParts`], built in its
//! own crate); this file only loops over the descriptions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use switchboard_accounts::{Auth, AuthLayer};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{Credentials, NatsBus, NatsConfig};
use switchboard_intake::Intake;
use switchboard_knowledge::{KNOWLEDGE_BUCKET, KnowledgeBase, TrainingPlan};
use switchboard_runtime::{
    BoxError, Failure, Failures, Metrics, Publisher, RoleContext, RoleParts, RoleRunner,
    RunningRole, SigningBus, Subjects, Supervisor,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::readiness::{Readiness, ops_routes};
use crate::roles::{Role, Roles};
use crate::settings::{BusKind, GrpcListen, HttpListen, Settings};

/// How often the gRPC server pings an idle connection, and how long it waits for the answer.
const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("bus unavailable")]
    Bus(#[from] switchboard_bus::BusError),
    #[error("knowledge base unavailable in {location}")]
    KnowledgeBase {
        location: String,
        #[source]
        source: switchboard_knowledge::KnowledgeError,
    },
    #[error("embedder unavailable")]
    Embedder(#[source] switchboard_embed::EmbedError),
    #[error("a start-up task did not finish")]
    Task(#[source] tokio::task::JoinError),
    #[error("the {role} role cannot start")]
    Role {
        role: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the accounts store cannot be opened")]
    Auth(#[source] switchboard_accounts::AuthError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Deletes the NATS stream and KV buckets `settings` name, for a deployment on its own prefix that is
/// done with (a bench run, a test); a no-op on the embedded bus, whose data is its directory's.
pub async fn delete_bus_data(settings: &Settings) -> Result<(), BoxError> {
    use futures::TryStreamExt;
    if settings.bus.kind != BusKind::Nats {
        return Ok(());
    }
    let n = &settings.bus.nats;
    let mut options = async_nats::ConnectOptions::new();
    if let Some((user, password)) = n.credentials()? {
        options = options.user_and_password(user, password);
    }
    let js = async_nats::jetstream::new(options.connect(&n.url).await?);
    let buckets = format!("KV_{}_", n.kv_prefix);
    let names: Vec<String> = js.stream_names().try_collect().await?;
    for name in names {
        if name == n.stream || name.starts_with(&buckets) {
            js.delete_stream(&name).await?;
        }
    }
    Ok(())
}

/// Connects to the bus the settings name: the embedded one is stored in `<data_dir>/bus`, so what it
/// accepted survives a restart.
///
/// With a signing key configured, everything published through it is signed
/// ([`switchboard_runtime::SigningBus`]).
pub async fn connect_bus(settings: &Settings) -> Result<Arc<dyn Bus>, AppError> {
    let bus: Arc<dyn Bus> = match settings.bus.kind {
        BusKind::Memory => Arc::new(MemoryBus::open(&settings.bus_dir())?),
        BusKind::Nats => {
            let n = &settings.bus.nats;
            let config = NatsConfig {
                url: n.url.clone(),
                credentials: n
                    .credentials()?
                    .map(|(user, password)| Credentials { user, password }),
                stream: n.stream.clone(),
                subjects: vec![Subjects::new(&settings.subject_prefix).all()],
                kv_prefix: n.kv_prefix.clone(),
                replicas: n.replicas,
                max_age: Duration::from_secs(n.max_age_days * 24 * 3600),
                ..NatsConfig::default()
            };
            // Any failure to connect or set the stream up may be the server restarting.
            let within = Duration::from_secs(n.connect_within_secs);
            let connect = || NatsBus::connect(config.clone());
            Arc::new(crate::reach::reach("NATS", &n.url, within, |_| true, connect).await?)
        }
    };
    Ok(match settings.bus.signer()? {
        Some(signer) => Arc::new(SigningBus::new(bus, signer)),
        None => {
            if settings.bus.kind == BusKind::Nats {
                tracing::warn!(
                    "bus.signing_key_env is not set: roles take messages on internal subjects from anyone who may publish on NATS"
                );
            }
            bus
        }
    })
}

/// What a process shares between its roles.
#[derive(Debug, Clone)]
pub struct Shared {
    pub bus: Arc<dyn Bus>,
    pub metrics: Metrics,
    /// The knowledge base, when this process runs a role that needs it. qdrant-edge opens a directory
    /// once per process, so the retriever and feedback roles share one handle, and the router mines
    /// it for rule suggestions when it runs beside them.
    pub kb: Option<KnowledgeBase>,
}

/// A started process: its roles, its listeners and their addresses.
#[derive(Debug)]
pub struct Running {
    pub http_addr: std::net::SocketAddr,
    pub grpc_addr: std::net::SocketAddr,
    pub intake: Option<Arc<Intake>>,
    pub shared: Shared,
    roles: Vec<RunningRole>,
    supervisor: Supervisor,
    failures: Failures,
    servers: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown_timeout: Duration,
    /// What the roles keep alive (rule watches, trainers) for as long as they run.
    _kept: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// Builds the description of one role from the settings: the only place that knows which settings
/// each role takes.
async fn describe(
    role: Role,
    settings: &Settings,
    ctx: &RoleContext,
    kb: Option<&KnowledgeBase>,
    intake: &mut Option<Arc<Intake>>,
) -> Result<RoleParts, BoxError> {
    // The router mines the knowledge base when there is one; the retriever and feedback need it.
    let history = kb.cloned();
    let kb = || kb.cloned().ok_or("no knowledge base was opened");
    Ok(match role {
        Role::Intake => {
            // Every ticket passes these before its decision; assignment and what follows do not
            // hold a ticket's decision back.
            let pipeline = [Role::Parser, Role::Sentiment, Role::Retriever, Role::Router];
            let pipeline = pipeline.map(Role::name);
            let (parts, started) =
                switchboard_intake::role(ctx, &settings.intake, &pipeline).await?;
            *intake = Some(started);
            parts
        }
        Role::Parser => {
            switchboard_parser::role(ctx, &settings.llm, settings.llm_deadline()).await?
        }
        Role::Sentiment => {
            switchboard_sentiment::role(ctx, &settings.sentiment, &settings.policy).await?
        }
        Role::Retriever => {
            let plan = TrainingPlan {
                neighbours: settings.retriever.top_k,
                weighing: settings.router.weighing(),
            };
            let tickets = kb()?;
            let policies = crate::knowledge::open_policies(settings, &tickets).await?;
            switchboard_retriever::role(ctx, tickets, Some(policies), plan, &settings.policy)
                .await?
        }
        Role::Router => {
            switchboard_router::role(ctx, &settings.router, &settings.policy, history).await?
        }
        Role::Assign => switchboard_assign::role(ctx, &settings.assign).await?,
        Role::Feedback => {
            switchboard_feedback::role(ctx, kb()?, settings.feedback.corrections).await?
        }
        Role::Metrics => switchboard_metrics::role(ctx),
        Role::Console => switchboard_console::role(ctx, &settings.console).await?,
    })
}

/// Starts `roles` on `bus`. Listeners bind the configured addresses (port 0 picks a free one) and
/// answer at once; `/readyz` says ready once every role has warmed up and bound its consumer.
pub async fn start(
    settings: &Settings,
    roles: &Roles,
    bus: Arc<dyn Bus>,
) -> Result<Running, AppError> {
    let ctx = RoleContext {
        bus: bus.clone(),
        publisher: Publisher::new(bus.clone()),
        subjects: Subjects::new(&settings.subject_prefix),
        metrics: Metrics::new(),
    };
    let (supervisor, failures) = Supervisor::new();
    let mut tasks = Vec::new();
    let kb = if roles.contains(Role::Retriever) || roles.contains(Role::Feedback) {
        let kb = crate::knowledge::open(settings).await?;
        let feed = kb
            .share_changes(bus.kv(KNOWLEDGE_BUCKET).await?)
            .await
            .map_err(|source| AppError::KnowledgeBase {
                location: settings.knowledge_location(),
                source,
            })?;
        tasks.push(supervisor.spawn("knowledge change feed", async move {
            feed.await.map_err(Into::into)
        }));
        Some(kb)
    } else {
        None
    };

    let mut intake = None;
    let mut described = Vec::new();
    for &role in &roles.0 {
        let parts = describe(role, settings, &ctx, kb.as_ref(), &mut intake)
            .await
            .map_err(|source| AppError::Role {
                role: role.name(),
                source,
            })?;
        described.push(parts);
    }

    let readiness = Readiness::new(bus.clone(), kb.clone());
    let auth = Auth::new(&bus, settings.auth.clone())
        .await
        .map_err(AppError::Auth)?;
    if roles.contains(Role::Console) {
        let accounts = auth.accounts().clone();
        tasks.push(supervisor.spawn("expired-session purge", purge_sessions(accounts)));
    }
    let mut grpc = tonic::service::Routes::default();
    let mut http = Router::new();
    let mut openapi = crate::openapi::base();
    let mut public = Vec::new();
    for parts in &mut described {
        public.append(&mut parts.public);
        for service in std::mem::take(&mut parts.grpc) {
            grpc = service(grpc);
        }
        if let Some(routes) = parts.http.take() {
            http = http.merge(routes);
        }
        if let Some(api) = parts.openapi.take() {
            openapi.merge(api);
        }
    }
    let servers = CancellationToken::new();
    // Every route behind the one auth layer: only the open paths it names answer without a credential.
    let http = http
        .merge(auth.router())
        .merge(crate::openapi::routes(openapi))
        .merge(ops_routes(ctx.metrics.clone(), readiness.clone()))
        .layer(auth.layer().with_open(public));
    let (http_addr, http_task) =
        serve_http(&settings.http, http, &supervisor, servers.clone()).await?;
    let (grpc_addr, grpc_task) = serve_grpc(
        &settings.grpc,
        grpc,
        auth.layer(),
        &supervisor,
        servers.clone(),
    )
    .await?;
    tasks.extend([http_task, grpc_task]);

    // Every role checks that what it takes on an internal subject was signed by a role.
    let signer = settings.bus.signer()?;
    let mut running_roles = Vec::new();
    let mut kept = Vec::new();
    for parts in described {
        let name = parts.name;
        let failed = |source| AppError::Role { role: name, source };
        if let Some(warm_up) = parts.warm_up {
            warm_up.await.map_err(failed)?;
        }
        for (task, work) in parts.tasks {
            tasks.push(supervisor.spawn(task, work));
        }
        kept.extend(parts.keep);
        if let Some((filter, handler)) = parts.consumes {
            let runner = RoleRunner {
                role: name,
                filter,
                each_replica_reads_all: parts.each_replica_reads_all,
                handler,
                publisher: ctx.publisher.clone(),
                subjects: ctx.subjects.clone(),
                metrics: ctx.metrics.clone(),
                options: settings.runner.clone(),
                signer: signer.clone(),
            };
            running_roles.push(runner.start(&supervisor).await?);
        }
        tracing::info!(role = name, buckets = ?parts.buckets, "role started");
    }
    readiness.roles_started();
    tracing::info!(roles = ?roles.0.iter().map(|r| r.name()).collect::<Vec<_>>(), %http_addr, %grpc_addr, "switchboard started");
    Ok(Running {
        http_addr,
        grpc_addr,
        intake,
        shared: Shared {
            bus,
            metrics: ctx.metrics,
            kb,
        },
        roles: running_roles,
        supervisor,
        failures,
        servers,
        tasks,
        shutdown_timeout: settings.shutdown_timeout(),
        _kept: kept,
    })
}

/// Expired sessions are refused when presented; this deletes those nobody presents again, hourly, in
/// the processes that serve logins. A failed round is logged and tried again at the next.
async fn purge_sessions(accounts: switchboard_accounts::Accounts) -> Result<(), BoxError> {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        match accounts.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sessions deleted"),
            Err(e) => {
                tracing::warn!(error = %switchboard_runtime::error_chain(&e), "expired sessions not purged")
            }
        }
    }
}

/// Binds `addr` and says which address it got (port 0 picks a free one).
async fn bind(addr: std::net::SocketAddr) -> Result<(TcpListener, std::net::SocketAddr), AppError> {
    let listen = |source| AppError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    Ok((listener, local))
}

async fn serve_http(
    listen: &HttpListen,
    router: Router,
    supervisor: &Supervisor,
    stop: CancellationToken,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), AppError> {
    let (listener, local) = bind(listen.addr).await?;
    let limits = listen.limits();
    let task = supervisor.spawn("HTTP server", async move {
        switchboard_listen::serve_http(listener, router, limits, stop).await;
        Ok(())
    });
    Ok((local, task))
}

async fn serve_grpc(
    listen: &GrpcListen,
    routes: tonic::service::Routes,
    auth: AuthLayer,
    supervisor: &Supervisor,
    stop: CancellationToken,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), AppError> {
    let (listener, local) = bind(listen.addr).await?;
    let incoming = switchboard_listen::limited_incoming(
        listener,
        listen.max_connections,
        listen.max_connections_per_client,
    );
    let task = supervisor.spawn("gRPC server", async move {
        tonic::transport::Server::builder()
            // Peers that stop answering (a half-open TCP connection) are dropped, not held forever.
            .http2_keepalive_interval(Some(GRPC_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
            .layer(switchboard_listen::OversizedIsResourceExhausted)
            .layer(auth)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await
            .map_err(Into::into)
    });
    Ok((local, task))
}

impl Running {
    /// The first supervised task (a role, a listener, the change feed) that ended while the process was
    /// not stopping; pending while all run.
    pub async fn failed(&mut self) -> Failure {
        self.failures.next().await
    }

    /// Stops taking tickets, lets the ones in flight finish, then stops the roles in pipeline order.
    /// On a volatile bus nothing outlives the process, so every stage is drained first; a durable one
    /// (NATS, the stored embedded bus) redelivers what was in flight after the restart.
    pub async fn shutdown(mut self) {
        let deadline = Instant::now() + self.shutdown_timeout;
        self.supervisor.stop();
        self.servers.cancel();
        if !self.shared.bus.durable() {
            self.drain(deadline).await;
        }
        for role in std::mem::take(&mut self.roles) {
            let name = role.role;
            if tokio::time::timeout_at(deadline.into(), role.stop())
                .await
                .is_err()
            {
                tracing::warn!(role = name, "role did not stop before the shutdown timeout");
            }
        }
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = tokio::time::timeout_at(deadline.into(), task).await;
        }
        if let Some(kb) = &self.shared.kb {
            kb.flush().await;
        }
        tracing::info!("switchboard stopped");
    }

    /// Waits until no role has a message waiting or in flight, or the deadline passes. Roles are read one
    /// after another while tickets move between them, so only two quiet rounds in a row count as drained.
    async fn drain(&self, deadline: Instant) {
        let mut quiet_rounds = 0;
        loop {
            let mut pending = 0;
            for role in &self.roles {
                pending += role.pending().await.unwrap_or(0);
            }
            quiet_rounds = if pending == 0 { quiet_rounds + 1 } else { 0 };
            if quiet_rounds == 2 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(pending, "shutdown timeout reached with tickets in flight");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops one role as a crash would (for tests of redelivery and supervision); the others keep
    /// running, and [`Self::failed`] reports it.
    pub fn abort_role(&mut self, name: &str) -> bool {
        match self.roles.iter().position(|r| r.role == name) {
            Some(i) => {
                self.roles.remove(i).abort();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default bus keeps its buckets in `<data_dir>/bus`: a second process start finds them.
    #[tokio::test]
    async fn the_embedded_bus_is_stored_under_the_data_dir() {
        let data = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        assert_eq!(settings.bus.kind, BusKind::Memory);
        {
            let bus = connect_bus(&settings).await.unwrap();
            assert!(bus.durable());
            let kv = bus.kv("rules").await.unwrap();
            kv.put("r1", "rule".into()).await.unwrap();
        }
        assert!(settings.bus_dir().join("bus.redb").is_file());
        let bus = connect_bus(&settings).await.unwrap();
        let entry = bus.kv("rules").await.unwrap().get("r1").await.unwrap();
        assert_eq!(
            entry.map(|e| (e.value, e.revision)),
            Some(("rule".into(), 1))
        );
    }
}
