//! The console as a role of the process: the web console, its live feed, and the desk API over the
//! work states and decided tickets.

use switchboard_desk::{WORK_BUCKET, WorkStates};
use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};

use utoipa::OpenApi;

use crate::{ConsoleApi, ConsoleConfig, Desk, Events, public_paths, routes};

pub async fn role(ctx: &RoleContext, config: &ConsoleConfig) -> Result<RoleParts, BoxError> {
    let work = ctx.bus.kv(WORK_BUCKET).await?;
    let decisions = ctx.bus.kv(buckets::DECISIONS).await?;
    let desk = Desk::new(
        WorkStates::open(&ctx.bus, ctx.subjects.clone()).await?,
        work.clone(),
        decisions.clone(),
        ctx.publisher.clone(),
        ctx.subjects.clone(),
        config.clone(),
    );
    let events = Events::default();
    let feed = Box::pin(events.clone().feed(desk.clone(), work, decisions));
    Ok(RoleParts {
        name: "console",
        http: Some(routes(desk, events)),
        openapi: Some(ConsoleApi::openapi()),
        public: public_paths(),
        buckets: vec![WORK_BUCKET, buckets::DECISIONS],
        tasks: vec![("console live feed".to_owned(), feed)],
        ..RoleParts::default()
    })
}
