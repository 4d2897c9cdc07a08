//! Property tests of the rule parser (what the bucket and the editor read) and its checks: any bytes
//! under any key are a rule or an error naming the key and where the JSON went wrong; any object of
//! rule fields is a rule that passes or an error naming the field at fault; a rule written is read back
//! as written, under its key.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_proto::Rule;

use crate::error::RouterError;
use crate::rules::{parse, validate};

const FIELDS: [&str; 6] = [
    "id",
    "keywords",
    "department",
    "weight",
    "enabled",
    "description",
];

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("   ")),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON error names the key, and serde's position in the text.
fn names_the_json_problem(e: &RouterError, key: &str) -> Result<(), String> {
    let chain = switchboard_errors::error_chain(e);
    let named = matches!(e, RouterError::RuleJson { .. })
        && chain.starts_with(&format!("rule {key} is not valid JSON: "))
        && chain.contains(" line ");
    if named { Ok(()) } else { Err(chain) }
}

proptest! {
    #[test]
    fn any_bytes_are_a_rule_or_name_the_problem(
        key in "[a-z0-9_-]{1,12}",
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        match parse(&key, &bytes) {
            Ok(rule) => prop_assert_eq!(rule.id, key),
            Err(e) => prop_assert!(names_the_json_problem(&e, &key).is_ok(), "{:?}", names_the_json_problem(&e, &key)),
        }
    }

    #[test]
    fn any_object_of_rule_fields_passes_or_names_the_field(
        key in "[a-z0-9_.-]{1,12}",
        fields in prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), value(), 0..6),
    ) {
        let body = serde_json::to_vec(&fields).unwrap();
        match parse(&key, &body) {
            Ok(rule) => match validate(&rule) {
                Ok(()) => {
                    prop_assert!(!rule.department.trim().is_empty());
                    prop_assert!(rule.weight.is_finite() && rule.weight > 0.0);
                }
                Err(RouterError::InvalidRule { field, problem }) => {
                    prop_assert!(FIELDS.contains(&field.as_str()), "{}", field);
                    prop_assert!(!problem.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            },
            Err(e) => prop_assert!(names_the_json_problem(&e, &key).is_ok(), "{:?}", names_the_json_problem(&e, &key)),
        }
    }

    #[test]
    fn a_rule_written_is_read_back_under_its_key(
        key in "[a-z0-9_-]{1,12}",
        // Each keyword starts with a visible character: a blank keyword is refused by `validate`.
        keywords in prop::collection::vec("[^\\s\\p{C}]\\PC{0,9}", 1..4),
        department in "[a-z_]{1,12}",
        weight in 0.01f32..10.0,
        enabled: bool,
        description in "\\PC{0,30}",
    ) {
        let written = Rule {
            id: "ignored: the key names the rule".into(),
            keywords: keywords.clone(),
            department: department.clone(),
            weight,
            enabled,
            description: description.clone(),
        };
        let read = parse(&key, &serde_json::to_vec(&written).unwrap()).unwrap();
        prop_assert_eq!(&read, &Rule { id: key, ..written });
        prop_assert!(validate(&read).is_ok());
    }
}
