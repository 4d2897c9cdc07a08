//! Timestamps written as text, as milliseconds since the Unix epoch. The one set of rules for every
//! timestamp Switchboard reads from outside (history exports, connectors' `sla_deadline` attribute):
//! - RFC 3339 (`2024-05-01T08:30:00+08:00`, `…Z`, fractions of a second allowed, truncated to ms);
//! - the SQL style `2024-05-01 08:30[:00]`, with or without an offset (`+08` as PostgreSQL writes it;
//!   read as UTC without one);
//! - a bare date `2024-05-01` (its midnight, UTC);
//! - Unix seconds or milliseconds: a number of 10^11 or more is milliseconds, below it seconds.
//!
//! Small enough that a date-time crate would cost more than it saves.

/// Numbers at or above this are milliseconds: as seconds they would be past the year 5000, while as
/// milliseconds anything since March 1973 is.
const MILLIS_FROM: i64 = 100_000_000_000;

/// Milliseconds since the epoch, or `None` when `value` is none of the accepted forms.
pub fn parse_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(n) = value.parse::<i64>() {
        return if n.abs() >= MILLIS_FROM {
            Some(n)
        } else {
            n.checked_mul(1000)
        };
    }
    parse_date_time(value)
}

fn parse_date_time(s: &str) -> Option<i64> {
    let mut p = Cursor(s.as_bytes());
    let year = p.digits(4)?;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    let mut offset_minutes = 0;
    if let Some(&sep) = p.0.first() {
        if !matches!(sep, b'T' | b't' | b' ') {
            return None;
        }
        p.0 = &p.0[1..];
        hour = p.digits(2)?;
        p.expect(b':')?;
        minute = p.digits(2)?;
        if p.0.first() == Some(&b':') {
            p.0 = &p.0[1..];
            // 60 is a leap second; counting it as the next minute's first is close enough for tickets.
            second = p.digits(2)?;
            if p.0.first() == Some(&b'.') {
                p.0 = &p.0[1..];
                millis = p.fraction_millis()?;
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        offset_minutes = p.offset()?;
    }
    if !p.0.is_empty() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + hour) * 60 + minute - offset_minutes) * 60 + second;
    Some(seconds * 1000 + millis)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, rest) = self.0.split_at_checked(n)?;
        let mut value = 0;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.0 = rest;
        Some(value)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        (first == byte).then(|| self.0 = rest)
    }

    /// Fractional seconds of any precision, truncated to milliseconds.
    fn fraction_millis(&mut self) -> Option<i64> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        let mut millis = 0;
        for i in 0..3 {
            let digit = self.0.get(i).filter(|_| i < len).map_or(0, |b| b - b'0');
            millis = millis * 10 + i64::from(digit);
        }
        self.0 = &self.0[len..];
        Some(millis)
    }

    /// `Z`, `+HH:MM`, `-HHMM`, `+HH` (as PostgreSQL writes whole-hour offsets) or nothing (UTC), as
    /// minutes east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let Some((&sign, rest)) = self.0.split_first() else {
            return Some(0);
        };
        let sign = match sign {
            b'Z' | b'z' => {
                self.0 = rest;
                return Some(0);
            }
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.0 = rest;
        let hours = self.digits(2)?;
        let minutes = match self.0.first() {
            None => 0,
            Some(b':') => {
                self.0 = &self.0[1..];
                self.digits(2)?
            }
            Some(_) => self.digits(2)?,
        };
        (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
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

/// Milliseconds since the epoch as RFC 3339 in UTC to the second, `2026-12-01T08:30:00Z`: what
/// [`parse_ms`] reads back (Howard Hinnant's `civil_from_days`).
pub fn format_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_in_utc_is_read_back_to_the_second() {
        for ms in [
            0,
            86_400_000,
            951_782_400_000,
            T,
            1_796_113_800_000,
            4_107_542_399_000,
        ] {
            assert_eq!(parse_ms(&format_utc(ms)), Some(ms), "{}", format_utc(ms));
        }
        assert_eq!(format_utc(1_796_113_800_999), "2026-12-01T08:30:00Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(-1000), "1969-12-31T23:59:59Z");
    }

    // 2024-05-01T00:30:00Z
    const T: i64 = 1_714_523_400_000;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_ms("2024-05-01T00:30:00Z"), Some(T));
        assert_eq!(parse_ms("2024-05-01T08:30:00+08:00"), Some(T));
        assert_eq!(parse_ms("2024-04-30T19:30:00-0500"), Some(T));
        assert_eq!(parse_ms("2024-05-01 08:30:00.000+08"), Some(T));
        assert_eq!(parse_ms("2024-05-01 00:30:00"), Some(T));
        assert_eq!(parse_ms("2024-05-01 00:30"), Some(T));
        assert_eq!(parse_ms("2024-05-01T00:30:00.250Z"), Some(T + 250));
        assert_eq!(parse_ms("2024-05-01T00:30:00.123456789Z"), Some(T + 123));
        assert_eq!(parse_ms("2024-05-01T00:30:00.5Z"), Some(T + 500));
        assert_eq!(parse_ms("2024-05-01"), Some(T - 30 * 60 * 1000));
        assert_eq!(parse_ms(" 1714523400 "), Some(T));
        assert_eq!(parse_ms("1714523400000"), Some(T));
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_ms("2000-02-29 12:00:00"), Some(951_825_600_000));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T24:00:00Z",
            "2024-05-01T00:30:00+08:",
            "2024-05-01T00:30:00+8",
            "2024-05-01X00:30:00",
            "2024-05-01T00:30:00Z trailing",
            "2024-5-1",
            "2024-05-01T00:30:00.Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?}");
        }
    }
}
