//! One agent: who they are, what they can take, and whether they can take it now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_bus::validate_key;

use crate::error::AgentError;
use crate::shift::Shift;

/// The most open tickets one agent may be given: a bound on typing mistakes (8000 for 8), not a policy.
const MAX_CAPACITY: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The agent's id, which is also the account name they sign in with: an agent reads their own
    /// record and sets their own status.
    pub id: String,
    pub name: String,
    /// The departments whose tickets they take.
    pub departments: Vec<String>,
    /// How well they handle a department's or a problem type's tickets, 1 (learning) to 5 (expert).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// The languages they answer in (`zh`, `en`); empty: any.
    #[serde(default)]
    pub languages: Vec<String>,
    /// The channels they work (`web`, `email`, `phone`); empty: any.
    #[serde(default)]
    pub channels: Vec<String>,
    pub tier: Tier,
    /// Open tickets (assigned or in progress) at most.
    pub capacity: u32,
    #[serde(default)]
    pub shift: Shift,
    #[serde(default)]
    pub status: Status,
}

/// Seniority: escalated tickets go to a department's [`Tier::L3`] agents only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Tier {
    L1,
    L2,
    L3,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "L1" => Some(Self::L1),
            "L2" => Some(Self::L2),
            "L3" => Some(Self::L3),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    /// Signed in but not taking new tickets; what they hold stays theirs.
    Away,
    /// Gone: what they hold and have not finished is reassigned.
    #[default]
    Offline,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => Some(Self::Online),
            "away" => Some(Self::Away),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
}

impl Agent {
    /// Checks every field, naming the first one at fault.
    pub fn validate(&self) -> Result<(), AgentError> {
        validate_key(&self.id).map_err(|e| AgentError::new("id", e.to_string()))?;
        if self.name.trim().is_empty() {
            return Err(AgentError::new("name", "must not be empty"));
        }
        if self.departments.is_empty() {
            return Err(AgentError::new(
                "departments",
                "name at least one department",
            ));
        }
        if let Some(i) = self.departments.iter().position(|d| d.trim().is_empty()) {
            return Err(AgentError::new(format!("departments[{i}]"), "is empty"));
        }
        for (key, &level) in &self.skills {
            if key.trim().is_empty() {
                return Err(AgentError::new("skills", "a skill has no name"));
            }
            if !(1..=5).contains(&level) {
                return Err(AgentError::new(
                    format!("skills.{key}"),
                    format!("level {level} is not 1 to 5"),
                ));
            }
        }
        for (field, list) in [("languages", &self.languages), ("channels", &self.channels)] {
            if let Some(i) = list.iter().position(|v| v.trim().is_empty()) {
                return Err(AgentError::new(format!("{field}[{i}]"), "is empty"));
            }
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(AgentError::new(
                "capacity",
                format!("{} is not 1 to {MAX_CAPACITY}", self.capacity),
            ));
        }
        self.shift.validate()
    }

    /// The agent's level for `key` (a department or a problem type), if they have that skill.
    pub fn skill(&self, key: &str) -> Option<u8> {
        self.skills.get(key).copied()
    }

    pub fn in_department(&self, department: &str) -> bool {
        self.departments.iter().any(|d| d == department)
    }

    /// Whether they answer in `language`: by primary subtag (`zh` covers `zh-CN`), any when either
    /// side does not say.
    pub fn speaks(&self, language: &str) -> bool {
        let primary = |l: &str| {
            l.split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        language.is_empty()
            || self.languages.is_empty()
            || self
                .languages
                .iter()
                .any(|l| primary(l) == primary(language))
    }

    pub fn works_channel(&self, channel: &str) -> bool {
        channel.is_empty()
            || self.channels.is_empty()
            || self
                .channels
                .iter()
                .any(|c| c.eq_ignore_ascii_case(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "a-1".into(),
            name: "Ana".into(),
            departments: vec!["billing".into()],
            skills: BTreeMap::from([("refunds".into(), 4)]),
            languages: vec!["zh-CN".into()],
            channels: vec!["web".into()],
            tier: Tier::L2,
            capacity: 8,
            shift: Shift::default(),
            status: Status::Online,
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        agent().validate().expect("valid");
        type Spoil = fn(&mut Agent);
        let cases: [(Spoil, &str); 6] = [
            (|a| a.id = "a 1".into(), "id"),
            (|a| a.name = " ".into(), "name"),
            (|a| a.departments.clear(), "departments"),
            (
                |a| {
                    a.skills.insert("refunds".into(), 6);
                },
                "skills.refunds",
            ),
            (|a| a.channels.push(String::new()), "channels[1]"),
            (|a| a.capacity = 0, "capacity"),
        ];
        for (spoil, field) in cases {
            let mut a = agent();
            spoil(&mut a);
            assert_eq!(a.validate().expect_err(field).field, field);
        }
    }

    #[test]
    fn languages_match_by_primary_subtag_and_channels_ignore_case() {
        let a = agent();
        assert!(a.speaks("zh") && a.speaks("ZH-tw") && a.speaks(""));
        assert!(!a.speaks("en"));
        assert!(a.works_channel("Web") && !a.works_channel("email"));
    }

    #[test]
    fn the_json_names_tiers_and_statuses_as_people_write_them() {
        let json = serde_json::to_value(agent()).expect("json");
        assert_eq!(
            (json["tier"].as_str(), json["status"].as_str()),
            (Some("L2"), Some("online"))
        );
        let err = serde_json::from_value::<Agent>(serde_json::json!({
            "id": "a", "name": "A", "departments": ["x"], "tier": "L1", "capacity": 2, "colour": 1
        }))
        .expect_err("unknown field");
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
