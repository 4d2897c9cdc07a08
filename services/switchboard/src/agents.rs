//! `switchboard agents import`: a roster from CSV into the `agents` bucket of the bus the settings
//! name, the one the assign role reads.

use std::path::Path;
use std::sync::Arc;

use switchboard_agents::{AGENTS_BUCKET, AgentStore, read_agents_csv};
use switchboard_bus::Bus;

/// Stores every agent of the file (each replacing one with the same id) and returns how many. The
/// whole file is checked first: a bad row imports nothing.
pub async fn import(bus: &Arc<dyn Bus>, file: &Path) -> anyhow::Result<usize> {
    let agents = read_agents_csv(file)?;
    let store = AgentStore::new(bus.kv(AGENTS_BUCKET).await?);
    for agent in &agents {
        store.put(agent).await?;
    }
    Ok(agents.len())
}
