//! Metrics as a role of the process: it reads every event under the prefix into the cockpit's tally and
//! serves `Stats`.

use std::sync::{Arc, Mutex};

use switchboard_proto::stats_server::StatsServer;
use switchboard_runtime::{RoleContext, RoleParts};

use crate::handler::MetricsHandler;
use crate::service::StatsService;
use crate::tally::Tally;

pub fn role(ctx: &RoleContext) -> RoleParts {
    let tally = Arc::new(Mutex::new(Tally::default()));
    RoleParts {
        name: "metrics",
        consumes: Some((
            ctx.subjects.all(),
            Arc::new(MetricsHandler::new(
                tally.clone(),
                ctx.metrics.clone(),
                ctx.subjects.clone(),
            )),
        )),
        grpc: vec![switchboard_runtime::grpc(StatsServer::new(
            StatsService::new(tally),
        ))],
        ..RoleParts::default()
    }
}
