//! Metrics as a role of the process: it reads every event under the prefix into the cockpit's tally and
//! serves it as `Stats` and `GET /v1/stats`. Each replica reads the whole retained stream on a consumer
//! of its own, so every replica answers the same and a restarted one rebuilds its tally; until it has
//! read the history (its `switchboard_consumer_pending` back near 0) it answers with part of it.

use std::sync::{Arc, Mutex};

use switchboard_proto::CorrectionReason;
use switchboard_proto::stats_server::StatsServer;
use switchboard_runtime::{RoleContext, RoleParts};
use utoipa::OpenApi;

use crate::handler::MetricsHandler;
use crate::http::{MetricsApi, routes};
use crate::service::StatsService;
use crate::tally::Tally;

pub fn role(ctx: &RoleContext) -> RoleParts {
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Every correction reason the proto defines, so each reason's series exists before its first.
    let reasons = (0..).map_while(|n| CorrectionReason::try_from(n).ok());
    ctx.metrics
        .decisions_started(reasons.map(|r| r.as_str_name()));
    RoleParts {
        name: "metrics",
        consumes: Some((
            ctx.subjects.all(),
            Arc::new(MetricsHandler::new(
                tally.clone(),
                ctx.metrics.clone(),
                ctx.subjects.clone(),
                switchboard_runtime::now_ms(),
            )),
        )),
        each_replica_reads_all: true,
        grpc: vec![switchboard_runtime::grpc(StatsServer::new(
            StatsService::new(tally.clone()),
        ))],
        http: Some(routes(tally)),
        openapi: Some(MetricsApi::openapi()),
        ..RoleParts::default()
    }
}
