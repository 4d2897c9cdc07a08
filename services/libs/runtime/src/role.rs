//! How a role describes itself to the process that runs it: what it consumes and with which handler,
//! the gRPC and HTTP services it serves, the KV buckets it uses, what it must do before it takes work,
//! and the background tasks it needs. Each role crate builds its own description next to its code; the
//! binary loops over the descriptions of the roles it was asked to run and wires them all the same way.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::convert::Infallible;

use switchboard_bus::Bus;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::Request;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::BoxError;
use crate::handler::{Handler, TicketHandler, TicketStage};
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::subjects::Subjects;

/// A boxed future of start-up or background work.
pub type Work = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// A gRPC service a role serves, to be added to the process's one gRPC server (see [`grpc`]).
pub type GrpcService = Box<dyn FnOnce(Routes) -> Routes + Send>;

/// Wraps a tonic service for [`RoleParts::grpc`]. Services are added to one [`Routes`] rather than
/// each given their own, which cannot be merged: each would bring its own fallback.
pub fn grpc<S>(service: S) -> GrpcService
where
    S: Service<Request<Body>, Error = Infallible> + NamedService + Clone + Send + Sync + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    Box::new(move |routes: Routes| routes.add_service(service))
}

/// What every role is built from.
#[derive(Debug, Clone)]
pub struct RoleContext {
    pub bus: Arc<dyn Bus>,
    pub publisher: Publisher,
    pub subjects: Subjects,
    pub metrics: Metrics,
}

/// One role, described by its crate.
#[derive(Default)]
pub struct RoleParts {
    /// The role's name: its durable consumer's, its metrics' and its logs'.
    pub name: &'static str,
    /// The subject filter it consumes and the handler of each message; `None` for a role that only
    /// serves.
    pub consumes: Option<(String, Arc<dyn Handler>)>,
    /// Each replica reads the whole retained stream under that filter on a consumer of its own
    /// ([`switchboard_bus::Bus::replica_consumer`]) instead of splitting the role's durable consumer
    /// with the others: for a role whose state is derived from the stream (the cockpit's tally), so
    /// every replica holds all of it and a restarted one rebuilds it.
    pub each_replica_reads_all: bool,
    /// Its gRPC services.
    pub grpc: Vec<GrpcService>,
    /// Its HTTP routes.
    pub http: Option<axum::Router>,
    /// The OpenAPI description of those routes, merged with the other roles' into `/openapi.json`.
    pub openapi: Option<utoipa::openapi::OpenApi>,
    /// Exact paths of those routes anyone may fetch without a credential: the console's static
    /// files, which hold no data and must load before anyone has logged in.
    pub public: Vec<String>,
    /// The KV buckets it reads or writes.
    pub buckets: Vec<&'static str>,
    /// Run once the listeners are up and before the role takes work (a classifier's first training):
    /// the process is not ready until it is done.
    pub warm_up: Option<Work>,
    /// Work that runs as long as the role does (a change feed): supervised like the role.
    pub tasks: Vec<(String, Work)>,
    /// Kept alive as long as the role runs (a rule watch, a trainer).
    pub keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for RoleParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleParts")
            .field("name", &self.name)
            .field(
                "consumes",
                &self.consumes.as_ref().map(|(filter, _)| filter),
            )
            .field("grpc", &self.grpc.len())
            .field("http", &self.http.is_some())
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl RoleParts {
    /// A role that consumes the tickets at its stage's input ([`TicketStage::INPUT`]).
    pub fn stage<S: TicketStage>(name: &'static str, ctx: &RoleContext, stage: S) -> Self {
        Self {
            name,
            consumes: Some((
                ctx.subjects.stage(S::INPUT),
                Arc::new(TicketHandler::new(stage, ctx.subjects.clone())),
            )),
            ..Self::default()
        }
    }
}
