//! The `Stats` gRPC service, which needs `Read`. Its figures are [`figures`], the same the HTTP route
//! answers with.

use std::sync::{Arc, Mutex};

use switchboard_accounts::{Capability, Principal};
use switchboard_proto::stats_server::Stats;
use switchboard_proto::{StatsReply, StatsRequest};
use tonic::{Request, Response, Status};

use crate::tally::Tally;

/// Hot issue types listed, and exported as gauges.
pub(crate) const HOT_ISSUES: usize = 10;

/// The cockpit's figures now: what both `Stats.Get` and `GET /v1/stats` answer.
pub fn figures(tally: &Mutex<Tally>) -> StatsReply {
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .report(HOT_ISSUES, switchboard_runtime::now_ms())
}

#[derive(Debug)]
pub struct StatsService {
    tally: Arc<Mutex<Tally>>,
}

impl StatsService {
    pub fn new(tally: Arc<Mutex<Tally>>) -> Self {
        Self { tally }
    }
}

#[tonic::async_trait]
impl Stats for StatsService {
    async fn get(&self, request: Request<StatsRequest>) -> Result<Response<StatsReply>, Status> {
        Principal::from_grpc(&request)?.require(Capability::Read)?;
        Ok(Response::new(figures(&self.tally)))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_accounts::{Role, Via};

    use super::*;

    fn from(role: Option<Role>) -> Request<StatsRequest> {
        let mut request = Request::new(StatsRequest {});
        if let Some(role) = role {
            request.extensions_mut().insert(Principal {
                name: "wall".into(),
                role,
                via: Via::ApiToken,
            });
        }
        request
    }

    #[tokio::test]
    async fn stats_need_read() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        tally.lock().unwrap().received("t-1", 1);
        let service = StatsService::new(tally);

        let status = service.get(from(None)).await.expect_err("no caller");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let status = service
            .get(from(Some(Role::Connector)))
            .await
            .expect_err("a connector only submits");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(status.message().contains("viewer"), "{}", status.message());
        let reply = service
            .get(from(Some(Role::Viewer)))
            .await
            .expect("a viewer reads stats")
            .into_inner();
        assert_eq!(reply.received, 1);
    }
}
