//! The `switchboard` binary's library: settings, role wiring and the commands. The binary only parses
//! arguments and calls in here, so tests drive exactly what users run.

pub mod accounts;
pub mod agents;
pub mod app;
pub mod bench;
pub mod bench_assign;
pub mod bench_drift;
pub mod bench_embed;
pub mod bench_load;
pub mod bench_scale;
pub mod bench_sentiment;
pub mod deadletter;
pub mod departments;
pub mod docs;
pub mod import;
pub mod knowledge;
pub mod measure;
pub mod openapi;
mod reach;
pub mod readiness;
pub mod roles;
pub mod route;
pub mod settings;

pub use app::{Running, connect_bus, delete_bus_data, start};
pub use roles::{Role, Roles};
pub use settings::Settings;
