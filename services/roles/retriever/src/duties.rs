//! Departments' duty descriptions as evidence: each description in the `departments` bucket is embedded
//! with the knowledge base's sentence model and kept in memory, and every ticket is given the departments
//! whose descriptions read most like it. Evidence that needs no history, so a department nobody has sent
//! a ticket to yet can receive them. Every retriever replica watches the bucket, so an admin's edit
//! reaches them all.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use futures::StreamExt;
use switchboard_bus::Kv;
use switchboard_knowledge::KnowledgeBase;
use switchboard_proto::DutyMatch;
use switchboard_runtime::{BoxError, error_chain};

/// Duty matches each ticket carries: the router needs the best few, the decision board shows them.
pub const DUTY_MATCHES: usize = 5;

#[derive(Debug, Default)]
pub struct Duties {
    /// By department: the description embedded, and its text, so an unchanged one is not embedded again.
    by_department: RwLock<BTreeMap<String, (String, Vec<f32>)>>,
}

/// The task that keeps [`Duties`] current; dropping it stops the task.
#[derive(Debug)]
pub struct DutyWatch(tokio::task::JoinHandle<()>);

impl Drop for DutyWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Duties {
    /// Embeds every description `kv` holds before it returns, so the first ticket already meets them,
    /// then follows the bucket's changes in the background. Without a sentence model there is nothing to
    /// compare a ticket with: no duty is kept and no task runs.
    pub async fn watch(
        kb: KnowledgeBase,
        kv: Arc<dyn Kv>,
    ) -> Result<(Arc<Self>, Option<DutyWatch>), BoxError> {
        let duties = Arc::new(Self::default());
        if kb.embedder().is_none() {
            return Ok((duties, None));
        }
        for (department, entry) in kv.entries().await? {
            duties.apply(&kb, department, Some(&entry.value)).await;
        }
        let mut changes = kv.watch().await?;
        let kept = duties.clone();
        let task = tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                match change {
                    Ok(change) => {
                        kept.apply(&kb, change.key, change.value.as_deref()).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "the departments watch failed");
                        break;
                    }
                }
            }
        });
        Ok((duties, Some(DutyWatch(task))))
    }

    /// Embeds a department's new description; an empty or deleted one drops it. An embedder failure
    /// keeps the description it had, and the next change tries again.
    async fn apply(&self, kb: &KnowledgeBase, department: String, value: Option<&[u8]>) {
        let text = value
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .unwrap_or_default();
        if text.is_empty() {
            self.write().remove(&department);
            return;
        }
        let unchanged = self
            .read()
            .get(&department)
            .is_some_and(|(known, _)| *known == text);
        if unchanged {
            return;
        }
        match kb.query(&text).await {
            Ok(query) => {
                if let Some(vector) = query.dense {
                    self.write().insert(department, (text, vector));
                }
            }
            Err(e) => {
                tracing::warn!(%department, error = %error_chain(&e), "cannot embed a duty description");
            }
        }
    }

    /// The `limit` departments whose descriptions are most like the ticket's embedding `dense`, best
    /// first, each marked by whether `known(department)` (the classifier has its history). Both are
    /// unit vectors, so the dot product is their cosine.
    pub fn matches(
        &self,
        dense: &[f32],
        limit: usize,
        known: impl Fn(&str) -> bool,
    ) -> Vec<DutyMatch> {
        let mut all: Vec<DutyMatch> = self
            .read()
            .iter()
            .filter(|(_, (_, vector))| vector.len() == dense.len())
            .map(|(department, (_, vector))| DutyMatch {
                department: department.clone(),
                similarity: vector.iter().zip(dense).map(|(a, b)| a * b).sum(),
                known: false,
            })
            .collect();
        all.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        all.truncate(limit);
        for duty in &mut all {
            duty.known = known(&duty.department);
        }
        all
    }

    /// How many departments have a description embedded.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, (String, Vec<f32>)>> {
        self.by_department
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, (String, Vec<f32>)>> {
        self.by_department
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
