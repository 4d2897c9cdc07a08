//! Metrics as a role of the process: it reads every event under the prefix into the cockpit's tally and
//! serves it as `Stats` and `GET /v1/stats`. Each replica reads the whole retained stream on a consumer
//! of its own, so every replica answers the same and a restarted one rebuilds its tally; until it has
//! read the history (its `switchboard_consumer_pending` back near 0) it answers with part of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_proto::CorrectionReason;
use switchboard_proto::stats_server::StatsServer;
use switchboard_runtime::{BoxError, Metrics, RoleContext, RoleParts};
use utoipa::OpenApi;

use crate::handler::MetricsHandler;
use crate::http::{MetricsApi, routes};
use crate::service::{HOT_ISSUES, StatsService};
use crate::tally::Tally;

/// How often the hot problem types reach their gauges: a scrape interval. Ranking every type on each
/// event would cost more than the event.
const HOT_EVERY: Duration = Duration::from_secs(15);

pub fn role(ctx: &RoleContext) -> RoleParts {
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Every correction reason the proto defines, so each reason's series exists before its first.
    let reasons = (0..).map_while(|n| CorrectionReason::try_from(n).ok());
    ctx.metrics
        .decisions_started(reasons.map(|r| r.as_str_name()));
    RoleParts {
        name: "metrics",
        consumes: Some((
            ctx.subjects.all(),
            Arc::new(MetricsHandler::new(
                tally.clone(),
                ctx.metrics.clone(),
                ctx.subjects.clone(),
                switchboard_runtime::now_ms(),
            )),
        )),
        each_replica_reads_all: true,
        grpc: vec![switchboard_runtime::grpc(StatsServer::new(
            StatsService::new(tally.clone()),
        ))],
        http: Some(routes(tally.clone())),
        openapi: Some(MetricsApi::openapi()),
        tasks: vec![(
            "hot issue gauges".into(),
            Box::pin(keep_hot_issues(tally, ctx.metrics.clone())),
        )],
        ..RoleParts::default()
    }
}

/// Sets `switchboard_hot_issue_tickets` from the tally every [`HOT_EVERY`], as `GET /v1/stats` lists
/// the hot issues.
async fn keep_hot_issues(tally: Arc<Mutex<Tally>>, metrics: Metrics) -> Result<(), BoxError> {
    let mut every = tokio::time::interval(HOT_EVERY);
    loop {
        every.tick().await;
        let hot: Vec<(String, u64)> = tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hot(HOT_ISSUES)
            .into_iter()
            .map(|issue| (issue.problem_type, issue.count))
            .collect();
        metrics.hot_issues(&hot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_hot_issues_reach_their_gauges_within_an_interval() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let metrics = Metrics::new();
        let task = tokio::spawn(keep_hot_issues(tally.clone(), metrics.clone()));
        for (id, problem_type) in [("a", "login"), ("b", "login"), ("c", "billing")] {
            tally
                .lock()
                .unwrap()
                .decided(id, true, "it", problem_type, 1_000);
        }
        let lines = [
            r#"switchboard_hot_issue_tickets{problem_type="login"} 2"#,
            r#"switchboard_hot_issue_tickets{problem_type="billing"} 1"#,
        ];
        let published = || {
            let text = metrics.encode();
            lines.iter().all(|line| text.lines().any(|l| l == *line))
        };
        // On the paused clock: the check runs whenever the task has had its turn, up to one interval.
        let waited = tokio::time::timeout(HOT_EVERY + Duration::from_millis(1), async {
            while !published() {
                tokio::task::yield_now().await;
                tokio::time::advance(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{lines:?} not in {}", metrics.encode());
        task.abort();
    }
}
