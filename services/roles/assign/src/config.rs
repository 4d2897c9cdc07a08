//! The `assign` settings section.

use serde::Deserialize;
use switchboard_proto::Priority;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssignConfig {
    /// A ticket its agent has not picked up (moved to in progress) this many seconds after it was
    /// given to them goes to someone else who fits (900).
    pub pickup_secs: u64,
    /// How often the queue and the pickup deadlines are checked besides the moments that change them
    /// (a resolution, an agent coming online): shifts start by the clock alone (30).
    pub sweep_secs: u64,
    /// How soon after it arrives a ticket of each priority should be started: each agent's work order
    /// ([`switchboard_agents::policy::work_order`]) puts what can still make it first.
    pub start_within: StartWithin,
}

/// Minutes from a ticket's arrival until an agent should start on it, by priority.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartWithin {
    pub urgent_minutes: u64,
    pub high_minutes: u64,
    pub normal_minutes: u64,
    pub low_minutes: u64,
}

impl Default for AssignConfig {
    fn default() -> Self {
        Self {
            pickup_secs: 900,
            sweep_secs: 30,
            start_within: StartWithin::default(),
        }
    }
}

impl Default for StartWithin {
    fn default() -> Self {
        Self {
            urgent_minutes: 15,
            high_minutes: 30,
            normal_minutes: 60,
            low_minutes: 120,
        }
    }
}

impl StartWithin {
    /// The target for `priority`, in minutes; an unset priority counts as normal.
    pub fn minutes(&self, priority: Priority) -> u64 {
        match priority {
            Priority::Urgent => self.urgent_minutes,
            Priority::High => self.high_minutes,
            Priority::Normal | Priority::Unspecified => self.normal_minutes,
            Priority::Low => self.low_minutes,
        }
    }

    /// When a ticket of `priority` that arrived at `received_ms` should be started by.
    pub fn start_by_ms(&self, priority: Priority, received_ms: i64) -> i64 {
        received_ms + (self.minutes(priority) * 60_000) as i64
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
        let targets = [
            ("urgent", self.start_within.urgent_minutes),
            ("high", self.start_within.high_minutes),
            ("normal", self.start_within.normal_minutes),
            ("low", self.start_within.low_minutes),
        ];
        if let Some((name, _)) = targets.iter().find(|(_, m)| *m == 0) {
            return Err(format!(
                "assign.start_within.{name}_minutes must be at least 1"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_due_its_prioritys_minutes_after_it_arrived() {
        let within = StartWithin::default();
        assert_eq!(
            within.start_by_ms(Priority::Urgent, 1_000),
            1_000 + 15 * 60_000
        );
        assert_eq!(within.start_by_ms(Priority::Unspecified, 0), 60 * 60_000);
        assert_eq!(within.start_by_ms(Priority::Low, 0), 120 * 60_000);
    }

    #[test]
    fn a_zero_target_is_refused_by_its_key() {
        let config = AssignConfig {
            start_within: StartWithin {
                high_minutes: 0,
                ..StartWithin::default()
            },
            ..AssignConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err("assign.start_within.high_minutes must be at least 1".to_owned())
        );
        assert_eq!(AssignConfig::default().validate(), Ok(()));
    }
}
