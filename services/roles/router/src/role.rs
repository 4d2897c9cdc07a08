//! The router as a role of the process: it takes matched tickets and gives routed or review ones,
//! deciding by the live rules it watches, keeps each decision in `decisions`, moves each ticket's work state
//! in `work`, and serves `Rules` and the HTTP routes of [`crate::http`], mining the knowledge base for
//! rule suggestions when the process holds one.

use std::sync::Arc;

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_knowledge::KnowledgeBase;
use switchboard_policy::PolicyConfig;
use switchboard_proto::rules_server::RulesServer;
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};
use utoipa::OpenApi;

use crate::RouterConfig;
use crate::editor::RuleEditor;
use crate::history::RULE_HISTORY_BUCKET;
use crate::http::{RouterApi, RouterApiState, routes};
use crate::mined::MinedHistory;
use crate::rules::RuleBook;
use crate::service::RulesService;
use crate::stage::RouterStage;

pub async fn role(
    ctx: &RoleContext,
    config: &RouterConfig,
    policy: &PolicyConfig,
    history: Option<KnowledgeBase>,
) -> Result<RoleParts, BoxError> {
    let rules = ctx.bus.kv(buckets::RULES).await?;
    let book = Arc::new(RuleBook::follow(rules.clone()).await?);
    let decisions = ctx.bus.kv(buckets::DECISIONS).await?;
    let work = WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?;
    let editor = RuleEditor::new(rules, ctx.bus.kv(RULE_HISTORY_BUCKET).await?);
    let http = routes(RouterApiState {
        editor: editor.clone(),
        decisions: decisions.clone(),
        departments: ctx.bus.kv(buckets::DEPARTMENTS).await?,
        config: config.clone(),
        history: history.map(MinedHistory::new),
    });
    let stage =
        RouterStage::new(book.clone(), decisions, config.clone(), policy.clone()).with_work(work);
    Ok(RoleParts {
        grpc: vec![switchboard_runtime::grpc(RulesServer::new(
            RulesService::new(editor),
        ))],
        http: Some(http),
        openapi: Some(RouterApi::openapi()),
        buckets: vec![
            buckets::RULES,
            RULE_HISTORY_BUCKET,
            buckets::DECISIONS,
            buckets::DEPARTMENTS,
            WORK_BUCKET,
        ],
        // The rule watch lives as long as the book.
        keep: vec![Box::new(book)],
        ..RoleParts::stage("router", ctx, stage)
    })
}
