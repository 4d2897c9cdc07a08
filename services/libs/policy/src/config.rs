//! The `[policy]` section of the configuration: escalation, priority and incident limits, embedded by the
//! binary in its own config.

use serde::Deserialize;

/// Highest complexity tier the parser reports.
const MAX_COMPLEXITY: u32 = 5;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Anger (0..1) from which a ticket escalates to a human and its priority rises: an angry customer
    /// handled by the wrong queue turns into a public complaint.
    pub anger_threshold: f32,
    /// Urgency (0..1) from which the priority rises.
    pub urgency_threshold: f32,
    /// Complexity tier (1..5) from which a ticket escalates: several tangled problems rarely fit one
    /// department's script.
    pub complexity_threshold: u32,
    /// Earlier unresolved rounds of the same thread from which a ticket escalates: a customer who has come
    /// back that often needs a person, not another routing attempt.
    pub unresolved_rounds_threshold: u32,
    /// Customer tiers that always escalate and get at least high priority, matched case-insensitively.
    pub vip_tiers: Vec<String>,
    /// A ticket that has waited longer than this since receipt by the time it is decided rises one
    /// priority level: a backlog must not leave the oldest tickets at the bottom.
    pub wait_raise_minutes: u32,
    /// A ticket whose `sla_deadline` attribute (any form of [`switchboard_text::timestamp`]) is this close gets at least
    /// high priority, and urgent once it has passed.
    pub sla_warning_minutes: u32,
    /// An incident is this many different customers or more sending close tickets (this one included)
    /// within [`Self::incident_window_minutes`]; it raises the priority one level. 0 turns detection off.
    pub incident_min_customers: u32,
    pub incident_window_minutes: u32,
    /// How close (0..1] two tickets must be to count as the same problem: the cosine of their dense
    /// embeddings, or of their BM25 term vectors when the knowledge base has no embedder.
    pub incident_min_similarity: f32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            anger_threshold: 0.6,
            urgency_threshold: 0.5,
            complexity_threshold: 3,
            unresolved_rounds_threshold: 2,
            vip_tiers: vec!["vip".to_owned()],
            wait_raise_minutes: 60,
            sla_warning_minutes: 120,
            incident_min_customers: 5,
            incident_window_minutes: 30,
            incident_min_similarity: 0.75,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("policy.{key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl PolicyConfig {
    /// Checks the values a file or the environment may have broken, naming the key at fault. Each bound
    /// rules out a setting that would escalate every ticket or none.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let signals = [
            ("anger_threshold", self.anger_threshold),
            ("urgency_threshold", self.urgency_threshold),
        ];
        for (key, value) in signals {
            // Written so NaN fails too.
            if !(value > 0.0 && value <= 1.0) {
                return Err(ConfigError {
                    key,
                    problem: format!("{value} must be above 0 and at most 1"),
                });
            }
        }
        if !(1..=MAX_COMPLEXITY).contains(&self.complexity_threshold) {
            return Err(ConfigError {
                key: "complexity_threshold",
                problem: format!(
                    "{} must be a tier from 1 to {MAX_COMPLEXITY}",
                    self.complexity_threshold
                ),
            });
        }
        if self.unresolved_rounds_threshold == 0 {
            return Err(ConfigError {
                key: "unresolved_rounds_threshold",
                problem: "must be at least 1".into(),
            });
        }
        // Zero would raise every ticket, or treat every deadline as near.
        for (key, value) in [
            ("wait_raise_minutes", self.wait_raise_minutes),
            ("sla_warning_minutes", self.sla_warning_minutes),
            ("incident_window_minutes", self.incident_window_minutes),
        ] {
            if value == 0 {
                return Err(ConfigError {
                    key,
                    problem: "must be at least 1".into(),
                });
            }
        }
        // Written so NaN fails too; zero would make every pair of tickets close.
        if !(self.incident_min_similarity > 0.0 && self.incident_min_similarity <= 1.0) {
            return Err(ConfigError {
                key: "incident_min_similarity",
                problem: format!(
                    "{} must be above 0 and at most 1",
                    self.incident_min_similarity
                ),
            });
        }
        // An empty tier would match every customer without one.
        if self.vip_tiers.iter().any(|t| t.trim().is_empty()) {
            return Err(ConfigError {
                key: "vip_tiers",
                problem: "tiers must not be empty".into(),
            });
        }
        Ok(())
    }

    pub fn is_vip(&self, tier: &str) -> bool {
        let tier = tier.trim();
        !tier.is_empty()
            && self
                .vip_tiers
                .iter()
                .any(|v| v.trim().eq_ignore_ascii_case(tier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let config: PolicyConfig =
            serde_json::from_str(r#"{"anger_threshold": 0.7}"#).unwrap_or_default();
        assert_eq!(
            config,
            PolicyConfig {
                anger_threshold: 0.7,
                ..PolicyConfig::default()
            }
        );
        let empty: Result<PolicyConfig, _> = serde_json::from_str("{}");
        assert_eq!(empty.ok(), Some(PolicyConfig::default()));
        assert!(PolicyConfig::default().validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = serde_json::from_str::<PolicyConfig>(r#"{"anger_treshold": 0.7}"#)
            .expect_err("a misspelt key");
        assert!(err.to_string().contains("anger_treshold"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                PolicyConfig {
                    anger_threshold: 0.0,
                    ..PolicyConfig::default()
                },
                "anger_threshold",
            ),
            (
                PolicyConfig {
                    urgency_threshold: f32::NAN,
                    ..PolicyConfig::default()
                },
                "urgency_threshold",
            ),
            (
                PolicyConfig {
                    complexity_threshold: 6,
                    ..PolicyConfig::default()
                },
                "complexity_threshold",
            ),
            (
                PolicyConfig {
                    unresolved_rounds_threshold: 0,
                    ..PolicyConfig::default()
                },
                "unresolved_rounds_threshold",
            ),
            (
                PolicyConfig {
                    vip_tiers: vec![String::new()],
                    ..PolicyConfig::default()
                },
                "vip_tiers",
            ),
            (
                PolicyConfig {
                    wait_raise_minutes: 0,
                    ..PolicyConfig::default()
                },
                "wait_raise_minutes",
            ),
            (
                PolicyConfig {
                    sla_warning_minutes: 0,
                    ..PolicyConfig::default()
                },
                "sla_warning_minutes",
            ),
        ];
        for (config, key) in cases {
            let err = config
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(&format!("policy.{key}: ")), "{key}: {err}");
        }
    }

    #[test]
    fn vip_tiers_match_case_insensitively() {
        let config = PolicyConfig::default();
        assert!(config.is_vip("VIP"));
        assert!(!config.is_vip(""));
        assert!(!config.is_vip("standard"));
    }
}
