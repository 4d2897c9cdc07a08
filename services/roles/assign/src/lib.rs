//! The assign role: gives each decided ticket to an agent of its department, by the one policy in
//! [`switchboard_agents::policy`], with each agent's load kept beside the work state it follows.
//!
//! It reads every work-state transition (`<prefix>.work.>`): a ticket routed or reopened is assigned,
//! or waits in its department's queue ([`QUEUE_BUCKET`]) with the reason; any move makes the agents'
//! loads agree with the work state (a resolution or a hand-over frees a place, and the queue is tried
//! again); a resolution remembers who resolved the customer's ticket. Agents going offline have their
//! tickets reassigned, tickets not picked up in time too, and agents coming online take from the queue.
//! Its HTTP routes manage agents, show the queue, and let a supervisor assign by hand.

mod assigner;
mod config;
mod error;
mod extract;
mod handler;
mod http;
mod queue;
mod role;
mod tasks;

pub use assigner::{Assigner, Placed};
pub use config::AssignConfig;
pub use error::AssignError;
pub use handler::TransitionHandler;
pub use http::{AssignApi, routes};
pub use queue::{QUEUE_BUCKET, Queue, Waiting};
pub use role::role;
pub use tasks::{follow_agents, keep_queue_moving};
