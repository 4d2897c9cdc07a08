//! Agents as data and the assignment policy. An [`Agent`] (departments, skills, languages, channels,
//! tier, capacity, shift, status) is JSON under its id in the KV bucket [`AGENTS_BUCKET`]; the tickets
//! each one holds are its [`Load`] in [`LOADS_BUCKET`], changed only by revision-checked updates so two
//! replicas assigning at once never push an agent past capacity; who last resolved each customer's
//! ticket is in [`CUSTOMERS_BUCKET`]. [`policy::choose`] is the one assignment policy: the service and
//! `switchboard bench-assign` both call it.

mod agent;
mod csv_import;
mod customers;
mod error;
mod load;
pub mod policy;
mod shift;
mod store;

pub use agent::{Agent, Status, Tier};
pub use csv_import::{CSV_COLUMNS, CsvError, read_agents_csv};
pub use customers::LastResolvers;
pub use error::{AgentError, StoreError};
pub use load::{Held, Load, Loads, Reserve, weight};
pub use shift::Shift;
pub use store::{AgentStore, changed_agent};

/// Agents as JSON by id: admins write them (API or CSV import), the assign role reads them.
pub const AGENTS_BUCKET: &str = "agents";

/// Each agent's open tickets as JSON by agent id: what capacity is checked against.
pub const LOADS_BUCKET: &str = "agent_loads";

/// The agent who last resolved a ticket of each customer, by customer.
pub const CUSTOMERS_BUCKET: &str = "agent_customers";
