//! The `assign` settings section.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssignConfig {
    /// A ticket its agent has not picked up (moved to in progress) this many seconds after it was
    /// given to them goes to someone else who fits (900).
    pub pickup_secs: u64,
    /// How often the queue and the pickup deadlines are checked besides the moments that change them
    /// (a resolution, an agent coming online): shifts start by the clock alone (30).
    pub sweep_secs: u64,
}

impl Default for AssignConfig {
    fn default() -> Self {
        Self {
            pickup_secs: 900,
            sweep_secs: 30,
        }
    }
}

impl AssignConfig {
    /// The first setting out of range, as `assign.<key>` and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.pickup_secs == 0 {
            return Err("assign.pickup_secs must be at least 1".into());
        }
        if self.sweep_secs == 0 {
            return Err("assign.sweep_secs must be at least 1".into());
        }
        Ok(())
    }
}
