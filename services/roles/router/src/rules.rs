//! The live rule set. Rules sit in the `rules` KV bucket; every router replica watches the bucket, so an
//! admin's edit takes effect everywhere without a restart.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use switchboard_bus::{Kv, KvChange};
use switchboard_proto::Rule;

use crate::error::RouterError;

/// A snapshot of the rules and the bucket revision it reflects (the decision's `rules_version`).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub version: u64,
}

/// Keeps a [`RuleSet`] in step with the bucket. The watch task stops when the book is dropped.
#[derive(Debug)]
pub struct RuleBook {
    current: Arc<RwLock<Arc<RuleSet>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuleBook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuleBook {
    /// Loads the bucket and follows it. Returns once the current rules are loaded.
    pub async fn follow(kv: Arc<dyn Kv>) -> Result<Self, RouterError> {
        let (initial, _) = read(kv.as_ref()).await?;
        let current = Arc::new(RwLock::new(Arc::new(initial.clone())));
        let mut changes = kv.watch().await?;
        let shared = current.clone();
        let task = tokio::spawn(async move {
            let mut rules = initial;
            while let Some(change) = changes.next().await {
                match change {
                    Ok(change) => {
                        apply(&mut rules, change);
                        *shared
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Arc::new(rules.clone());
                    }
                    Err(e) => {
                        tracing::error!(error = %switchboard_runtime::error_chain(&e), "rule watch failed");
                    }
                }
            }
            tracing::warn!("rule watch ended; rules are frozen at their last version");
        });
        Ok(Self { current, task })
    }

    pub fn current(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Every stored rule that can be read, with the bucket revision of the whole, and the ids of those
/// that cannot: one bad entry is skipped, logged, rather than taking the others down with it.
pub(crate) async fn read(kv: &dyn Kv) -> Result<(RuleSet, Vec<String>), RouterError> {
    let mut set = RuleSet::default();
    let mut unreadable = Vec::new();
    for (key, entry) in kv.entries().await? {
        set.version = set.version.max(entry.revision);
        match parse(&key, &entry.value) {
            Ok(rule) => set.rules.push(rule),
            Err(e) => {
                skipped(&key, &e);
                unreadable.push(key);
            }
        }
    }
    set.rules.sort_by(|a, b| a.id.cmp(&b.id));
    unreadable.sort();
    Ok((set, unreadable))
}

fn skipped(key: &str, e: &RouterError) {
    tracing::error!(rule = %key, error = %switchboard_runtime::error_chain(e), "skipping an unreadable rule");
}

fn apply(set: &mut RuleSet, change: KvChange) {
    set.version = set.version.max(change.revision);
    set.rules.retain(|r| r.id != change.key);
    if let Some(value) = change.value {
        match parse(&change.key, &value) {
            Ok(rule) => set.rules.push(rule),
            Err(e) => skipped(&change.key, &e),
        }
    }
    set.rules.sort_by(|a, b| a.id.cmp(&b.id));
}

pub(crate) fn parse(key: &str, value: &[u8]) -> Result<Rule, RouterError> {
    let mut rule: Rule = serde_json::from_slice(value).map_err(|source| RouterError::RuleJson {
        key: key.to_owned(),
        source,
    })?;
    // The key is the rule's identity; a body naming another id must not shadow that rule.
    rule.id = key.to_owned();
    Ok(rule)
}

/// Checks what an admin submits before it reaches the bucket.
pub(crate) fn validate(rule: &Rule) -> Result<(), RouterError> {
    let invalid = |field: &str, problem: &str| RouterError::InvalidRule {
        field: field.to_owned(),
        problem: problem.to_owned(),
    };
    switchboard_bus::validate_key(&rule.id)
        .map_err(|_| invalid("id", "must be non-empty letters, digits, - _ = . /"))?;
    if rule.department.trim().is_empty() {
        return Err(invalid("department", "is required"));
    }
    if rule.keywords.iter().all(|k| k.trim().is_empty()) {
        return Err(invalid("keywords", "needs at least one non-blank keyword"));
    }
    if !rule.weight.is_finite() || rule.weight <= 0.0 {
        return Err(invalid("weight", "must be a positive number"));
    }
    Ok(())
}
