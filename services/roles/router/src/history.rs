//! Every version of every rule, kept whole: the `rules` bucket holds only a rule's latest revision, so
//! each write through the [`RuleEditor`](crate::editor::RuleEditor) also appends what was written (or
//! deleted), who did it and when to the rule's entry in the `rule_history` bucket.
//!
//! A rule's versions live in one JSON value under its id, so reading a rule's history is one read.
//! Appends are revision-checked read-modify-writes: of two admins saving at once, the second append
//! finds the entry changed, reads it again and adds its version beside the first.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_bus::{BusError, Created, Kv};
use switchboard_proto::Rule;

use crate::error::RouterError;

/// The bucket of rule histories, by rule id.
pub const RULE_HISTORY_BUCKET: &str = "rule_history";

/// Rounds of read-then-write an append tries before giving up on a history others keep changing.
const MAX_ATTEMPTS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The rule was created or replaced.
    Put,
    /// The rule was deleted; the version holds it as it was.
    Delete,
}

/// One write of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleVersion {
    /// The `rules` bucket's revision of this write: decisions whose `rules_version` is at or above it
    /// were made with it (or a later write).
    pub revision: u64,
    pub action: Action,
    /// Who wrote it: the account, API token or JWT name.
    pub by: String,
    pub at_ms: i64,
    /// The rule as written; for a delete, as it stood when deleted.
    pub rule: Rule,
}

/// What the bucket stores per rule: every version, oldest first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    versions: Vec<RuleVersion>,
}

#[derive(Debug, Clone)]
pub struct RuleHistory {
    kv: std::sync::Arc<dyn Kv>,
}

impl RuleHistory {
    pub fn new(kv: std::sync::Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// Every version of rule `id`, oldest first; empty for a rule never written through the editor.
    pub async fn versions(&self, id: &str) -> Result<Vec<RuleVersion>, RouterError> {
        Ok(match self.kv.get(id).await? {
            Some(entry) => decode(id, &entry.value)?.versions,
            None => Vec::new(),
        })
    }

    /// Adds `version`, kept in revision order whatever order concurrent writers append in. A version
    /// already there (the same revision: an append retried after its reply was lost) is not added twice.
    pub async fn append(&self, id: &str, version: RuleVersion) -> Result<(), RouterError> {
        for _ in 0..MAX_ATTEMPTS {
            let read = self.kv.get(id).await?;
            let mut stored = match &read {
                Some(entry) => decode(id, &entry.value)?,
                None => Stored::default(),
            };
            let at = match stored
                .versions
                .binary_search_by_key(&version.revision, |v| v.revision)
            {
                Ok(_) => return Ok(()),
                Err(at) => at,
            };
            stored.versions.insert(at, version.clone());
            let body = Bytes::from(serde_json::to_vec(&stored).map_err(|source| {
                RouterError::HistoryJson {
                    id: id.to_owned(),
                    source,
                }
            })?);
            let written = match read {
                Some(entry) => match self.kv.update(id, body, entry.revision).await {
                    Ok(_) => true,
                    Err(BusError::WrongRevision { .. }) => false,
                    Err(e) => return Err(e.into()),
                },
                None => matches!(self.kv.create(id, body).await?, Created::Created { .. }),
            };
            if written {
                return Ok(());
            }
        }
        Err(RouterError::HistoryContended {
            id: id.to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }
}

fn decode(id: &str, value: &[u8]) -> Result<Stored, RouterError> {
    serde_json::from_slice(value).map_err(|source| RouterError::HistoryJson {
        id: id.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::FutureExt;
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;

    use super::*;
    use crate::racing::RacingKv;

    fn version(revision: u64, by: &str) -> RuleVersion {
        RuleVersion {
            revision,
            action: Action::Put,
            by: by.into(),
            at_ms: 1,
            rule: Rule {
                id: "a".into(),
                ..Rule::default()
            },
        }
    }

    #[tokio::test]
    async fn an_append_raced_by_another_keeps_both_in_revision_order() {
        let inner = MemoryBus::new()
            .kv(RULE_HISTORY_BUCKET)
            .await
            .expect("bucket");
        let history = RuleHistory::new(inner.clone());
        history
            .append("a", version(3, "carol"))
            .await
            .expect("first");
        // Another admin's append lands once, between our read and our write.
        let raced = Arc::new(AtomicBool::new(false));
        let racing = RuleHistory::new(Arc::new(RacingKv {
            inner: inner.clone(),
            race: Box::new(move |kv, key| {
                let raced = raced.clone();
                async move {
                    if !raced.swap(true, Ordering::SeqCst) {
                        RuleHistory::new(kv)
                            .append(&key, version(7, "bob"))
                            .await
                            .expect("the other admin's append");
                    }
                }
                .boxed()
            }),
        }));

        racing
            .append("a", version(5, "alice"))
            .await
            .expect("retried");
        let seen: Vec<(u64, String)> = history
            .versions("a")
            .await
            .expect("versions")
            .into_iter()
            .map(|v| (v.revision, v.by))
            .collect();
        assert_eq!(
            seen,
            [(3, "carol".into()), (5, "alice".into()), (7, "bob".into())]
        );

        // Appended again (a retry whose reply was lost): not twice.
        history
            .append("a", version(5, "alice"))
            .await
            .expect("again");
        assert_eq!(history.versions("a").await.expect("versions").len(), 3);
    }
}
