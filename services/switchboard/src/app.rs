//! Wires the roles a process runs to the bus, the knowledge base and the HTTP and gRPC listeners, and
//! shuts them down in order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, Kv, validate_key};
use switchboard_feedback::{DecisionsService, FeedbackHandler};
use switchboard_intake::{InboundHandler, Intake, IntakeService, http_routes};
use switchboard_metrics::{MetricsHandler, StatsService, Tally};
use switchboard_parser::{
    DEPARTMENTS_BUCKET, DepartmentCatalog, FallbackParser, LlmParser, LocalParser, Parser,
    ParserStage,
};
use switchboard_proto::Stage;
use switchboard_proto::decisions_server::DecisionsServer;
use switchboard_proto::rules_server::RulesServer;
use switchboard_proto::stats_server::StatsServer;
use switchboard_retriever::{IncidentWatch, KnowledgeBase, KnowledgeBaseService, RetrieverStage};
use switchboard_router::{RouterStage, RuleBook, RulesService};
use switchboard_runtime::{
    Handler, Metrics, Publisher, RoleRunner, RunningRole, Subjects, TicketHandler, error_chain,
};
use switchboard_sentiment::{SentimentStage, THREADS_BUCKET};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::roles::{Role, Roles};
use crate::settings::{BusKind, Settings};

