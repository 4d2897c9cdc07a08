//! The desk's work state: each ticket's lifecycle (received → routed or in review → assigned → in
//! progress → resolved, and reopened), its department, assignee and priority. The current state of a
//! ticket lives in the KV bucket [`WORK_BUCKET`], changed only through revision-checked updates
//! ([`WorkStates`]); every change is also a [`Transition`] event on `<prefix>.work.<state>`, the audit
//! log of who moved which ticket, when and why. Which moves are allowed is [`lifecycle`].
//!
//! [`Transition`]: switchboard_proto::Transition

pub mod lifecycle;
mod store;

pub use lifecycle::TransitionError;
pub use store::{Applied, Change, DeskError, Evidence, WorkStates};

/// The KV bucket of work states, by ticket id. Written by every role that moves a ticket (the router,
/// feedback), through [`WorkStates`] only.
pub const WORK_BUCKET: &str = "work";

/// How many transitions a work state keeps as the ticket's history (and to recognise a cause delivered
/// again). A ticket's life is a handful of moves; the bound only keeps a pathological one (claimed over
/// and over) from growing its value past what a KV entry holds. The transition events on the bus keep
/// everything.
pub const HISTORY_LIMIT: usize = 256;

/// How many times [`WorkStates::apply`] reads and tries again when another writer changed the ticket
/// between its read and its write.
pub const MAX_ATTEMPTS: u32 = 32;
