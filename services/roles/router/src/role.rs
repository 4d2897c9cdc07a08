//! The router as a role of the process: it takes matched tickets and gives routed or review ones,
//! deciding by the live rules it watches, keeps each decision in `decisions`, moves each ticket's work state
//! in `work`, and serves `Rules`.

use std::sync::Arc;

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_policy::PolicyConfig;
use switchboard_proto::rules_server::RulesServer;
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};

use crate::RouterConfig;
use crate::rules::RuleBook;
use crate::service::RulesService;
use crate::stage::RouterStage;

pub async fn role(
    ctx: &RoleContext,
    config: &RouterConfig,
    policy: &PolicyConfig,
) -> Result<RoleParts, BoxError> {
    let rules = ctx.bus.kv(buckets::RULES).await?;
    let book = Arc::new(RuleBook::follow(rules.clone()).await?);
    let decisions = ctx.bus.kv(buckets::DECISIONS).await?;
    let work = WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?;
    let stage =
        RouterStage::new(book.clone(), decisions, config.clone(), policy.clone()).with_work(work);
    Ok(RoleParts {
        grpc: vec![switchboard_runtime::grpc(RulesServer::new(
            RulesService::new(rules),
        ))],
        buckets: vec![buckets::RULES, buckets::DECISIONS, WORK_BUCKET],
        // The rule watch lives as long as the book.
        keep: vec![Box::new(book)],
        ..RoleParts::stage("router", ctx, stage)
    })
}
