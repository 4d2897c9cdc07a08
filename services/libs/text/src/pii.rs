//! Personal-data masking, applied before ticket text leaves intake: whatever reads the bus (later stages,
//! the LLM provider, the knowledge base, operators reading dead letters) sees typed placeholders such as
//! `<PHONE_1>` instead of the values. Placeholders keep the text useful: the parser still sees that a phone
//! number was given, and the same value always gets the same placeholder.
//!
//! Detectors run strongest first and a value claimed by one is invisible to the rest, so the digits of an
//! ID number or a card never also come out as a phone. Digit patterns only match whole digit runs: a phone
//! number glued to more digits is some other number (an order, a tracking code) and is left alone.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    IdCard,
    BankCard,
    Phone,
    Ip,
}

impl PiiKind {
    /// The placeholder stem, also the key of `Ticket.masked`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::IdCard => "ID_CARD",
            Self::BankCard => "BANK_CARD",
            Self::Phone => "PHONE",
            Self::Ip => "IP",
        }
    }
}

/// Masked text and how many distinct values of each kind it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    pub counts: BTreeMap<&'static str, u32>,
}

/// Masks one text on its own.
pub fn mask(text: &str) -> Masked {
    let mut masker = Masker::default();
    let text = masker.mask(text);
    Masked {
        text,
        counts: masker.counts(),
    }
}

/// Masks several texts of one ticket (its text and attribute values) with one numbering, so a phone number
/// quoted in both becomes the same placeholder in both.
#[derive(Debug, Default)]
pub struct Masker {
    /// (kind, canonical value) -> placeholder; canonical so `138-1234-5678` and `13812345678` are one value.
    placeholders: HashMap<(PiiKind, String), String>,
    assigned: BTreeMap<PiiKind, u32>,
}

impl Masker {
    pub fn mask(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for hit in find(text) {
            out.push_str(&text[at..hit.span.start]);
            out.push_str(self.placeholder(hit.kind, hit.value));
            at = hit.span.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Distinct values masked so far, by kind name.
    pub fn counts(&self) -> BTreeMap<&'static str, u32> {
        self.assigned
            .iter()
            .map(|(kind, n)| (kind.name(), *n))
            .collect()
    }

    fn placeholder(&mut self, kind: PiiKind, value: String) -> &str {
        let assigned = &mut self.assigned;
        self.placeholders.entry((kind, value)).or_insert_with(|| {
            let n = assigned.entry(kind).or_default();
            *n += 1;
            format!("<{}_{n}>", kind.name())
        })
    }
}

#[derive(Debug)]
struct Hit {
    span: Range<usize>,
    kind: PiiKind,
    value: String,
}

/// One pattern and the check a match must also pass; `accept` returns the canonical value.
struct Detector {
    kind: PiiKind,
    pattern: &'static LazyLock<Regex>,
    accept: fn(text: &str, span: Range<usize>) -> Option<String>,
}

// Every pattern spells digits as [0-9]: regex's \d also matches full-width and other scripts' digits.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}",
    )
});
static ID_CARD: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]{17}[0-9Xx]"));
/// Contiguous, or in groups of four split by single spaces or dashes, as cards are printed.
static BANK_CARD: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?"));
/// A mobile number behind a country prefix. Its own detector, tried before the bare form, because the bare
/// form inside `+8613812345678` is glued to the prefix digits and rightly refused.
static MOBILE_PREFIXED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:\+|00)86[ -]?1[3-9][0-9](?:[ -]?[0-9]{4}){2}"));
static MOBILE: LazyLock<Regex> = LazyLock::new(|| regex(r"1[3-9][0-9](?:[ -]?[0-9]{4}){2}"));
/// An area code (0 and two or three digits) set off by a dash, a space or parentheses (ASCII or
/// full-width), then a 7- or 8-digit number, itself sometimes split by a dash or space after 3 or 4
/// digits. Without a separator, a 0-led run of digits is as likely an order number: left alone.
static LANDLINE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:0[0-9]{2,3}[- ]|[(（]0[0-9]{2,3}[)）] ?)(?:[0-9]{7,8}|[0-9]{3,4}[- ][0-9]{4})")
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"));
/// Runs of hex digits and colons with two colons or more: candidates, which only a parse as an IPv6
/// address (full, `::`-compressed, or with an IPv4 tail) accepts.
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f]*(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*",
    )
});

