//! Which roles a process runs: `all` (the embedded default) or a comma-separated list.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Intake,
    Parser,
    Sentiment,
    Retriever,
    Router,
    Assign,
    Feedback,
    Metrics,
    Console,
}

impl Role {
    /// In pipeline order, which is also the order of draining at shutdown.
    pub const ALL: [Role; 9] = [
        Role::Intake,
        Role::Parser,
        Role::Sentiment,
        Role::Retriever,
        Role::Router,
        Role::Assign,
        Role::Feedback,
        Role::Metrics,
        Role::Console,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Intake => "intake",
            Role::Parser => "parser",
            Role::Sentiment => "sentiment",
            Role::Retriever => "retriever",
            Role::Router => "router",
            Role::Assign => "assign",
            Role::Feedback => "feedback",
            Role::Metrics => "metrics",
            Role::Console => "console",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of roles parsed from `--roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(pub Vec<Role>);

impl Roles {
    pub fn all() -> Self {
        Self(Role::ALL.to_vec())
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

impl FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                return Ok(Self::all());
            }
            let role = Role::ALL
                .into_iter()
                .find(|r| r.name() == part)
                .ok_or_else(|| {
                    let known: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
                    format!(
                        "unknown role {part:?}; expected all or any of {}",
                        known.join(", ")
                    )
                })?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return Err("no role given".into());
        }
        roles.sort();
        Ok(Self(roles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        assert_eq!("all".parse::<Roles>(), Ok(Roles::all()));
        assert_eq!(
            "router, parser,router".parse::<Roles>(),
            Ok(Roles(vec![Role::Parser, Role::Router]))
        );
        let err = "routr".parse::<Roles>().expect_err("unknown role");
        assert!(err.contains("routr") && err.contains("router"), "{err}");
    }
}
