//! The `Rules` gRPC service: how admins edit routing rules live. Listing needs `Read`, writing
//! `Admin`; every write goes through the [`RuleEditor`], which keeps its version in the history.

use switchboard_accounts::{Capability, Principal};
use switchboard_proto::rules_server::Rules;
use switchboard_proto::{DeleteRuleRequest, ListRulesReply, ListRulesRequest, PutRuleReply, Rule};
use tonic::{Request, Response, Status};

use crate::editor::RuleEditor;

#[derive(Debug)]
pub struct RulesService {
    editor: RuleEditor,
}

impl RulesService {
    pub fn new(editor: RuleEditor) -> Self {
        Self { editor }
    }
}

/// The caller's name, once their role is known to allow `capability`.
fn caller<T>(request: &Request<T>, capability: Capability) -> Result<String, Status> {
    let principal = Principal::from_grpc(request)?;
    principal.require(capability)?;
    Ok(principal.name.clone())
}

#[tonic::async_trait]
impl Rules for RulesService {
    async fn list(
        &self,
        request: Request<ListRulesRequest>,
    ) -> Result<Response<ListRulesReply>, Status> {
        caller(&request, Capability::Read)?;
        let (set, unreadable) = self.editor.list().await?;
        Ok(Response::new(ListRulesReply {
            rules: set.rules,
            version: set.version,
            unreadable,
        }))
    }

    async fn put(&self, request: Request<Rule>) -> Result<Response<PutRuleReply>, Status> {
        let by = caller(&request, Capability::Admin)?;
        let saved = self.editor.put(request.into_inner(), None, &by).await?;
        Ok(Response::new(PutRuleReply {
            version: saved.revision,
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteRuleRequest>,
    ) -> Result<Response<PutRuleReply>, Status> {
        let by = caller(&request, Capability::Admin)?;
        let id = request.into_inner().id;
        let version = self.editor.delete(&id, None, &by).await?;
        Ok(Response::new(PutRuleReply { version }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::FutureExt;
    use futures::StreamExt;
    use switchboard_accounts::{Role, Via};
    use switchboard_bus::memory::MemoryBus;
    use switchboard_bus::{Bus, Kv};

    use super::*;
    use crate::history::{Action, RULE_HISTORY_BUCKET};
    use crate::racing::RacingKv;

    /// The request as the auth layer hands it on for a caller `name` with `role`.
    fn from<T>(message: T, name: &str, role: Role) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Principal {
            name: name.into(),
            role,
            via: Via::ApiToken,
        });
        request
    }

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

    async fn service() -> (RulesService, Arc<dyn Kv>, RuleEditor) {
        let bus = MemoryBus::new();
        let kv = bus.kv("rules").await.expect("rules bucket");
        let history = bus.kv(RULE_HISTORY_BUCKET).await.expect("history bucket");
        let editor = RuleEditor::new(kv.clone(), history);
        (RulesService::new(editor.clone()), kv, editor)
    }

    async fn put(service: &RulesService, rule: Rule) -> u64 {
        service
            .put(from(rule, "root", Role::Admin))
            .await
            .expect("put")
            .into_inner()
            .version
    }

    async fn delete(service: &RulesService, id: &str) -> Result<u64, Status> {
        let request = from(DeleteRuleRequest { id: id.into() }, "root", Role::Admin);
        Ok(service.delete(request).await?.into_inner().version)
    }

    #[tokio::test]
    async fn listing_needs_read_and_writing_needs_admin() {
        let (service, kv, _) = service().await;
        put(&service, rule("a", "billing")).await;

        let unauthenticated = service
            .list(Request::new(ListRulesRequest {}))
            .await
            .expect_err("no caller");
        assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
        let connector = service
            .list(from(ListRulesRequest {}, "mailgw", Role::Connector))
            .await
            .expect_err("a connector only submits");
        assert_eq!(connector.code(), tonic::Code::PermissionDenied);
        let listed = service
            .list(from(ListRulesRequest {}, "wall", Role::Viewer))
            .await
            .expect("a viewer reads rules")
            .into_inner();
        assert_eq!(listed.rules.len(), 1);

        let refused = service
            .put(from(rule("b", "refunds"), "ann", Role::Supervisor))
            .await
            .expect_err("a supervisor does not edit rules");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused.message().starts_with("needs role admin;"),
            "{}",
            refused.message()
        );
        assert!(
            service
                .put(Request::new(rule("b", "refunds")))
                .await
                .is_err(),
            "no caller, no put"
        );
        let refused = service
            .delete(from(
                DeleteRuleRequest { id: "a".into() },
                "bob",
                Role::Agent,
            ))
            .await
            .expect_err("an agent does not delete rules");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(kv.get("a").await.expect("get").is_some(), "a stays");
        assert!(kv.get("b").await.expect("get").is_none(), "b never written");
    }

    #[tokio::test]
    async fn grpc_writes_are_recorded_with_the_callers_name() {
        let (service, _, editor) = service().await;
        let saved = service
            .put(from(rule("a", "billing"), "alice", Role::Admin))
            .await
            .expect("put")
            .into_inner()
            .version;
        let deleted = service
            .delete(from(
                DeleteRuleRequest { id: "a".into() },
                "bob",
                Role::Admin,
            ))
            .await
            .expect("delete")
            .into_inner()
            .version;
        let versions = editor.history("a").await.expect("history");
        let seen: Vec<(u64, Action, &str, &str)> = versions
            .iter()
            .map(|v| {
                (
                    v.revision,
                    v.action,
                    v.by.as_str(),
                    v.rule.department.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (saved, Action::Put, "alice", "billing"),
                (deleted, Action::Delete, "bob", "billing")
            ]
        );
    }

    #[tokio::test]
    async fn delete_returns_the_revision_of_its_own_delete() {
        let (service, kv, _) = service().await;
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
        let history = MemoryBus::new()
            .kv(RULE_HISTORY_BUCKET)
            .await
            .expect("history bucket");
        let service = RulesService::new(RuleEditor::new(
            // Another admin's put lands right after every read, as if racing the caller.
            Arc::new(RacingKv {
                inner: inner.clone(),
                race: Box::new({
                    let newer = newer.clone();
                    move |kv, key| {
                        let newer = newer.clone();
                        async move {
                            kv.put(&key, newer).await.expect("the other admin's put");
                        }
                        .boxed()
                    }
                }),
            }),
            history,
        ));

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
        let (service, kv, _) = service().await;
        put(&service, rule("good", "billing")).await;
        let bad = kv
            .put("broken", Bytes::from_static(b"{not json"))
            .await
            .expect("put");

        let reply = service
            .list(from(ListRulesRequest {}, "wall", Role::Viewer))
            .await
            .expect("list despite the unreadable rule")
            .into_inner();
        let ids: Vec<&str> = reply.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["good"]);
        assert_eq!(reply.unreadable, ["broken"]);
        assert_eq!(reply.version, bad);
    }
}
