//! The assign role's background work: following agents as they come and go, and keeping the queue
//! moving when places free up, shifts start, or tickets wait too long to be picked up.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use switchboard_agents::{Status, changed_agent};
use switchboard_runtime::{BoxError, error_chain};

use crate::assigner::Assigner;

/// Watches the agents: one going offline (or removed) has what they hold reassigned; one coming online
/// (or added, or changed) may fit a queued ticket, so the queue is tried again. Runs until the
/// agents' change feed ends.
pub async fn follow_agents(assigner: Assigner) -> Result<(), BoxError> {
    let mut changes = assigner.agents().watch().await?;
    let mut last: BTreeMap<String, Status> = BTreeMap::new();
    while let Some(change) = changes.next().await {
        let change = change?;
        let now = changed_agent(&change)?.map(|a| a.status);
        let before = match now {
            Some(status) => last.insert(change.key.clone(), status),
            None => last.remove(&change.key),
        };
        let left = match now {
            None => Some("who was removed"),
            Some(Status::Offline) if before != Some(Status::Offline) => Some("who went offline"),
            _ => None,
        };
        if let Some(why) = left
            && let Err(e) = assigner.agent_left(&change.key, why).await
        {
            // What they hold stays theirs; what they had not picked up moves on at the pickup
            // deadline (the sweep).
            tracing::warn!(agent = %change.key, error = %error_chain(&e), "reassigning failed");
        }
        assigner.freed.notify_one();
    }
    Err("the agents' change feed ended".into())
}

/// Tries the queue whenever a place may have freed up, and every `assign.sweep_secs` sweeps the
/// pickup deadlines and tries the queue anyway (a shift starting frees no place). Runs until dropped.
pub async fn keep_queue_moving(assigner: Assigner) -> Result<(), BoxError> {
    let period = Duration::from_secs(assigner.config.sweep_secs);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = assigner.sweep().await {
                    tracing::warn!(error = %error_chain(&e), "pickup deadlines not swept");
                }
            }
            () = assigner.freed.notified() => {}
        }
        if let Err(e) = assigner.drain().await {
            // The next wake-up tries again.
            tracing::warn!(error = %error_chain(&e), "assignment queue not worked");
        }
    }
}
