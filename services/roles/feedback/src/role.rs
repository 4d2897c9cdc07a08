//! Feedback as a role of the process: it takes agents' corrections and resolutions into the knowledge
//! base (and clears resolved threads' rounds), moves their tickets' work states, and serves `Decisions`.

use std::sync::Arc;

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_knowledge::KnowledgeBase;
use switchboard_policy::THREADS_BUCKET;
use switchboard_proto::decisions_server::DecisionsServer;
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};

use crate::service::DecisionsService;
use crate::{CorrectionsConfig, FeedbackHandler};

pub async fn role(
    ctx: &RoleContext,
    kb: KnowledgeBase,
    corrections: CorrectionsConfig,
) -> Result<RoleParts, BoxError> {
    let decisions = ctx.bus.kv(buckets::DECISIONS).await?;
    let handler = FeedbackHandler::new(kb, decisions.clone(), ctx.subjects.clone())
        .with_corrections(corrections)
        .with_threads(ctx.bus.kv(THREADS_BUCKET).await?)
        .with_work(WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?);
    Ok(RoleParts {
        name: "feedback",
        consumes: Some((ctx.subjects.feedback_all(), Arc::new(handler))),
        grpc: vec![switchboard_runtime::grpc(DecisionsServer::new(
            DecisionsService::new(decisions, ctx.publisher.clone(), ctx.subjects.clone()),
        ))],
        buckets: vec![buckets::DECISIONS, THREADS_BUCKET, WORK_BUCKET],
        ..RoleParts::default()
    })
}
