//! The retriever as a role of the process: it takes assessed tickets and gives matched ones, serves
//! `KnowledgeBase`, publishes the knowledge base's departments for the LLM parser, embeds their duty
//! descriptions as evidence, and keeps the classifier trained: once before it takes tickets, then in
//! the background after every change.

use std::sync::Arc;

use switchboard_bus::Kv;
use switchboard_knowledge::{KnowledgeBase, TrainingPlan};
use switchboard_policy::PolicyConfig;
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets, departments, error_chain};

use crate::{Duties, INCIDENTS_BUCKET, IncidentWatch, KnowledgeBaseService, RetrieverStage};

/// `plan` says how many similar tickets each ticket gets, and how the router weighs them; `policies`
/// holds the policy passages searched beside them.
pub async fn role(
    ctx: &RoleContext,
    kb: KnowledgeBase,
    policies: Option<KnowledgeBase>,
    plan: TrainingPlan,
    policy: &PolicyConfig,
) -> Result<RoleParts, BoxError> {
    let catalog = ctx.bus.kv(buckets::DEPARTMENTS).await?;
    publish_departments(&kb, catalog.clone()).await;
    let (duties, duty_watch) = Duties::watch(kb.clone(), catalog).await?;
    let (incidents, incident_feed) =
        IncidentWatch::shared(policy, ctx.bus.kv(INCIDENTS_BUCKET).await?).await?;
    let stage = RetrieverStage {
        kb: kb.clone(),
        limit: plan.neighbours,
        incidents,
        duties,
        policies,
    };
    // Kept current off the tickets' path; its first retrain and the warm-up's are one (they take turns,
    // and the second finds the model current).
    let trainer = kb.classifier().train_in_background(&kb, plan);
    let trained = kb.clone();
    Ok(RoleParts {
        grpc: vec![switchboard_runtime::grpc(
            KnowledgeBaseService::new(kb).into_server(),
        )],
        buckets: vec![buckets::DEPARTMENTS, INCIDENTS_BUCKET],
        // Trained before the first ticket.
        warm_up: Some(Box::pin(async move {
            trained.classifier().refresh(&trained, &plan).await?;
            Ok(())
        })),
        keep: vec![
            Box::new(trainer),
            Box::new(duty_watch),
            Box::new(incident_feed),
        ],
        ..RoleParts::stage("retriever", ctx, stage)
    })
}

/// Tells LLM parsers which departments the knowledge base knows, so they may suggest them. Only missing
/// ones are added, so a description an admin wrote is kept (see [`departments`]). Best effort: parsers
/// still have the departments the rules name, so a failure is logged, not fatal.
async fn publish_departments(kb: &KnowledgeBase, kv: Arc<dyn Kv>) {
    match kb.departments().await {
        Ok(known) => departments::announce(kv.as_ref(), known).await,
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot list the knowledge base's departments");
        }
    }
}
