//! The router as a role of the process: it takes matched tickets and gives routed or review ones,
//! deciding by the live rules it watches, keeps each decision in `decisions`, and serves `Rules`.

use std::sync::Arc;

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
    let stage = RouterStage::new(book.clone(), decisions, config.clone(), policy.clone());
    Ok(RoleParts {
        grpc: vec![switchboard_runtime::grpc(RulesServer::new(
            RulesService::new(rules),
        ))],
        buckets: vec![buckets::RULES, buckets::DECISIONS],
        // The rule watch lives as long as the book.
        keep: vec![Box::new(book)],
        ..RoleParts::stage("router", ctx, stage)
    })
}
