//! From the tone's signals and what the earlier stages found to the assessment: the signals, and whether a
//! person must take the ticket at once (the policy's escalation rules). Priority is not set here: the
//! router applies the priority policy once, when it decides.

use switchboard_policy::{Lang, PolicyConfig, escalations};
use switchboard_proto::{Assessment, Ticket};

use crate::Signals;

pub(crate) fn assess(signals: Signals, ticket: &Ticket, policy: &PolicyConfig) -> Assessment {
    let found = escalations(signals.anger, ticket, policy);
    // Worded here, in both languages, because the reasons travel as text: the router and the console
    // show them as they are.
    let words = |lang| found.iter().map(|e| e.describe(lang)).collect();
    Assessment {
        sentiment: signals.sentiment,
        anger: signals.anger,
        urgency: signals.urgency,
        escalate: !found.is_empty(),
        escalation_reasons: words(Lang::En),
        escalation_reasons_zh: words(Lang::Zh),
    }
}
