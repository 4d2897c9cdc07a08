//! The subject names of the pipeline, all under one prefix so a deployment (or a test) owns its space.

use switchboard_proto::{Stage, TicketState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new("tickets")
    }
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every subject of the pipeline: what the stream stores and the metrics role reads.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// Where connectors publish CloudEvents for one channel.
    pub fn inbound(&self, channel: &str) -> String {
        format!("{}.inbound.{channel}", self.prefix)
    }

    pub fn inbound_all(&self) -> String {
        format!("{}.inbound.>", self.prefix)
    }

    /// Whether `subject` is one connectors publish on: the only subjects open to publishers that are
    /// not Switchboard roles.
    pub fn is_inbound(&self, subject: &str) -> bool {
        subject
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.starts_with(".inbound."))
    }

    /// The subject a ticket travels on once it has reached `stage`.
    pub fn stage(&self, stage: Stage) -> String {
        format!("{}.{}", self.prefix, stage_name(stage))
    }

    pub fn corrected(&self) -> String {
        format!("{}.feedback.corrected", self.prefix)
    }

    pub fn resolved(&self) -> String {
        format!("{}.feedback.resolved", self.prefix)
    }

    pub fn feedback_all(&self) -> String {
        format!("{}.feedback.>", self.prefix)
    }

    /// Where a ticket's move to `state` is published: the desk's audit log of work-state transitions.
    pub fn work(&self, state: TicketState) -> String {
        format!("{}.work.{}", self.prefix, state_name(state))
    }

    pub fn work_all(&self) -> String {
        format!("{}.work.>", self.prefix)
    }

    pub fn deadletter(&self, role: &str) -> String {
        format!("{}.deadletter.{role}", self.prefix)
    }

    pub fn deadletter_all(&self) -> String {
        format!("{}.deadletter.>", self.prefix)
    }

    /// Where an operator sends a dead letter back to `role` (`switchboard deadletter replay`): only
    /// that role's replay consumer reads it.
    pub fn replay(&self, role: &str) -> String {
        format!("{}.replay.{role}", self.prefix)
    }
}

/// The ticket pipeline's order, written once: the stages a ticket at `stage` may move on to. Each ticket
/// stage consumes its [`crate::TicketStage::INPUT`] and gives one of these; routed and review tickets
/// leave the pipeline for people.
pub fn next_stages(stage: Stage) -> &'static [Stage] {
    match stage {
        Stage::Received => &[Stage::Parsed],
        Stage::Parsed => &[Stage::Assessed],
        Stage::Assessed => &[Stage::Matched],
        Stage::Matched => &[Stage::Routed, Stage::Review],
        Stage::Routed | Stage::Review | Stage::Unspecified => &[],
    }
}

/// The lower-case stage name used in subjects, message ids and metric labels.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Unspecified => "unspecified",
        Stage::Received => "received",
        Stage::Parsed => "parsed",
        Stage::Assessed => "assessed",
        Stage::Matched => "matched",
        Stage::Routed => "routed",
        Stage::Review => "review",
    }
}

/// The lower-case name of a ticket's work state, used in subjects, logs and errors.
pub fn state_name(state: TicketState) -> &'static str {
    match state {
        TicketState::Unspecified => "unspecified",
        TicketState::Received => "received",
        TicketState::Routed => "routed",
        TicketState::InReview => "in_review",
        TicketState::Assigned => "assigned",
        TicketState::InProgress => "in_progress",
        TicketState::Resolved => "resolved",
        TicketState::Reopened => "reopened",
    }
}

/// The de-duplication id of a ticket's event at a stage: a redelivered input republishes the same id,
/// so the stream stores the event once.
pub fn msg_id(ticket_id: &str, stage: Stage) -> String {
    format!("{ticket_id}.{}", stage_name(stage))
}
