//! The console role: the web console (`/console/`, its files compiled in from `web/`), its live feed
//! (`/v1/events`) and board (`/v1/board`), and the desk API: what people do with the system's
//! decisions, over HTTP JSON. Tickets and their history, the review queue (claim one, confirm or
//! correct it in one request), corrections and resolutions, all checked against the caller's role.
//! The work itself is the desk library's ([`switchboard_desk::WorkStates`]); corrections and
//! resolutions are also published as the events the feedback role learns from. Its OpenAPI
//! description is [`ConsoleApi`].

mod assets;
mod board;
mod desk;
mod error;
mod events;
mod http;
mod query;
mod role;

pub use assets::public_paths;
pub use board::{BoardFilter, BoardPage, BoardRow};
pub use desk::{ConsoleConfig, Desk};
pub use error::ConsoleError;
pub use events::Events;
pub use http::{ConsoleApi, routes};
pub use query::{ReviewFilter, TicketFilter};
pub use role::role;
