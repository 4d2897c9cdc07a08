//! Property tests of PII masking: any text is masked without a panic, masking what was masked changes
//! nothing, and mobile numbers set in ordinary text are all replaced, one placeholder per distinct
//! number, with every other character kept.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use switchboard_text::pii::mask;

/// Text between values: Chinese, Latin letters outside hex (so no run reads as an IPv6 address), spaces
/// and punctuation, never a digit (which would make a number longer).
fn filler() -> impl Strategy<Value = String> {
    "[\u{4e00}-\u{9fa5}g-zG-Z ，。,.!?（）]{1,12}"
}

fn mobile() -> impl Strategy<Value = String> {
    "1[3-9][0-9]{9}"
}

proptest! {
    #[test]
    fn any_text_is_masked_and_masking_again_changes_nothing(text in "\\PC{0,200}") {
        let once = mask(&text);
        let twice = mask(&once.text);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.counts.is_empty(), "{:?} in {:?}", twice.counts, once.text);
    }

    #[test]
    fn digits_and_separators_are_masked_and_masking_again_changes_nothing(
        text in "[0-9 .:@a-fA-FxX+()-]{0,80}",
    ) {
        let once = mask(&text);
        let twice = mask(&once.text);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.counts.is_empty(), "{:?} in {:?}", twice.counts, once.text);
    }

    #[test]
    fn mobile_numbers_in_text_are_all_replaced(
        parts in prop::collection::vec((filler(), mobile()), 1..6),
        tail in filler(),
    ) {
        let text: String = parts.iter().map(|(f, m)| format!("{f}{m}")).collect::<String>() + &tail;
        let masked = mask(&text);
        let distinct: BTreeSet<_> = parts.iter().map(|(_, m)| m.clone()).collect();
        prop_assert_eq!(masked.counts.get("PHONE").copied(), Some(distinct.len() as u32), "{}", masked.text);
        // Everything but the numbers is kept, in order, each number its placeholder.
        let mut expected = String::new();
        let mut placeholders = HashMap::new();
        for (f, m) in &parts {
            let n = placeholders.len() + 1;
            let placeholder = placeholders.entry(m.clone()).or_insert_with(|| format!("<PHONE_{n}>"));
            expected.push_str(f);
            expected.push_str(placeholder);
        }
        expected.push_str(&tail);
        prop_assert_eq!(masked.text, expected);
    }
}
