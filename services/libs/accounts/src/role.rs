//! Who may do what: the five roles, the capabilities endpoints ask for, and the one table between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an account, token or JWT is allowed to be. Stored and sent lower-case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Works reviews and tickets: confirm, correct, resolve.
    Agent,
    /// An agent who also sees every department's tickets and reassigns them.
    Supervisor,
    /// Everything: rules, departments, accounts, tokens, and all an agent or supervisor does.
    Admin,
    /// A ticket source (a mail gateway, a web form): submits tickets, nothing else.
    Connector,
    /// Reads, changes nothing.
    Viewer,
}

impl Role {
    /// Every role, in the order error messages list them.
    pub const ALL: [Self; 5] = [
        Self::Agent,
        Self::Supervisor,
        Self::Admin,
        Self::Connector,
        Self::Viewer,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
            Self::Connector => "connector",
            Self::Viewer => "viewer",
        }
    }

    /// The table: which capabilities each role holds. Everything else asks this.
    pub const fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Self::Connector => &[Submit],
            Self::Viewer => &[Read],
            Self::Agent => &[Read, Work],
            Self::Supervisor => &[Read, Work, ReadAll, Reassign],
            Self::Admin => &[Submit, Read, Work, ReadAll, Reassign, Admin],
        }
    }

    pub fn can(self, capability: Capability) -> bool {
        self.capabilities().contains(&capability)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {value:?}: the roles are agent, supervisor, admin, connector and viewer")]
pub struct UnknownRole {
    pub value: String,
}

impl FromStr for Role {
    type Err = UnknownRole;

    /// Exact lower-case names only, so what is stored always reads back as what was written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole {
                value: s.to_owned(),
            })
    }
}

/// What an endpoint needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Submit tickets (intake).
    Submit,
    /// Read tickets, decisions and stats of one's own department.
    Read,
    /// Read every department's tickets.
    ReadAll,
    /// Work tickets: reviews, claim, confirm, correct, resolve.
    Work,
    /// Move tickets between departments and agents.
    Reassign,
    /// Edit rules, departments, accounts and tokens.
    Admin,
}

impl Capability {
    pub const ALL: [Self; 6] = [
        Self::Submit,
        Self::Read,
        Self::ReadAll,
        Self::Work,
        Self::Reassign,
        Self::Admin,
    ];

    /// What the capability allows, as the end of "… is not allowed to …".
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Submit => "submit tickets",
            Self::Read => "read tickets",
            Self::ReadAll => "read every department's tickets",
            Self::Work => "work tickets",
            Self::Reassign => "reassign tickets",
            Self::Admin => "administer rules, departments, accounts and tokens",
        }
    }

    /// The roles that hold this capability, in [`Role::ALL`] order.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| role.can(self))
            .collect()
    }
}

/// "agent", "agent or admin", "agent, supervisor or admin".
pub(crate) fn either(roles: &[Role]) -> String {
    match roles {
        [] => "no role".to_owned(),
        [one] => one.as_str().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(|r| r.as_str()).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    /// The table written out a second time, role by role and capability by capability, so a change to
    /// one copy that the other does not share fails here.
    #[test]
    fn every_role_holds_exactly_its_capabilities() {
        let expected: [(Role, [bool; 6]); 5] = [
            //                  Submit Read  ReadAll Work  Reassign Admin
            (Role::Connector, [true, false, false, false, false, false]),
            (Role::Viewer, [false, true, false, false, false, false]),
            (Role::Agent, [false, true, false, true, false, false]),
            (Role::Supervisor, [false, true, true, true, true, false]),
            (Role::Admin, [true, true, true, true, true, true]),
        ];
        assert_eq!(
            Capability::ALL,
            [Submit, Read, ReadAll, Work, Reassign, Admin]
        );
        for (role, holds) in expected {
            for (capability, holds) in Capability::ALL.into_iter().zip(holds) {
                assert_eq!(role.can(capability), holds, "{role} and {capability:?}");
            }
        }
        let mut roles: Vec<Role> = expected.iter().map(|(role, _)| *role).collect();
        roles.sort();
        let mut all = Role::ALL.to_vec();
        all.sort();
        assert_eq!(roles, all, "every role, once");
    }

    #[test]
    fn roles_read_back_as_written() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).expect("json");
            assert_eq!(json, format!("\"{role}\""));
        }
    }

    #[test]
    fn an_unknown_role_is_named_with_the_valid_ones() {
        let err = "Admin".parse::<Role>().expect_err("case matters");
        assert_eq!(
            err.to_string(),
            "unknown role \"Admin\": the roles are agent, supervisor, admin, connector and viewer"
        );
        assert!("operator".parse::<Role>().is_err());
    }

    #[test]
    fn the_roles_for_a_capability_read_as_a_list() {
        assert_eq!(either(&Work.roles()), "agent, supervisor or admin");
        assert_eq!(either(&Submit.roles()), "admin or connector");
        assert_eq!(either(&Admin.roles()), "admin");
    }
}
