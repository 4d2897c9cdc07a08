//! Intake as a role of the process: its three doors (gRPC `Intake`, the HTTP webhook, CloudEvents on
//! `<prefix>.inbound.<channel>`) over one [`Intake`], with the idempotency keys in their bucket.

use std::sync::Arc;
use std::time::Duration;

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_runtime::{BoxError, RoleContext, RoleParts, Work};

use crate::{Backlog, InboundHandler, Intake, IntakeApi, IntakeConfig, IntakeService, http_routes};

/// The bucket of idempotency keys: a key seen before returns the ticket it made.
pub const IDEMPOTENCY_BUCKET: &str = "idempotency";

/// The role, and the intake itself for in-process callers (`switchboard route`, the bench).
/// `pipeline` names the durables of the roles every ticket passes before its decision, whose
/// backlogs the admission gate watches ([`Backlog`]).
pub async fn role(
    ctx: &RoleContext,
    config: &IntakeConfig,
    pipeline: &[&str],
) -> Result<(RoleParts, Arc<Intake>), BoxError> {
    config.validate()?;
    let idempotency = ctx.bus.kv(IDEMPOTENCY_BUCKET).await?;
    let work = WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?;
    let mut intake = Intake::new(
        ctx.publisher.clone(),
        ctx.subjects.clone(),
        idempotency,
        ctx.metrics.clone(),
        config.clone(),
    )
    .with_work(work);
    let mut tasks = Vec::new();
    if config.max_backlog > 0 {
        let backlog = Arc::new(Backlog::new(
            config.max_backlog,
            Duration::from_secs(config.retry_after_secs),
        ));
        let durables = pipeline.iter().map(|&d| d.to_owned()).collect();
        let every = Duration::from_millis(config.backlog_poll_ms);
        let watch = Arc::clone(&backlog).watch(Arc::clone(&ctx.bus), durables, every);
        tasks.push(("intake-backlog".to_owned(), Box::pin(watch) as Work));
        intake = intake.with_backlog(backlog);
    }
    let intake = Arc::new(intake);
    let parts = RoleParts {
        name: "intake",
        consumes: Some((
            ctx.subjects.inbound_all(),
            Arc::new(InboundHandler::new(intake.clone())),
        )),
        grpc: vec![switchboard_runtime::grpc(
            IntakeService::new(intake.clone()).into_server(),
        )],
        http: Some(http_routes(intake.clone())),
        openapi: Some(<IntakeApi as utoipa::OpenApi>::openapi()),
        buckets: vec![IDEMPOTENCY_BUCKET, WORK_BUCKET],
        tasks,
        ..RoleParts::default()
    };
    Ok((parts, intake))
}
