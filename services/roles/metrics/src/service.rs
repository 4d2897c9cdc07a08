use std::sync::{Arc, Mutex};

use switchboard_proto::stats_server::Stats;
use switchboard_proto::{StatsReply, StatsRequest};
use tonic::{Request, Response, Status};

use crate::tally::Tally;

/// Hot issue types listed by `Stats.Get`.
const HOT_ISSUES: usize = 10;

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
    async fn get(&self, _: Request<StatsRequest>) -> Result<Response<StatsReply>, Status> {
        let tally = self
            .tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Response::new(tally.report(HOT_ISSUES)))
    }
}
