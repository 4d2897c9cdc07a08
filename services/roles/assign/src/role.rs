//! The assign role as a role of the process.

use switchboard_agents::{
    AGENTS_BUCKET, AgentStore, CUSTOMERS_BUCKET, LOADS_BUCKET, LastResolvers, Loads,
};
use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};
use utoipa::OpenApi;

use crate::assigner::Assigner;
use crate::config::AssignConfig;
use crate::handler::TransitionHandler;
use crate::http::{AssignApi, routes};
use crate::queue::{QUEUE_BUCKET, Queue};
use crate::tasks::{follow_agents, keep_queue_moving};

pub async fn role(ctx: &RoleContext, config: &AssignConfig) -> Result<RoleParts, BoxError> {
    let assigner = Assigner::new(
        AgentStore::new(ctx.bus.kv(AGENTS_BUCKET).await?),
        Loads::new(ctx.bus.kv(LOADS_BUCKET).await?),
        LastResolvers::new(ctx.bus.kv(CUSTOMERS_BUCKET).await?),
        WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?,
        ctx.bus.kv(buckets::DECISIONS).await?,
        Queue::new(ctx.bus.kv(QUEUE_BUCKET).await?),
        config.clone(),
    )
    .recording_to(ctx.metrics.clone());
    Ok(RoleParts {
        name: "assign",
        consumes: Some((
            ctx.subjects.work_all(),
            std::sync::Arc::new(TransitionHandler::new(assigner.clone())),
        )),
        http: Some(routes(assigner.clone())),
        openapi: Some(AssignApi::openapi()),
        buckets: vec![
            AGENTS_BUCKET,
            LOADS_BUCKET,
            CUSTOMERS_BUCKET,
            QUEUE_BUCKET,
            WORK_BUCKET,
            buckets::DECISIONS,
        ],
        tasks: vec![
            (
                "agent follower".into(),
                Box::pin(follow_agents(assigner.clone())),
            ),
            (
                "assignment queue".into(),
                Box::pin(keep_queue_moving(assigner)),
            ),
        ],
        ..RoleParts::default()
    })
}
