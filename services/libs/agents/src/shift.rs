//! When an agent works: a fixed UTC offset and weekly hours, read from the words people write
//! (`+08:00`, `mon-fri 09:00-18:00; sat 10:00-14:00`). A fixed offset, not a zone name: the service
//! carries no time-zone database, and a contact centre's shifts are planned in local wall time.

use serde::{Deserialize, Serialize};

use crate::error::AgentError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// `UTC` or an offset from it, `+08:00`, `-05:30`.
    pub time_zone: String,
    /// Weekly hours in that time zone: windows `DAYS HH:MM-HH:MM` separated by `;`, days `mon-fri`,
    /// `sat,sun` or `mon`; an end before the start runs past midnight; `24:00` is the end of the day.
    pub hours: String,
}

impl Default for Shift {
    /// Always on shift: an agent who does not say is there whenever they are online.
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            hours: "mon-sun 00:00-24:00".into(),
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: i64 = 24 * 60;

/// One window: the days it starts on (bit 0 Monday), and its start and end minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    days: u8,
    start: i64,
    end: i64,
}

impl Shift {
    pub fn validate(&self) -> Result<(), AgentError> {
        offset_minutes(&self.time_zone)?;
        windows(&self.hours)?;
        Ok(())
    }

    /// The time zone's offset from UTC in minutes (`+08:00`: 480).
    pub fn utc_offset_minutes(&self) -> Result<i64, AgentError> {
        offset_minutes(&self.time_zone)
    }

    /// Whether `at_ms` (ms since the Unix epoch) falls in one of the windows. An invalid shift is
    /// never on: stored agents are validated, so this only guards against a hand-edited record.
    pub fn on_shift(&self, at_ms: i64) -> bool {
        let (Ok(offset), Ok(windows)) = (offset_minutes(&self.time_zone), windows(&self.hours))
        else {
            return false;
        };
        let local = at_ms.div_euclid(60_000) + offset;
        let day_number = local.div_euclid(MINUTES_PER_DAY);
        let minute = local.rem_euclid(MINUTES_PER_DAY);
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
        let weekday = (day_number + 3).rem_euclid(7) as u8;
        let yesterday = (weekday + 6) % 7;
        windows.iter().any(|w| {
            let starts = |day: u8| w.days & (1 << day) != 0;
            if w.start < w.end {
                starts(weekday) && (w.start..w.end).contains(&minute)
            } else {
                (starts(weekday) && minute >= w.start) || (starts(yesterday) && minute < w.end)
            }
        })
    }
}

fn offset_minutes(zone: &str) -> Result<i64, AgentError> {
    let bad = || {
        AgentError::new(
            "shift.time_zone",
            format!("{zone:?} is not UTC or an offset like +08:00"),
        )
    };
    let zone = zone.trim();
    let rest = zone.strip_prefix("UTC").unwrap_or(zone);
    if rest.is_empty() {
        return Ok(0);
    }
    let (sign, hhmm) = match rest.split_at_checked(1) {
        Some(("+", r)) => (1, r),
        Some(("-", r)) => (-1, r),
        _ => return Err(bad()),
    };
    let (h, m) = hhmm.split_once(':').unwrap_or((hhmm, "0"));
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

fn windows(hours: &str) -> Result<Vec<Window>, AgentError> {
    let mut out = Vec::new();
    for part in hours.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| AgentError::new("shift.hours", format!("{part:?}: {why}"));
        let (days, times) = part
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected DAYS HH:MM-HH:MM"))?;
        let (start, end) = times
            .trim()
            .split_once('-')
            .ok_or_else(|| bad("expected HH:MM-HH:MM"))?;
        let start = minute_of_day(start).ok_or_else(|| bad("a start is HH:MM"))?;
        let end = minute_of_day(end).ok_or_else(|| bad("an end is HH:MM"))?;
        if start == end || start == MINUTES_PER_DAY {
            return Err(bad("a window must not be empty"));
        }
        out.push(Window {
            days: day_set(days).ok_or_else(|| bad("days are mon..sun, as mon-fri or sat,sun"))?,
            start,
            end,
        });
    }
    if out.is_empty() {
        return Err(AgentError::new("shift.hours", "name at least one window"));
    }
    Ok(out)
}

fn minute_of_day(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h * 60 + m;
    (m < 60 && minute <= MINUTES_PER_DAY).then_some(minute)
}

fn day_set(s: &str) -> Option<u8> {
    let index = |d: &str| DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim()));
    let mut set = 0u8;
    for item in s.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                let mut d = from;
                loop {
                    set |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => set |= 1 << index(item)?,
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07 was a Monday; `at(day, h, m)` is that week's `day` (0 Monday) at h:m UTC.
    fn at(day: i64, h: i64, m: i64) -> i64 {
        const MONDAY_MS: i64 = 1_796_601_600_000;
        MONDAY_MS + ((day * 24 + h) * 60 + m) * 60_000
    }

    fn shift(zone: &str, hours: &str) -> Shift {
        let s = Shift {
            time_zone: zone.into(),
            hours: hours.into(),
        };
        s.validate().expect("valid");
        s
    }

    #[test]
    fn weekday_hours_hold_in_the_agents_own_offset() {
        let s = shift("+08:00", "mon-fri 09:00-18:00");
        // 01:00 UTC is 09:00 in +08:00; 10:00 UTC is 18:00, the end.
        assert!(s.on_shift(at(0, 1, 0)));
        assert!(s.on_shift(at(0, 9, 59)));
        assert!(!s.on_shift(at(0, 10, 0)));
        assert!(!s.on_shift(at(0, 0, 59)));
        // Saturday 09:00 local is not a working day.
        assert!(!s.on_shift(at(5, 1, 0)));
    }

    #[test]
    fn a_night_window_runs_past_midnight_into_the_next_day() {
        let s = shift("UTC", "fri 22:00-06:00; sun 10:00-24:00");
        assert!(s.on_shift(at(4, 23, 0)));
        assert!(s.on_shift(at(5, 5, 59)));
        assert!(!s.on_shift(at(5, 6, 0)));
        assert!(!s.on_shift(at(3, 23, 0)));
        assert!(s.on_shift(at(6, 23, 59)));
        // A window wrapping the week: Sunday into Monday.
        assert!(shift("-05:30", "sun-mon 20:00-02:00").on_shift(at(0, 6, 0)));
    }

    #[test]
    fn bad_shifts_name_their_field() {
        for (zone, hours, field) in [
            ("CET", "mon 09:00-10:00", "shift.time_zone"),
            ("+25:00", "mon 09:00-10:00", "shift.time_zone"),
            ("UTC", "monday 09:00-10:00", "shift.hours"),
            ("UTC", "mon 9-10", "shift.hours"),
            ("UTC", "mon 10:00-10:00", "shift.hours"),
            ("UTC", "", "shift.hours"),
        ] {
            let err = Shift {
                time_zone: zone.into(),
                hours: hours.into(),
            }
            .validate()
            .expect_err(hours);
            assert_eq!(err.field, field, "{zone} {hours}: {err}");
        }
    }
}
