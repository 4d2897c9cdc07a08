//! How enum fields appear in JSON: by their value's name ("PRIORITY_HIGH"), as in the protobuf JSON
//! mapping, instead of the `i32` prost stores. `build.rs` names these functions in `serialize_with`.

macro_rules! by_name {
    ($($serializer:ident => $enumeration:ident),* $(,)?) => {$(
        pub(crate) fn $serializer<S: serde::Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
            match crate::v1::$enumeration::try_from(*value) {
                Ok(known) => s.serialize_str(known.as_str_name()),
                // A value a newer writer added: shown as its number rather than failing the response.
                Err(_) => s.serialize_i32(*value),
            }
        }
    )*};
}

by_name! {
    stage => Stage,
    problem_type_source => ProblemTypeSource,
    priority_cause => PriorityCause,
    priority => Priority,
    outcome => Outcome,
    correction_reason => CorrectionReason,
    ticket_state => TicketState,
}

#[cfg(test)]
mod tests {
    use crate::v1::{Decision, Outcome, Priority};

    #[test]
    fn enum_fields_are_shown_by_name_and_unknown_values_by_number() {
        let mut decision = Decision {
            department: "billing".into(),
            ..Decision::default()
        };
        decision.set_priority(Priority::High);
        decision.set_outcome(Outcome::Review);
        let json = serde_json::to_value(&decision).expect("serialises");
        assert_eq!(json["priority"], "PRIORITY_HIGH");
        assert_eq!(json["outcome"], "OUTCOME_REVIEW");
        assert_eq!(json["department"], "billing");
        decision.priority = 42;
        assert_eq!(
            serde_json::to_value(&decision).expect("serialises")["priority"],
            42
        );
    }

    /// The API's JSON of a decision gives the Chinese wording beside the English.
    #[test]
    fn a_decision_shows_both_wordings() {
        let decision = Decision {
            explanation: "Routed to billing with confidence 87%.".into(),
            explanation_zh: "已自动分派至 billing，置信度 87%。".into(),
            ..Decision::default()
        };
        let json = serde_json::to_value(&decision).expect("serialises");
        assert_eq!(
            json["explanation"],
            "Routed to billing with confidence 87%."
        );
        assert_eq!(json["explanation_zh"], "已自动分派至 billing，置信度 87%。");
        assert_eq!(json["review_reason_zh"], "");
    }
}
