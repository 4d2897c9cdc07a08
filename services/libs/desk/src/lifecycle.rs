//! Which moves between work states are allowed, written once as a table.
//!
//! | from | to |
//! |---|---|
//! | received | routed, in review (the router's decision) |
//! | routed | routed (a correction: another department), in review, assigned, resolved |
//! | in review | routed (a person decided), assigned, resolved |
//! | assigned | assigned (handed to another agent), in progress, routed (a correction), resolved |
//! | in progress | assigned (handed over), routed (a correction), resolved |
//! | resolved | reopened |
//! | reopened | routed, in review, assigned, in progress, resolved |
//!
//! Resolving does not wait for an assignment: an agent may resolve a routed or reviewed ticket before
//! the assign role gives it to anyone (a department with no agents on file, or a quick answer). A resolved ticket moves only to reopened, so a late correction or a
//! redelivered decision cannot undo a resolution.

use switchboard_proto::TicketState;
use switchboard_runtime::subjects::state_name;

/// A move the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a ticket cannot go from {} to {}", state_name(*.from), state_name(*.to))]
pub struct TransitionError {
    pub from: TicketState,
    pub to: TicketState,
}

/// The states a ticket at `from` may move to.
pub fn allowed(from: TicketState) -> &'static [TicketState] {
    use TicketState::*;
    match from {
        Received => &[Routed, InReview],
        Routed => &[Routed, InReview, Assigned, Resolved],
        InReview => &[Routed, Assigned, Resolved],
        Assigned => &[Assigned, InProgress, Routed, Resolved],
        InProgress => &[Assigned, Routed, Resolved],
        Resolved => &[Reopened],
        Reopened => &[Routed, InReview, Assigned, InProgress, Resolved],
        Unspecified => &[],
    }
}

/// Whether a ticket at `from` may move to `to`; the error names both when not.
pub fn check(from: TicketState, to: TicketState) -> Result<(), TransitionError> {
    if allowed(from).contains(&to) {
        Ok(())
    } else {
        Err(TransitionError { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketState::*;

    const ALL: [TicketState; 8] = [
        Unspecified,
        Received,
        Routed,
        InReview,
        Assigned,
        InProgress,
        Resolved,
        Reopened,
    ];

    /// The lifecycle spelt out a second time, as pairs: every pair listed is allowed, every other
    /// refused, naming both states.
    #[test]
    fn every_move_is_allowed_or_refused_as_the_table_says() {
        let allowed_moves = [
            (Received, Routed),
            (Received, InReview),
            (Routed, Routed),
            (Routed, InReview),
            (Routed, Assigned),
            (Routed, Resolved),
            (InReview, Routed),
            (InReview, Assigned),
            (InReview, Resolved),
            (Assigned, Assigned),
            (Assigned, InProgress),
            (Assigned, Routed),
            (Assigned, Resolved),
            (InProgress, Assigned),
            (InProgress, Routed),
            (InProgress, Resolved),
            (Resolved, Reopened),
            (Reopened, Routed),
            (Reopened, InReview),
            (Reopened, Assigned),
            (Reopened, InProgress),
            (Reopened, Resolved),
        ];
        let mut refused = 0;
        for from in ALL {
            for to in ALL {
                let result = check(from, to);
                if allowed_moves.contains(&(from, to)) {
                    assert_eq!(result, Ok(()), "{from:?} -> {to:?}");
                } else {
                    assert_eq!(
                        result,
                        Err(TransitionError { from, to }),
                        "{from:?} -> {to:?}"
                    );
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, ALL.len() * ALL.len() - allowed_moves.len());
        // Nothing enters received or the unspecified state, and a resolution is only ever reopened.
        for from in ALL {
            assert!(check(from, Received).is_err() && check(from, Unspecified).is_err());
        }
        assert_eq!(allowed(Resolved), &[Reopened]);
    }

    #[test]
    fn a_refusal_says_from_where_to_where() {
        let err = check(Resolved, InProgress).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "a ticket cannot go from resolved to in_progress"
        );
        let err = check(Received, Resolved).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "a ticket cannot go from received to resolved"
        );
    }
}