/// Strongest first: an e-mail may contain a phone number, an ID number contains phone-like runs, and an
/// 18-digit run that is not a valid ID may still be a card.
static DETECTORS: [Detector; 8] = [
    Detector {
        kind: PiiKind::Email,
        pattern: &EMAIL,
        accept: email,
    },
    Detector {
        kind: PiiKind::IdCard,
        pattern: &ID_CARD,
        accept: id_card,
    },
    Detector {
        kind: PiiKind::BankCard,
        pattern: &BANK_CARD,
        accept: bank_card,
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: &MOBILE_PREFIXED,
        accept: mobile,
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: &MOBILE,
        accept: mobile,
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: &LANDLINE,
        accept: landline,
    },
    Detector {
        kind: PiiKind::Ip,
        pattern: &IPV6,
        accept: ipv6,
    },
    Detector {
        kind: PiiKind::Ip,
        pattern: &IPV4,
        accept: ipv4,
    },
];

fn regex(pattern: &str) -> Regex {
    // The patterns are constants exercised by every test below; failing to compile one is a build bug.
    Regex::new(pattern).expect("PII pattern compiles")
}

/// Non-overlapping hits in text order.
fn find(text: &str) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for detector in &DETECTORS {
        for m in detector.pattern.find_iter(text) {
            let span = m.range();
            if hits
                .iter()
                .any(|h| h.span.start < span.end && span.start < h.span.end)
            {
                continue;
            }
            if let Some(value) = (detector.accept)(text, span.clone()) {
                hits.push(Hit {
                    span,
                    kind: detector.kind,
                    value,
                });
            }
        }
    }
    hits.sort_by_key(|h| h.span.start);
    hits
}

/// Whether the match stands alone rather than being part of a longer digit run. Matches start and end on
/// ASCII, so the neighbouring bytes are whole characters or the edges of multi-byte ones (never digits).
fn digits_bounded(text: &str, span: &Range<usize>) -> bool {
    let bytes = text.as_bytes();
    let before = span.start.checked_sub(1).and_then(|i| bytes.get(i));
    !before.is_some_and(u8::is_ascii_digit) && !bytes.get(span.end).is_some_and(u8::is_ascii_digit)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn email(text: &str, span: Range<usize>) -> Option<String> {
    Some(text[span].to_ascii_lowercase())
}

/// GB 11643-1999 citizen identity numbers: 6-digit region, 8-digit birth date, 3-digit sequence, and an
/// ISO 7064 MOD 11-2 check character. Both the check and the date must hold, so an arbitrary 18-digit
/// number (an order, a waybill) is masked only by a 1-in-11 chance that also lands on a real date.
fn id_card(text: &str, span: Range<usize>) -> Option<String> {
    if !digits_bounded(text, &span) {
        return None;
    }
    let id = text[span].to_ascii_uppercase();
    let d: Vec<u32> = id.bytes().take(17).map(|b| u32::from(b - b'0')).collect();
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = d.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    let check_ok = id.as_bytes().get(17) == CHECK.get((sum % 11) as usize);
    let number = |r: Range<usize>| d[r].iter().fold(0, |n, d| n * 10 + d);
    (check_ok && plausible_birth_date(number(6..10), number(10..12), number(12..14))).then_some(id)
}

fn plausible_birth_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=current_year()).contains(&year) && (1..=days_in_month).contains(&day)
}

/// Precise enough for "not born in the future": off by at most a day around New Year.
fn current_year() -> u32 {
    const SECONDS_PER_YEAR: u64 = 31_556_952; // the mean Gregorian year
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + u32::try_from(secs / SECONDS_PER_YEAR).unwrap_or(0)
}

/// Card numbers: 13 to 19 digits passing the Luhn check, issued by a card network (first digit 3 to 6,
/// or Mastercard's 2221-2720). The issuer check keeps order numbers and timestamps, which often start
/// with 1, 2 or 9, from being masked on the one-in-ten chance that they pass Luhn.
fn bank_card(text: &str, span: Range<usize>) -> Option<String> {
    if !digits_bounded(text, &span) {
        return None;
    }
    let number = digits(&text[span]);
    let issued = match number.as_bytes().first() {
        Some(b'3'..=b'6') => true,
        Some(b'2') => number
            .get(..4)
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| (2221..=2720).contains(&p)),
        _ => false,
    };
    ((13..=19).contains(&number.len()) && issued && luhn(&number)).then_some(number)
}

fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d > 4 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Mainland mobile numbers; the canonical value drops the country prefix and separators.
fn mobile(text: &str, span: Range<usize>) -> Option<String> {
    if !digits_bounded(text, &span) {
        return None;
    }
    let number = digits(&text[span]);
    number
        .get(number.len().saturating_sub(11)..)
        .map(str::to_owned)
}

/// The canonical value is the digits alone, so every spelling of one number gets one placeholder.
fn landline(text: &str, span: Range<usize>) -> Option<String> {
    digits_bounded(text, &span).then(|| digits(&text[span]))
}

/// An IPv6 address standing alone (not inside a longer word) with at least two groups and five hex
/// digits written: a clock time such as 10:30:00 does not parse, and `::` or a path like `a::b` is not
/// an address worth masking.
fn ipv6(text: &str, span: Range<usize>) -> Option<String> {
    let bytes = text.as_bytes();
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let before = span.start.checked_sub(1).and_then(|i| bytes.get(i));
    if word(before) || word(bytes.get(span.end)) {
        return None;
    }
    let candidate = &text[span];
    let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
    let hex_digits = candidate.bytes().filter(u8::is_ascii_hexdigit).count();
    let address: std::net::Ipv6Addr = candidate.parse().ok()?;
    (groups >= 2 && hex_digits >= 5).then(|| address.to_string())
}

