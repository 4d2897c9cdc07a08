//! A correction makes the agent's department the ticket's stored decision (the `decisions` bucket, which
//! the board reads and a later resolution learns from), keeping the decision it replaced.

use bytes::Bytes;
use prost::Message;
use switchboard_bus::{BusError, Kv};
use switchboard_policy::Lang;
use switchboard_proto::{Corrected, CorrectionReason, Decision, Outcome, Ticket};

use crate::error::{FeedbackError, load_entry};

/// Read-modify-write attempts before a correction gives up and is retried by the bus: writers of one
/// ticket's decision are few (the router once, then agents), so contention this long means trouble.
const MAX_ATTEMPTS: u32 = 16;

/// Whether the ticket's current decision is this correction already: the same event delivered again.
pub(crate) fn holds(ticket: &Ticket, c: &Corrected) -> bool {
    ticket
        .decision
        .as_ref()
        .and_then(|d| d.correction.as_ref())
        .is_some_and(|done| done == c)
}

/// Makes the correction the ticket's current decision and moves the one it replaces to the end of
/// `superseded`, with a revision-checked update that reads again when another writer came between, so
/// no concurrent correction or decision is lost. A correction the decision already holds changes
/// nothing. Returns the ticket as stored.
pub(crate) async fn correct(decisions: &dyn Kv, c: &Corrected) -> Result<Ticket, FeedbackError> {
    for _ in 0..MAX_ATTEMPTS {
        let (mut ticket, revision) = load_entry(decisions, &c.ticket_id).await?;
        if holds(&ticket, c) {
            return Ok(ticket);
        }
        let previous = ticket.decision.take().unwrap_or_default();
        ticket.decision = Some(corrected(&previous, c));
        ticket.superseded.push(previous);
        let value = Bytes::from(ticket.encode_to_vec());
        match decisions.update(&c.ticket_id, value, revision).await {
            Ok(_) => return Ok(ticket),
            Err(BusError::WrongRevision { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(FeedbackError::Contended {
        ticket: c.ticket_id.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// The decision an agent's correction makes: their department, routed, with who, why and when. The
/// priority stays (the ticket is as urgent as before); the evidence and the router's confidence stay
/// with the decision they belonged to, in `superseded`.
fn corrected(previous: &Decision, c: &Corrected) -> Decision {
    Decision {
        department: c.to_department.clone(),
        confidence: 1.0,
        outcome: Outcome::Routed.into(),
        priority: previous.priority,
        priority_steps: previous.priority_steps.clone(),
        explanation: explain(previous, c, Lang::En),
        explanation_zh: explain(previous, c, Lang::Zh),
        decided_at_ms: c.at_ms,
        correction: Some(c.clone()),
        ..Decision::default()
    }
}

/// The correction in words, as the router words its decisions: in English and in Chinese.
fn explain(previous: &Decision, c: &Corrected, lang: Lang) -> String {
    let (from, to) = (&previous.department, &c.to_department);
    let mut out = match lang {
        Lang::En => {
            let who = if c.agent.is_empty() {
                "an agent"
            } else {
                c.agent.as_str()
            };
            let reason = c.reason().as_str_name();
            format!("Corrected by {who} from {from} to {to} ({reason})")
        }
        Lang::Zh => {
            // Latin names are spaced from the Chinese around them; the Chinese word is not.
            let who = if c.agent.is_empty() {
                "坐席".to_owned()
            } else {
                format!(" {} ", c.agent)
            };
            let reason = match c.reason() {
                CorrectionReason::WrongDepartment => "部门错误",
                CorrectionReason::PolicyUpdated => "政策已更新",
                CorrectionReason::SystemUpgraded => "系统升级",
                CorrectionReason::ResponsibilityChanged => "职责调整",
                CorrectionReason::Other => "其他",
                CorrectionReason::Unspecified => "未说明原因",
            };
            format!("由{who}从 {from} 改派至 {to}（{reason}）")
        }
    };
    if !c.note.is_empty() {
        let colon = match lang {
            Lang::En => ": ",
            Lang::Zh => "：",
        };
        out.push_str(colon);
        out.push_str(&c.note);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_is_explained_in_english_and_in_chinese() {
        let previous = Decision {
            department: "front_desk".into(),
            ..Decision::default()
        };
        let mut c = Corrected {
            to_department: "facilities".into(),
            agent: "ana".into(),
            note: "permits moved".into(),
            ..Corrected::default()
        };
        c.set_reason(CorrectionReason::ResponsibilityChanged);
        let d = corrected(&previous, &c);
        assert_eq!(
            d.explanation,
            "Corrected by ana from front_desk to facilities \
             (CORRECTION_REASON_RESPONSIBILITY_CHANGED): permits moved"
        );
        assert_eq!(
            d.explanation_zh,
            "由 ana 从 front_desk 改派至 facilities（职责调整）：permits moved"
        );
        c.agent.clear();
        c.note.clear();
        assert_eq!(
            corrected(&previous, &c).explanation_zh,
            "由坐席从 front_desk 改派至 facilities（职责调整）"
        );
    }
}
