//! The parser as a role of the process: it takes received tickets and gives parsed ones, with the LLM
//! parser (and the local one behind it) when `[llm]` is enabled, else the local parser alone.

use std::sync::Arc;
use std::time::Duration;

use switchboard_runtime::{BoxError, RoleContext, RoleParts, buckets};

use crate::{
    DepartmentCatalog, FallbackParser, LlmConfig, LlmParser, LocalParser, Parser, ParserStage,
};

/// `deadline` is all the LLM may spend on one ticket, retries included.
pub async fn role(
    ctx: &RoleContext,
    llm: &LlmConfig,
    deadline: Duration,
) -> Result<RoleParts, BoxError> {
    let mut bucket_names = Vec::new();
    let parser: Arc<dyn Parser> = if llm.enabled {
        // The departments the LLM may name: those the rules and the knowledge base know.
        let catalog = DepartmentCatalog::follow(
            ctx.bus.kv(buckets::RULES).await?,
            ctx.bus.kv(buckets::DEPARTMENTS).await?,
        )
        .await?;
        bucket_names = vec![buckets::RULES, buckets::DEPARTMENTS];
        let llm = LlmParser::new(llm, catalog, ctx.metrics.clone(), deadline)?;
        Arc::new(FallbackParser::new(Arc::new(llm)))
    } else {
        Arc::new(LocalParser)
    };
    Ok(RoleParts {
        buckets: bucket_names,
        ..RoleParts::stage("parser", ctx, ParserStage::new(parser))
    })
}
