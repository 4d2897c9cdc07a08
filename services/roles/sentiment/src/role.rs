//! Sentiment as a role of the process: it takes parsed tickets and gives assessed ones, counting each
//! thread's unresolved rounds in the policy's `threads` bucket.

use switchboard_policy::{PolicyConfig, THREADS_BUCKET};
use switchboard_runtime::{BoxError, RoleContext, RoleParts};

use crate::{SentimentConfig, SentimentStage};

pub async fn role(
    ctx: &RoleContext,
    config: &SentimentConfig,
    policy: &PolicyConfig,
) -> Result<RoleParts, BoxError> {
    let threads = ctx.bus.kv(THREADS_BUCKET).await?;
    let stage = SentimentStage::new(config.clone(), policy.clone(), threads)?;
    Ok(RoleParts {
        buckets: vec![THREADS_BUCKET],
        ..RoleParts::stage("sentiment", ctx, stage)
    })
}
