//! Intake as a role of the process: its three doors (gRPC `Intake`, the HTTP webhook, CloudEvents on
//! `<prefix>.inbound.<channel>`) over one [`Intake`], with the idempotency keys in their bucket.

use std::sync::Arc;

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_runtime::{BoxError, RoleContext, RoleParts};

use crate::{InboundHandler, Intake, IntakeApi, IntakeConfig, IntakeService, http_routes};

/// The bucket of idempotency keys: a key seen before returns the ticket it made.
pub const IDEMPOTENCY_BUCKET: &str = "idempotency";

/// The role, and the intake itself for in-process callers (`switchboard route`, the bench).
pub async fn role(
    ctx: &RoleContext,
    config: &IntakeConfig,
) -> Result<(RoleParts, Arc<Intake>), BoxError> {
    config.validate()?;
    let idempotency = ctx.bus.kv(IDEMPOTENCY_BUCKET).await?;
    let work = WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?;
    let intake = Arc::new(
        Intake::new(
            ctx.publisher.clone(),
            ctx.subjects.clone(),
            idempotency,
            ctx.metrics.clone(),
            config.clone(),
        )
        .with_work(work),
    );
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
        ..RoleParts::default()
    };
    Ok((parts, intake))
}
