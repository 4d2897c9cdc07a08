//! The `Rules` gRPC service: how admins edit routing rules live.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_bus::Kv;
use switchboard_proto::rules_server::Rules;
use switchboard_proto::{DeleteRuleRequest, ListRulesReply, ListRulesRequest, PutRuleReply, Rule};
use tonic::{Request, Response, Status};

use crate::error::RouterError;
use crate::rules::{parse, validate};

#[derive(Debug)]
pub struct RulesService {
    kv: Arc<dyn Kv>,
}

impl RulesService {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }
}

#[tonic::async_trait]
impl Rules for RulesService {
    async fn list(&self, _: Request<ListRulesRequest>) -> Result<Response<ListRulesReply>, Status> {
        let mut reply = ListRulesReply::default();
        for (key, entry) in self.kv.entries().await.map_err(RouterError::from)? {
            reply.version = reply.version.max(entry.revision);
            reply.rules.push(parse(&key, &entry.value)?);
        }
        reply.rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Response::new(reply))
    }

    async fn put(&self, request: Request<Rule>) -> Result<Response<PutRuleReply>, Status> {
        let rule = request.into_inner();
        validate(&rule)?;
        let body = serde_json::to_vec(&rule).map_err(|source| RouterError::RuleJson {
            key: rule.id.clone(),
            source,
        })?;
        let version = self
            .kv
            .put(&rule.id, Bytes::from(body))
            .await
            .map_err(RouterError::from)?;
        tracing::info!(rule = %rule.id, department = %rule.department, version, "rule saved");
        Ok(Response::new(PutRuleReply { version }))
    }

    async fn delete(
        &self,
        request: Request<DeleteRuleRequest>,
    ) -> Result<Response<PutRuleReply>, Status> {
        let id = request.into_inner().id;
        if self.kv.get(&id).await.map_err(RouterError::from)?.is_none() {
            return Err(RouterError::UnknownRule(id).into());
        }
        self.kv.delete(&id).await.map_err(RouterError::from)?;
        let version = self
            .kv
            .entries()
            .await
            .map_err(RouterError::from)?
            .iter()
            .map(|(_, e)| e.revision)
            .max()
            .unwrap_or(0);
        tracing::info!(rule = %id, "rule deleted");
        Ok(Response::new(PutRuleReply { version }))
    }
}