pub const RULES_BUCKET: &str = "rules";
pub const DECISIONS_BUCKET: &str = "decisions";
pub const IDEMPOTENCY_BUCKET: &str = "idempotency";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bus unavailable")]
    Bus(#[from] switchboard_bus::BusError),
    #[error("knowledge base unavailable in {location}")]
    KnowledgeBase {
        location: String,
        #[source]
        source: switchboard_retriever::RetrieverError,
    },
    #[error("embedder unavailable")]
    Embedder(#[source] switchboard_embed::EmbedError),
    #[error("a start-up task did not finish")]
    Task(#[source] tokio::task::JoinError),
    #[error("router rules unavailable")]
    Rules(#[from] switchboard_router::RouterError),
    #[error("invalid {role} configuration")]
    Config {
        role: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Connects to the bus the settings name.
pub async fn connect_bus(settings: &Settings) -> Result<Arc<dyn Bus>, AppError> {
    Ok(match settings.bus.kind {
        BusKind::Memory => Arc::new(MemoryBus::new()),
        BusKind::Nats => {
            let n = &settings.bus.nats;
            Arc::new(
                NatsBus::connect(NatsConfig {
                    url: n.url.clone(),
                    stream: n.stream.clone(),
                    subjects: vec![Subjects::new(&settings.subject_prefix).all()],
                    kv_prefix: n.kv_prefix.clone(),
                    replicas: n.replicas,
                    max_age: Duration::from_secs(n.max_age_days * 24 * 3600),
                    ..NatsConfig::default()
                })
                .await?,
            )
        }
    })
}

/// What a process shares between its roles.
#[derive(Debug, Clone)]
pub struct Shared {
    pub bus: Arc<dyn Bus>,
    pub metrics: Metrics,
    /// The knowledge base, when this process runs a role that needs it. qdrant-edge opens a directory
    /// once per process, so the retriever and feedback roles share one handle.
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
    servers: CancellationToken,
    server_tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown_timeout: Duration,
    /// Keeps the rule watch alive as long as the router runs.
    _rules: Option<Arc<RuleBook>>,
}

/// Starts `roles` on `bus`. Listeners bind the configured addresses (port 0 picks a free one).
pub async fn start(
    settings: &Settings,
    roles: &Roles,
    bus: Arc<dyn Bus>,
) -> Result<Running, AppError> {
    let subjects = Subjects::new(&settings.subject_prefix);
    let metrics = Metrics::new();
    let publisher = Publisher::new(bus.clone());
    let kb = if roles.contains(Role::Retriever) || roles.contains(Role::Feedback) {
        Some(crate::knowledge::open(settings).await?)
    } else {
        None
    };
    let shared = Shared {
        bus: bus.clone(),
        metrics: metrics.clone(),
        kb: kb.clone(),
    };
    let runner = |role: Role, filter: String, handler: Arc<dyn Handler>| RoleRunner {
        role: role.name(),
        filter,
        handler,
        publisher: publisher.clone(),
        subjects: subjects.clone(),
        metrics: metrics.clone(),
        options: settings.runner.clone(),
    };

    let mut runners = Vec::new();
    let mut grpc = tonic::service::Routes::builder();
    let mut http = Router::new();
    let mut intake = None;
    let mut rules_book = None;
    for &role in &roles.0 {
        match role {
            Role::Intake => {
                settings.intake.validate().map_err(|e| AppError::Config {
                    role: "intake",
                    source: Box::new(e),
                })?;
                let idempotency = bus.kv(IDEMPOTENCY_BUCKET).await?;
                let i = Arc::new(Intake::new(
                    publisher.clone(),
                    subjects.clone(),
                    idempotency,
                    metrics.clone(),
                    settings.intake.clone(),
                ));
                grpc.add_service(IntakeService::new(i.clone()).into_server());
                http = http.merge(http_routes(i.clone()));
                runners.push(runner(
                    role,
                    subjects.inbound_all(),
                    Arc::new(InboundHandler::new(i.clone())),
                ));
                intake = Some(i);
            }
            Role::Parser => {
                let parser: Arc<dyn Parser> = if settings.llm.enabled {
                    let catalog = DepartmentCatalog::follow(
                        bus.kv(RULES_BUCKET).await?,
                        bus.kv(DEPARTMENTS_BUCKET).await?,
                    )
                    .await?;
                    let llm = LlmParser::new(
                        &settings.llm,
                        catalog,
                        metrics.clone(),
                        settings.llm_deadline(),
                    )
                    .map_err(|e| AppError::Config {
                        role: "parser",
                        source: Box::new(e),
                    })?;
                    Arc::new(FallbackParser::new(Arc::new(llm)))
                } else {
                    Arc::new(LocalParser)
                };
                let stage = ParserStage::new(parser);
                let handler = Arc::new(TicketHandler::new(stage, subjects.clone()));
                runners.push(runner(role, subjects.stage(Stage::Received), handler));
            }
            Role::Sentiment => {
                let threads = bus.kv(THREADS_BUCKET).await?;
                let stage =
                    SentimentStage::new(settings.sentiment.clone(), threads).map_err(|e| {
                        AppError::Config {
                            role: "sentiment",
                            source: Box::new(e),
                        }
                    })?;
                let handler = Arc::new(TicketHandler::new(stage, subjects.clone()));
                runners.push(runner(role, subjects.stage(Stage::Parsed), handler));
            }
            Role::Retriever => {
                let kb = shared.kb.clone().expect("opened above for the retriever");
                publish_departments(&kb, bus.kv(DEPARTMENTS_BUCKET).await?).await;
                grpc.add_service(KnowledgeBaseService::new(kb.clone()).into_server());
                let stage = RetrieverStage {
                    kb,
                    limit: settings.retriever.top_k,
                    incidents: Arc::new(IncidentWatch::new(&settings.sentiment)),
                };
                let handler = Arc::new(TicketHandler::new(stage, subjects.clone()));
                runners.push(runner(role, subjects.stage(Stage::Assessed), handler));
            }
            Role::Router => {
                let rules_kv = bus.kv(RULES_BUCKET).await?;
                let book = Arc::new(RuleBook::follow(rules_kv.clone()).await?);
                let decisions = bus.kv(DECISIONS_BUCKET).await?;
                grpc.add_service(RulesServer::new(RulesService::new(rules_kv)));
                let stage = RouterStage::new(
                    book.clone(),
                    decisions,
                    settings.router.clone(),
                    settings.sentiment.clone(),
                );
                let handler = Arc::new(TicketHandler::new(stage, subjects.clone()));
                runners.push(runner(role, subjects.stage(Stage::Matched), handler));
                rules_book = Some(book);
            }
            Role::Feedback => {
                let kb = shared.kb.clone().expect("opened above for feedback");
                let decisions = bus.kv(DECISIONS_BUCKET).await?;
                grpc.add_service(DecisionsServer::new(DecisionsService::new(
                    decisions.clone(),
                    publisher.clone(),
                    subjects.clone(),
                )));
                let handler = Arc::new(
                    FeedbackHandler::new(kb, decisions, subjects.clone())
                        .with_threads(bus.kv(THREADS_BUCKET).await?),
                );
                runners.push(runner(role, subjects.feedback_all(), handler));
            }
            Role::Metrics => {
                let tally = Arc::new(Mutex::new(Tally::default()));
                grpc.add_service(StatsServer::new(StatsService::new(tally.clone())));
                let handler = Arc::new(MetricsHandler::new(
                    tally,
                    metrics.clone(),
                    subjects.clone(),
                ));
                runners.push(runner(role, subjects.all(), handler));
            }
        }
    }

    let mut running_roles = Vec::new();
    for r in runners {
        running_roles.push(r.start().await?);
    }

    let servers = CancellationToken::new();
    let http = http.merge(ops_routes(metrics.clone()));
    let (http_addr, http_task) = serve_http(settings.http.addr, http, servers.clone()).await?;
    let (grpc_addr, grpc_task) =
        serve_grpc(settings.grpc.addr, grpc.routes(), servers.clone()).await?;
    tracing::info!(roles = ?roles.0.iter().map(|r| r.name()).collect::<Vec<_>>(), %http_addr, %grpc_addr, "switchboard started");
    Ok(Running {
        http_addr,
        grpc_addr,
        intake,
        shared,
        roles: running_roles,
        servers,
        server_tasks: vec![http_task, grpc_task],
        shutdown_timeout: settings.shutdown_timeout(),
        _rules: rules_book,
    })
}

/// Tells LLM parsers which departments the knowledge base knows, so they may suggest them. Only missing
/// keys are created, so a description an admin wrote is kept. Best effort: parsers still have the
/// departments the rules name, so a failure is logged, not fatal.
async fn publish_departments(kb: &KnowledgeBase, kv: Arc<dyn Kv>) {
    let departments = match kb.departments().await {
        Ok(departments) => departments,
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot list the knowledge base's departments");
            return;
        }
    };
    for department in departments {
        if validate_key(&department).is_err() {
            tracing::warn!(%department, "department id is not a valid key; not published");
            continue;
        }
        if let Err(e) = kv.create(&department, prost::bytes::Bytes::new()).await {
            tracing::warn!(%department, error = %error_chain(&e), "cannot publish a department");
        }
    }
}

/// Liveness, readiness and the Prometheus exposition.
fn ops_routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // Roles are bound before the listener starts, so a process that answers is ready.
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
}

/// Binds `addr` and says which address it got (port 0 picks a free one).
async fn bind(addr: std::net::SocketAddr) -> Result<(TcpListener, std::net::SocketAddr), AppError> {
    let listen = |source| AppError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    Ok((listener, local))
}

async fn serve_http(
    addr: std::net::SocketAddr,
    router: Router,
    stop: CancellationToken,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), AppError> {
    let (listener, local) = bind(addr).await?;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %error_chain(&e), "HTTP server failed");
        }
    });
    Ok((local, task))
}

async fn serve_grpc(
    addr: std::net::SocketAddr,
    routes: tonic::service::Routes,
    stop: CancellationToken,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), AppError> {
    let (listener, local) = bind(addr).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %error_chain(&e), "gRPC server failed");
        }
    });
    Ok((local, task))
}

impl Running {
    /// Stops taking tickets, lets the ones in flight finish, then stops the roles in pipeline order.
    /// On an embedded bus nothing outlives the process, so every stage is drained first.
    pub async fn shutdown(mut self) {
        let deadline = Instant::now() + self.shutdown_timeout;
        self.servers.cancel();
        for task in std::mem::take(&mut self.server_tasks) {
            let _ = tokio::time::timeout_at(deadline.into(), task).await;
        }
        if !self.shared.bus.durable() {
            self.drain(deadline).await;
        }
        for role in self.roles {
            let name = role.role;
            if tokio::time::timeout_at(deadline.into(), role.stop())
                .await
                .is_err()
            {
                tracing::warn!(role = name, "role did not stop before the shutdown timeout");
            }
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

    /// Stops one role as a crash would (for tests of redelivery); the others keep running.
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
