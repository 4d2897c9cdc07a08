//! From the tone's signals and what the earlier stages found to the assessment: the signals, and whether a
//! person must take the ticket at once (the policy's escalation rules). Priority is not set here: the
//! router applies the priority policy once, when it decides.

use switchboard_policy::{PolicyConfig, escalation_reasons};
use switchboard_proto::{Assessment, Ticket};

use crate::Signals;

pub(crate) fn assess(signals: Signals, ticket: &Ticket, policy: &PolicyConfig) -> Assessment {
    let escalation_reasons = escalation_reasons(signals.anger, ticket, policy);
    Assessment {
        sentiment: signals.sentiment,
        anger: signals.anger,
        urgency: signals.urgency,
        escalate: !escalation_reasons.is_empty(),
        escalation_reasons,
    }
}
