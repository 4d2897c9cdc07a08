//! Dynamic priority: what time and the rest of the pipeline add to the priority the ticket's tone gave it.
//! Each raise appends its reason to `priority_reasons`, so the board shows why a calm ticket is urgent.
//!
//! Public so a later stage (the router, the board) can apply them again with a later `now`: waiting only
//! grows and deadlines only draw nearer.

use switchboard_proto::{Assessment, Priority, Ticket};

use crate::SentimentConfig;
use crate::incident::Incident;

/// The attribute connectors set to the ticket's SLA deadline: RFC 3339 or Unix milliseconds.
pub const SLA_DEADLINE_ATTRIBUTE: &str = "sla_deadline";

const MINUTE_MS: i64 = 60_000;
/// How a waiting-time raise's reason begins, which is how a later stage knows it was applied.
const WAITED: &str = "waited";

/// Applies the SLA deadline (a floor: HIGH when near, URGENT once passed), then waiting time (one level up
/// once the ticket has waited [`SentimentConfig::wait_raise_minutes`]), at `now_ms`.
pub fn raise_for_time(a: &mut Assessment, ticket: &Ticket, config: &SentimentConfig, now_ms: i64) {
    if let Some(raw) = ticket.attributes.get(SLA_DEADLINE_ATTRIBUTE) {
        match parse_instant_ms(raw) {
            Some(deadline) => raise_for_sla(a, deadline, config.sla_warning_minutes, now_ms),
            None => tracing::warn!(
                ticket = %ticket.id,
                value = %raw,
                "sla_deadline is neither RFC 3339 nor Unix milliseconds; ignored"
            ),
        }
    }
    // 0: the connector did not say when the ticket arrived. Once per ticket: a later stage applying this
    // again must not raise it a second time for the same wait.
    let raised_before = a.priority_reasons.iter().any(|r| r.starts_with(WAITED));
    if ticket.received_at_ms > 0 && !raised_before {
        let waited = (now_ms - ticket.received_at_ms).div_euclid(MINUTE_MS);
        let limit = config.wait_raise_minutes;
        if waited >= i64::from(limit) {
            let to = up_one(a.priority());
            raise(a, to, format!("{WAITED} {waited} min ≥ {limit}"));
        }
    }
}

fn raise_for_sla(a: &mut Assessment, deadline_ms: i64, warning: u32, now_ms: i64) {
    let left = deadline_ms - now_ms;
    if left <= 0 {
        let ago = (-left).div_euclid(MINUTE_MS);
        raise(
            a,
            Priority::Urgent,
            format!("SLA deadline passed {ago} min ago"),
        );
    } else {
        // Rounded up: 30 s left is "1 min", never "0 min" before the deadline.
        let minutes = (left + MINUTE_MS - 1).div_euclid(MINUTE_MS);
        if minutes <= i64::from(warning) {
            raise(
                a,
                Priority::High,
                format!("SLA deadline in {minutes} min ≤ {warning}"),
            );
        }
    }
}

/// One level up for an incident: many customers hitting the same problem at once is bigger than any one
/// ticket's tone says.
pub fn raise_for_incident(a: &mut Assessment, incident: &Incident) {
    let to = up_one(a.priority());
    raise(a, to, incident.reason());
}

/// Sets the priority to `to` when that is higher, and says why; a raise that changes nothing says nothing.
fn raise(a: &mut Assessment, to: Priority, reason: String) {
    if rank(to) > rank(a.priority()) {
        a.set_priority(to);
        a.priority_reasons.push(reason);
    }
}

