//! The `Rules` gRPC service: how admins edit routing rules live.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_bus::{BusError, Kv};
use switchboard_proto::rules_server::Rules;
use switchboard_proto::{DeleteRuleRequest, ListRulesReply, ListRulesRequest, PutRuleReply, Rule};
use tonic::{Request, Response, Status};

use crate::error::RouterError;
use crate::rules::{read, validate};

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
        let (set, unreadable) = read(self.kv.as_ref()).await?;
        Ok(Response::new(ListRulesReply {
            rules: set.rules,
            version: set.version,
            unreadable,
        }))
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
        let Some(read) = self.kv.get(&id).await.map_err(RouterError::from)? else {
            return Err(RouterError::UnknownRule(id).into());
        };
        // Conditional on the revision read, so a rule another admin saved meanwhile is not deleted
        // unseen.
        let version = self
            .kv
            .delete_expect_revision(&id, read.revision)
            .await
            .map_err(|e| match e {
                source @ BusError::WrongRevision { .. } => RouterError::Changed {
                    id: id.clone(),
                    source,
                },
                other => RouterError::Bus(other),
            })?;
        tracing::info!(rule = %id, version, "rule deleted");
        Ok(Response::new(PutRuleReply { version }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_bus::{Bus, Created, Entry, KvChange};

    use super::*;

    fn rule(id: &str, department: &str) -> Rule {
        Rule {
            id: id.into(),
            keywords: vec!["refund".into()],
            department: department.into(),
            weight: 3.0,
            enabled: true,
            description: String::new(),
        }
    }

    async fn service() -> (RulesService, Arc<dyn Kv>) {
        let kv = MemoryBus::new().kv("rules").await.expect("rules bucket");
        (RulesService::new(kv.clone()), kv)
    }

    async fn put(service: &RulesService, rule: Rule) -> u64 {
        service
            .put(Request::new(rule))
            .await
            .expect("put")
            .into_inner()
            .version
    }

    async fn delete(service: &RulesService, id: &str) -> Result<u64, Status> {
        let request = Request::new(DeleteRuleRequest { id: id.into() });
        Ok(service.delete(request).await?.into_inner().version)
    }

    #[tokio::test]
    async fn delete_returns_the_revision_of_its_own_delete() {
        let (service, kv) = service().await;
        put(&service, rule("a", "billing")).await;
        let b = put(&service, rule("b", "billing")).await;
        let mut watch = kv.watch().await.expect("watch");
        for _ in 0..2 {
            watch.next().await.expect("snapshot").expect("change");
        }

        let deleted = delete(&service, "b").await.expect("delete b");
        assert!(deleted > b, "delete revision {deleted} after b's put {b}");
        let change = watch.next().await.expect("delete change").expect("change");
        assert_eq!(
            (change.key.as_str(), change.value, change.revision),
            ("b", None, deleted)
        );

        // The last rule gone, the reply still names the delete, not 0.
        let last = delete(&service, "a").await.expect("delete a");
        assert!(last > deleted, "delete revision {last} after {deleted}");
        let status = delete(&service, "a").await.expect_err("a is gone");
        assert_eq!(status.code(), tonic::Code::NotFound);
    }

    /// A bucket where another admin's put lands right after every read, as if racing the caller.
    #[derive(Debug)]
    struct RacingKv {
        inner: Arc<dyn Kv>,
        body: Bytes,
    }

    #[async_trait::async_trait]
    impl Kv for RacingKv {
        async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
            let read = self.inner.get(key).await?;
            self.inner.put(key, self.body.clone()).await?;
            Ok(read)
        }
        async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
            self.inner.put(key, value).await
        }
        async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError> {
            self.inner.create(key, value).await
        }
        async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, BusError> {
            self.inner.update(key, value, revision).await
        }
        async fn delete(&self, key: &str) -> Result<(), BusError> {
            self.inner.delete(key).await
        }
        async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError> {
            self.inner.delete_expect_revision(key, revision).await
        }
        async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError> {
            self.inner.entries().await
        }
        async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError> {
            self.inner.watch().await
        }
    }

    #[tokio::test]
    async fn a_rule_rewritten_between_read_and_delete_is_not_deleted() {
        let inner = MemoryBus::new().kv("rules").await.expect("rules bucket");
        let read = inner
            .put(
                "a",
                serde_json::to_vec(&rule("a", "billing")).unwrap().into(),
            )
            .await
            .expect("put");
        let newer = Bytes::from(serde_json::to_vec(&rule("a", "refunds")).unwrap());
        let service = RulesService::new(Arc::new(RacingKv {
            inner: inner.clone(),
            body: newer.clone(),
        }));

        let status = delete(&service, "a")
            .await
            .expect_err("the rule changed under the delete");
        assert!(
            matches!(
                status.code(),
                tonic::Code::Aborted | tonic::Code::FailedPrecondition
            ),
            "{status:?}"
        );
        let message = status.message();
        assert!(
            message.contains("\"a\"") && message.contains(&read.to_string()),
            "the message names the rule and the revision read: {message}"
        );
        let kept = inner
            .get("a")
            .await
            .expect("get")
            .expect("the new rule stays");
        assert_eq!(kept.value, newer);
        assert!(
            message.contains(&kept.revision.to_string()),
            "the message names the current revision: {message}"
        );
    }

    #[tokio::test]
    async fn list_skips_an_unreadable_rule_and_names_it() {
        let (service, kv) = service().await;
        put(&service, rule("good", "billing")).await;
        let bad = kv
            .put("broken", Bytes::from_static(b"{not json"))
            .await
            .expect("put");

        let reply = service
            .list(Request::new(ListRulesRequest {}))
            .await
            .expect("list despite the unreadable rule")
            .into_inner();
        let ids: Vec<&str> = reply.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["good"]);
        assert_eq!(reply.unreadable, ["broken"]);
        assert_eq!(reply.version, bad);
    }
}
