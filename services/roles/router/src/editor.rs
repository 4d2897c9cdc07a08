//! The one way rules are written: the `Rules` gRPC service and the HTTP routes both call the
//! [`RuleEditor`], so every write is validated the same way and leaves a version in the history.
//!
//! The rule is written first and its version appended after, with the revision the write got: a
//! version in the history is always one the bucket held. Should the append fail, the caller hears
//! that the rule was written and its history was not, rather than a plain failure it might retry.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_bus::{BusError, Created, Kv};
use switchboard_proto::Rule;
use switchboard_runtime::now_ms;

use crate::error::RouterError;
use crate::history::{Action, RuleHistory, RuleVersion};
use crate::rules::{RuleSet, parse, read, validate};

/// A rule as stored, with the revision to expect when writing it again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredRule {
    pub rule: Rule,
    pub revision: u64,
}

#[derive(Debug, Clone)]
pub struct RuleEditor {
    rules: Arc<dyn Kv>,
    history: RuleHistory,
}

impl RuleEditor {
    pub fn new(rules: Arc<dyn Kv>, history: Arc<dyn Kv>) -> Self {
        Self {
            rules,
            history: RuleHistory::new(history),
        }
    }

    /// Every readable rule and the ids of the unreadable ones (see [`read`]).
    pub async fn list(&self) -> Result<(RuleSet, Vec<String>), RouterError> {
        read(self.rules.as_ref()).await
    }

    pub async fn get(&self, id: &str) -> Result<StoredRule, RouterError> {
        let entry = self
            .rules
            .get(id)
            .await?
            .ok_or_else(|| RouterError::UnknownRule(id.to_owned()))?;
        Ok(StoredRule {
            rule: parse(id, &entry.value)?,
            revision: entry.revision,
        })
    }

    pub async fn history(&self, id: &str) -> Result<Vec<RuleVersion>, RouterError> {
        self.history.versions(id).await
    }

    /// Creates the rule; [`RouterError::RuleExists`] when its id is taken.
    pub async fn create(&self, rule: Rule, by: &str) -> Result<StoredRule, RouterError> {
        validate(&rule)?;
        let revision = match self.rules.create(&rule.id, body(&rule)?).await? {
            Created::Created { revision } => revision,
            Created::Exists(_) => return Err(RouterError::RuleExists(rule.id)),
        };
        self.record(rule, revision, Action::Put, by).await
    }

    /// Creates or replaces the rule. With `expected`, only while the stored rule is still at that
    /// revision (0: only while there is none), so an admin does not overwrite a change they have not
    /// seen; without, whatever is stored.
    pub async fn put(
        &self,
        rule: Rule,
        expected: Option<u64>,
        by: &str,
    ) -> Result<StoredRule, RouterError> {
        validate(&rule)?;
        let value = body(&rule)?;
        let revision = match expected {
            None => self.rules.put(&rule.id, value).await?,
            Some(0) => match self.rules.create(&rule.id, value).await? {
                Created::Created { revision } => revision,
                Created::Exists(entry) => {
                    return Err(changed(
                        &rule.id,
                        "saved",
                        BusError::WrongRevision {
                            bucket: switchboard_runtime::buckets::RULES.to_owned(),
                            key: rule.id.clone(),
                            expected: 0,
                            current: Some(entry.revision),
                        },
                    ));
                }
            },
            Some(expected) => self
                .rules
                .update(&rule.id, value, expected)
                .await
                .map_err(|e| changed(&rule.id, "saved", e))?,
        };
        self.record(rule, revision, Action::Put, by).await
    }

    /// Deletes the rule as read, or as at `expected`; the version recorded holds the rule deleted.
    /// Returns the revision of the delete itself.
    pub async fn delete(
        &self,
        id: &str,
        expected: Option<u64>,
        by: &str,
    ) -> Result<u64, RouterError> {
        let entry = self
            .rules
            .get(id)
            .await?
            .ok_or_else(|| RouterError::UnknownRule(id.to_owned()))?;
        // An unreadable rule can still be removed; its version then records only its id.
        let rule = parse(id, &entry.value).unwrap_or_else(|_| Rule {
            id: id.to_owned(),
            ..Rule::default()
        });
        let expected = expected.unwrap_or(entry.revision);
        // Conditional, so a rule another admin saved meanwhile is not deleted unseen.
        let revision = self
            .rules
            .delete_expect_revision(id, expected)
            .await
            .map_err(|e| changed(id, "deleted", e))?;
        tracing::info!(rule = %id, revision, by, "rule deleted");
        self.record(rule, revision, Action::Delete, by)
            .await
            .map(|stored| stored.revision)
    }

    async fn record(
        &self,
        rule: Rule,
        revision: u64,
        action: Action,
        by: &str,
    ) -> Result<StoredRule, RouterError> {
        if action == Action::Put {
            tracing::info!(rule = %rule.id, department = %rule.department, revision, by, "rule saved");
        }
        let version = RuleVersion {
            revision,
            action,
            by: by.to_owned(),
            at_ms: now_ms(),
            rule: rule.clone(),
        };
        self.history
            .append(&rule.id, version)
            .await
            .map_err(|source| RouterError::History {
                id: rule.id.clone(),
                revision,
                source: Box::new(source),
            })?;
        Ok(StoredRule { rule, revision })
    }
}

fn body(rule: &Rule) -> Result<Bytes, RouterError> {
    serde_json::to_vec(rule)
        .map(Bytes::from)
        .map_err(|source| RouterError::RuleJson {
            key: rule.id.clone(),
            source,
        })
}

/// A conditional write that found another revision: the caller's view is stale.
fn changed(id: &str, doing: &'static str, e: BusError) -> RouterError {
    match e {
        source @ BusError::WrongRevision { .. } => RouterError::Changed {
            id: id.to_owned(),
            doing,
            source,
        },
        other => RouterError::Bus(other),
    }
}