/// Higher is more pressing. Unspecified counts as normal: a stage that set nothing asked for nothing special.
fn rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal | Priority::Unspecified => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn up_one(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Normal,
        Priority::Normal | Priority::Unspecified => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// Unix milliseconds, or an RFC 3339 timestamp (`2026-11-21T15:04:05Z`, `…+08:00`, fractions of a second
/// allowed) as Unix milliseconds.
pub fn parse_instant_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |from: usize, to: usize| digits(s, from, to);
    let separators = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !separators {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // 60: a leap second, read as the next second's start.
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (digits(rest, 1, 3)?, digits(rest, 4, 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// The number written in `s[from..to]`, digits only (no sign, no spaces).
fn digits(s: &str, from: usize, to: usize) -> Option<i64> {
    let part = &s[from..to];
    if part.bytes().all(|c| c.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// 2026-11-21T12:00:00Z.
    const NOW: i64 = 1_795_262_400_000;

    fn assessed(p: Priority) -> Assessment {
        let mut a = Assessment::default();
        a.set_priority(p);
        a
    }

    fn ticket(received_at_ms: i64, deadline: Option<&str>) -> Ticket {
        Ticket {
            id: "t-1".into(),
            received_at_ms,
            attributes: deadline
                .map(|d| HashMap::from([(SLA_DEADLINE_ATTRIBUTE.to_owned(), d.to_owned())]))
                .unwrap_or_default(),
            ..Ticket::default()
        }
    }

    fn run(p: Priority, t: &Ticket) -> Assessment {
        let mut a = assessed(p);
        raise_for_time(&mut a, t, &SentimentConfig::default(), NOW);
        a
    }

    #[test]
    fn parses_rfc3339_and_unix_millis() {
        assert_eq!(parse_instant_ms("2026-11-21T12:00:00Z"), Some(NOW));
        assert_eq!(parse_instant_ms("2026-11-21T20:00:00+08:00"), Some(NOW));
        assert_eq!(
            parse_instant_ms("2026-11-21 11:00:00.250-01:00"),
            Some(NOW + 250)
        );
        assert_eq!(parse_instant_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_instant_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(parse_instant_ms(&NOW.to_string()), Some(NOW));
        for bad in [
            "tomorrow",
            "2026-02-30T00:00:00Z",
            "2026-11-21T12:00:00",
            "2026-11-21T25:00:00Z",
        ] {
            assert_eq!(parse_instant_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn waiting_raises_one_level_and_says_how_long() {
        let a = run(Priority::Normal, &ticket(NOW - 75 * MINUTE_MS, None));
        assert_eq!(a.priority(), Priority::High);
        assert_eq!(a.priority_reasons, ["waited 75 min ≥ 60"]);
        let fresh = run(Priority::Low, &ticket(NOW - 59 * MINUTE_MS, None));
        assert_eq!(fresh.priority(), Priority::Low);
        assert!(fresh.priority_reasons.is_empty());
        // Unknown receipt time: no raise.
        assert_eq!(
            run(Priority::Low, &ticket(0, None)).priority(),
            Priority::Low
        );
    }

    #[test]
    fn a_near_or_passed_sla_deadline_sets_a_floor() {
        let near = run(Priority::Low, &ticket(NOW, Some("2026-11-21T12:30:00Z")));
        assert_eq!(near.priority(), Priority::High);
        assert_eq!(near.priority_reasons, ["SLA deadline in 30 min ≤ 120"]);
        let passed = run(
            Priority::Normal,
            &ticket(NOW, Some(&(NOW - 10 * MINUTE_MS).to_string())),
        );
        assert_eq!(passed.priority(), Priority::Urgent);
        assert_eq!(passed.priority_reasons, ["SLA deadline passed 10 min ago"]);
        let far = run(Priority::Normal, &ticket(NOW, Some("2026-11-22T12:00:00Z")));
        assert_eq!(far.priority(), Priority::Normal);
        let unreadable = run(Priority::Normal, &ticket(NOW, Some("soon")));
        assert_eq!(unreadable.priority(), Priority::Normal);
    }

    #[test]
    fn sla_and_waiting_add_up_and_urgent_stays_urgent() {
        let both = run(
            Priority::Normal,
            &ticket(NOW - 90 * MINUTE_MS, Some("2026-11-21T12:20:00Z")),
        );
        assert_eq!(both.priority(), Priority::Urgent);
        assert_eq!(
            both.priority_reasons,
            ["SLA deadline in 20 min ≤ 120", "waited 90 min ≥ 60"]
        );
        let urgent = run(Priority::Urgent, &ticket(NOW - 90 * MINUTE_MS, None));
        assert!(urgent.priority_reasons.is_empty());
    }
}
