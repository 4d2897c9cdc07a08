//! `switchboard deadletter list|replay`: what the roles gave up on, and sending it back once the
//! cause is fixed (see [`switchboard_runtime::deadletters`]).

use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_bus::Bus;
use switchboard_runtime::Subjects;
use switchboard_runtime::deadletters::{self, Replayed, Selection, Stored};
use switchboard_text::timestamp;

/// Reads `--since`: a time before now (`90s`, `30m`, `2h`, `7d`) or a timestamp as history imports
/// take it (`2026-12-01`, `2026-12-01T08:30:00Z`, `2026-12-01 16:30+08:00`), into milliseconds since
/// the epoch.
pub fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    let unit_ms = match text.chars().last() {
        Some('s') => Some(1_000),
        Some('m') => Some(60_000),
        Some('h') => Some(3_600_000),
        Some('d') => Some(86_400_000),
        _ => None,
    };
    if let Some(unit_ms) = unit_ms
        && let Ok(count) = text[..text.len() - 1].parse::<i64>()
    {
        return Ok(now_ms - count.saturating_mul(unit_ms));
    }
    timestamp::parse_ms(text).with_context(|| {
        format!(
            "--since {text:?} is neither a time ago (90s, 30m, 2h, 7d) nor a date \
             (2026-12-01, 2026-12-01T08:30:00Z)"
        )
    })
}

/// One line per letter: key, when, role, deliveries, subject and the error's first line.
pub fn render(letters: &[Stored]) -> String {
    if letters.is_empty() {
        return "no dead letters".into();
    }
    let mut out = String::new();
    for s in letters {
        let l = &s.letter;
        let error = l.error.lines().next().unwrap_or_default();
        out.push_str(&format!(
            "{}  {}  {}  {} deliveries  {}  {error}\n",
            s.key,
            timestamp::format_utc(l.at_ms),
            l.role,
            l.deliveries,
            l.subject
        ));
    }
    out.push_str(&format!("{} dead letters", letters.len()));
    out
}

/// Replays every letter `selection` picks and says how it went; a letter that failed to go back is
/// named and the others are still replayed.
pub async fn replay_all(
    bus: &Arc<dyn Bus>,
    subjects: &Subjects,
    selection: &Selection,
) -> anyhow::Result<String> {
    let letters = deadletters::list(bus.as_ref(), selection).await?;
    let (mut failed, mut failed_again) = (Vec::new(), 0);
    for stored in &letters {
        match deadletters::replay(bus.as_ref(), subjects, stored).await {
            Ok(Replayed::Removed) => {}
            Ok(Replayed::FailedAgain) => failed_again += 1,
            Err(e) => failed.push(format!(
                "  {}: {}",
                stored.key,
                switchboard_runtime::error_chain(&e)
            )),
        }
    }
    let replayed = letters.len() - failed.len();
    let again = if failed_again > 0 {
        format!(" ({failed_again} already failed again and are listed again)")
    } else {
        String::new()
    };
    if failed.is_empty() {
        Ok(format!("replayed {replayed} dead letters{again}"))
    } else {
        bail!(
            "replayed {replayed} of {} dead letters{again}; these were not:\n{}",
            letters.len(),
            failed.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_ago_and_utc_dates_and_names_what_it_cannot_read() {
        let now = 1_764_578_000_000;
        assert_eq!(parse_since("90s", now).unwrap(), now - 90_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(
            parse_since("2026-12-01T08:30:00Z", now).unwrap(),
            1_796_113_800_000
        );
        for bad in ["yesterday", "2026-13-01", "2026-12-01T25:00", "5w", "h"] {
            let error = format!("{:#}", parse_since(bad, now).unwrap_err());
            assert!(
                error.contains(bad) && error.contains("a time ago"),
                "{error}"
            );
        }
    }
}