/// Dotted quads with every octet at most 255, not part of a longer dotted run such as a version number.
fn ipv4(text: &str, span: Range<usize>) -> Option<String> {
    let bytes = text.as_bytes();
    let before = span.start.checked_sub(1).and_then(|i| bytes.get(i));
    let after = bytes.get(span.end);
    let longer_run = before.is_some_and(|b| b.is_ascii_digit() || *b == b'.')
        || after.is_some_and(u8::is_ascii_digit)
        || (after == Some(&b'.') && bytes.get(span.end + 1).is_some_and(u8::is_ascii_digit));
    let ip = &text[span];
    let octets_ok = ip.split('.').all(|o| o.parse::<u8>().is_ok());
    (!longer_run && octets_ok).then(|| ip.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        mask(text).text
    }

    fn counts(text: &str) -> Vec<(&'static str, u32)> {
        mask(text).counts.into_iter().collect()
    }

    #[test]
    fn mobile_numbers_in_every_common_spelling() {
        assert_eq!(masked("电话13812345678"), "电话<PHONE_1>");
        assert_eq!(masked("call 138-1234-5678 now"), "call <PHONE_1> now");
        assert_eq!(masked("call 138 1234 5678."), "call <PHONE_1>.");
        assert_eq!(masked("+86 13812345678"), "<PHONE_1>");
        assert_eq!(masked("+8613812345678"), "<PHONE_1>");
        assert_eq!(masked("0086-139-1234-5678"), "<PHONE_1>");
        // The hotline 10086 next to a number: the number is still masked, the hotline is not.
        assert_eq!(masked("10086 13812345678"), "10086 <PHONE_1>");
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder() {
        let m = mask("13812345678, 138-1234-5678, +86 13812345678 and 13987654321");
        assert_eq!(m.text, "<PHONE_1>, <PHONE_1>, <PHONE_1> and <PHONE_2>");
        assert_eq!(m.counts.get("PHONE"), Some(&2));
    }

    #[test]
    fn landlines() {
        assert_eq!(masked("办公室010-12345678转8"), "办公室<PHONE_1>转8");
        assert_eq!(masked("0755-1234567"), "<PHONE_1>");
        assert_eq!(
            masked("(010)12345678, （010）1234-5678, 010 12345678 and 010-1234 5678"),
            "<PHONE_1>, <PHONE_1>, <PHONE_1> and <PHONE_1>",
            "one number in four spellings"
        );
        assert_eq!(masked("(0755) 123-4567"), "<PHONE_1>");
    }

    #[test]
    fn emails_including_ones_that_contain_a_phone_number() {
        assert_eq!(
            masked("mail Zhang.San+x@Example.com.cn!"),
            "mail <EMAIL_1>!"
        );
        assert_eq!(masked("13812345678@139.com"), "<EMAIL_1>");
        assert_eq!(masked("a@b.co 和 A@B.CO"), "<EMAIL_1> 和 <EMAIL_1>");
        assert_eq!(
            counts("13812345678@139.com 13812345678"),
            [("EMAIL", 1), ("PHONE", 1)]
        );
    }

    #[test]
    fn id_card_numbers_with_checksum_and_birth_date() {
        assert_eq!(
            masked("身份证号11010519491231002X。"),
            "身份证号<ID_CARD_1>。"
        );
        assert_eq!(masked("id 11010519491231002x"), "id <ID_CARD_1>");
        assert_eq!(masked("110101199003078515"), "<ID_CARD_1>");
        // A leap day is a real birth date.
        assert_eq!(masked("310115200002294567"), "<ID_CARD_1>");
        // One digit off fails the checksum; nothing inside it is mistaken for a phone either.
        assert_eq!(masked("110101199003078516"), "110101199003078516");
        // Checksum right, but born in the year 1500.
        assert_eq!(masked("202403150001234567"), "202403150001234567");
    }

    #[test]
    fn bank_cards_pass_luhn() {
        assert_eq!(masked("卡号6222021234567890128"), "卡号<BANK_CARD_1>");
        assert_eq!(
            masked("card 4111 1111 1111 1111 please"),
            "card <BANK_CARD_1> please"
        );
        assert_eq!(
            masked("4111-1111-1111-1111 and 4111111111111111"),
            "<BANK_CARD_1> and <BANK_CARD_1>"
        );
        assert_eq!(masked("5300123456789011"), "<BANK_CARD_1>");
        // Luhn fails.
        assert_eq!(masked("4111111111111112"), "4111111111111112");
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(
            masked("from 192.168.1.20, again 192.168.1.20"),
            "from <IP_1>, again <IP_1>"
        );
        assert_eq!(masked("host 10.0.0.1."), "host <IP_1>.");
        assert_eq!(masked("999.1.1.1"), "999.1.1.1");
        assert_eq!(masked("version 1.2.3.4.5"), "version 1.2.3.4.5");
        assert_eq!(
            masked("from 2001:db8::8a2e:370:7334, then 2001:0db8:0000:0000:0000:8a2e:0370:7334."),
            "from <IP_1>, then <IP_1>.",
            "one address, compressed and in full"
        );
        assert_eq!(
            masked("fe80::1%eth0 and ::ffff:10.0.0.1"),
            "<IP_1>%eth0 and <IP_2>"
        );
    }

    #[test]
    fn kinds_are_numbered_separately_in_text_order() {
        let m = mask("a@b.cn 13812345678 c@d.cn 010-12345678 10.1.1.1");
        assert_eq!(m.text, "<EMAIL_1> <PHONE_1> <EMAIL_2> <PHONE_2> <IP_1>");
        assert_eq!(
            m.counts.into_iter().collect::<Vec<_>>(),
            [("EMAIL", 2), ("IP", 1), ("PHONE", 2)]
        );
    }

    #[test]
    fn a_masker_numbers_across_texts() {
        let mut masker = Masker::default();
        assert_eq!(masker.mask("call 13812345678"), "call <PHONE_1>");
        assert_eq!(
            masker.mask("13987654321 or 13812345678"),
            "<PHONE_2> or <PHONE_1>"
        );
        assert_eq!(masker.counts().get("PHONE"), Some(&2));
    }

    #[test]
    fn numbers_that_are_not_personal_data() {
        for text in [
            // Order numbers and tracking codes: digits glued to a phone-like run, or too long.
            "订单号202403151234567890123",
            "order 113812345678",
            "order 138123456789",
            "SF1234567890123",
            "1234567812345670", // passes Luhn, but no card network issues numbers starting with 1
            "2024031512345672", // a timestamp-like order number that passes Luhn
            // Random 18 digits.
            "123456789012345678",
            "987654321098765432",
            // Amounts and dates.
            "¥1,380.00 退款 13800元 金额 1380.50",
            "2024-03-15 10:30, 2024.03.15, 20240315",
            "3.14159",
            "第12345期",
            // Clock times and separator-less 0-led runs.
            "10:30:00 至 12:00",
            "订单 01012345678",
            "std::vec::Vec, a::b",
        ] {
            assert_eq!(masked(text), text);
            assert!(mask(text).counts.is_empty(), "{text}");
        }
    }

    #[test]
    fn text_without_personal_data_is_unchanged() {
        let text = "我的宽带从昨天开始断网，请尽快处理。My broadband is down.";
        assert_eq!(
            mask(text),
            Masked {
                text: text.to_owned(),
                counts: BTreeMap::new()
            }
        );
    }
}
