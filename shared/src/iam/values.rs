//! Typed condition values: numbers, dates, booleans, IP ranges and base64 binaries, parsed the
//! way the IAM condition operators read them.

use std::net::IpAddr;

/// A point in time as milliseconds since the Unix epoch (UTC).
pub type EpochMillis = i64;

/// Parses an IAM numeric value ("integer or decimal").
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a date the Date operators accept: one of the W3C profiles of ISO 8601
/// (`YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s]]TZD`, TZD `Z` or `±hh:mm`; a missing TZD is read as
/// UTC) or epoch seconds (an all-digit value, optionally with a fraction).
pub fn parse_date(s: &str) -> Option<EpochMillis> {
    let t = s.trim();
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let epoch_like = unsigned.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().filter(|&b| b == b'.').count() <= 1;
    if epoch_like {
        let secs: f64 = t.parse().ok()?;
        if !secs.is_finite() || secs.abs() > 1.0e14 {
            return None;
        }
        return Some((secs * 1000.0).round() as i64);
    }
    parse_iso8601(t)
}

fn digits(s: &str, n: usize) -> Option<(i64, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, s.get(n..)?))
}

fn expect(s: &str, c: char) -> Option<&str> {
    s.strip_prefix(c)
}

fn parse_iso8601(s: &str) -> Option<EpochMillis> {
    let (year, rest) = digits(s, 4)?;
    let (month, rest) = if rest.is_empty() {
        (1, rest)
    } else {
        digits(expect(rest, '-')?, 2)?
    };
    let (day, rest) = if rest.is_empty() {
        (1, rest)
    } else {
        digits(expect(rest, '-')?, 2)?
    };
    // The calendar arithmetic is the `time` crate's (proleptic Gregorian, leap years).
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let mut millis = date.midnight().assume_utc().unix_timestamp() * 1000;
    if rest.is_empty() {
        return Some(millis);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix('t'))?;
    let (hour, rest) = digits(rest, 2)?;
    let (minute, mut rest) = digits(expect(rest, ':')?, 2)?;
    let mut second = 0;
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix(':') {
        let (sec, r) = digits(r, 2)?;
        second = sec;
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let frac = r.get(..n)?;
            let ms_digits: String = frac.chars().chain("000".chars()).take(3).collect();
            frac_ms = ms_digits.parse().ok()?;
            rest = r.get(n..)?;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (oh, r) = digits(rest.get(1..)?, 2)?;
            let r = r.strip_prefix(':').unwrap_or(r);
            let (om, r) = digits(r, 2)?;
            if !r.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    millis += ((hour * 60 + minute - offset_min) * 60 + second) * 1000 + frac_ms;
    Some(millis)
}

/// Formats epoch milliseconds as ISO 8601 UTC (`2024-08-02T09:08:56Z`); `None` outside the
/// years 0000 to 9999 (no such time parses from a record).
pub fn format_date(ms: EpochMillis) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    // Every finding's context formats its event time: digits go straight into the buffer.
    let mut text = String::with_capacity(20);
    let mut digits = |n: u32, width: u32, then: char| {
        for place in (0..width).rev() {
            // A remainder of 10 fits in a u8.
            text.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
        text.push(then);
    };
    digits(u32::try_from(t.year()).ok()?, 4, '-');
    digits(u32::from(u8::from(t.month())), 2, '-');
    digits(u32::from(t.day()), 2, 'T');
    digits(u32::from(t.hour()), 2, ':');
    digits(u32::from(t.minute()), 2, ':');
    digits(u32::from(t.second()), 2, 'Z');
    Some(text)
}

/// Parses a boolean condition value (`true` / `false`, any letter case).
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:DB8::/64`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Cidr> {
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?))
            }
            None => (t.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Cidr { addr, prefix })
    }

    /// Does the network contain `ip`? Families never mix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parses an IP address as a request-context value (a CIDR with a host prefix is accepted).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim();
    t.parse().ok().or_else(|| Cidr::parse(t).map(|c| c.addr))
}

/// Decodes standard base64 (with or without padding, surrounding whitespace trimmed); `None`
/// when malformed. Non-zero bits after the last whole byte are ignored, as a lenient decoder
/// does.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(s.trim()).ok()
}

/// The `"key": "value"` pairs of a tag object; every non-string value is reported (with
/// `code`) and makes the result `None`.
pub(crate) fn tag_pairs<'j>(
    members: &'j [crate::json::Member<'j>],
    code: crate::diag::Code,
    r: &mut crate::diag::Reporter<'_, 'j>,
) -> Option<Vec<(&'j str, &'j str)>> {
    let mut pairs = Vec::with_capacity(members.len());
    let mut ok = true;
    for m in members {
        match m.value.as_str() {
            Some(v) => pairs.push((m.key, v)),
            None => {
                let mark = r.path.key(m.key);
                r.error(
                    code,
                    m.value.span,
                    format!("tag `{}` must have a string value", m.key),
                );
                r.path.truncate(mark);
                ok = false;
            }
        }
    }
    ok.then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number(" -2.5 "), Some(-2.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("ten"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
    }

    #[test]
    fn w3c_iso8601_profiles_and_epoch() {
        // IAM condition operators, Date: "W3C implementations of the ISO 8601 date formats" or
        // epoch (UNIX) time.
        let t = 1_577_836_801_000; // 2020-01-01T00:00:01Z
        assert_eq!(parse_date("2020-01-01T00:00:01Z"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00:01"), Some(t));
        assert_eq!(parse_date("2020-01-01T01:00:01+01:00"), Some(t));
        assert_eq!(parse_date("2019-12-31T23:00:01-01:00"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00:01.000Z"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00:01.5Z"), Some(t + 500));
        assert_eq!(parse_date("2020-01-01T00:00Z"), Some(t - 1000));
        assert_eq!(parse_date("2020-01-01"), Some(t - 1000));
        assert_eq!(parse_date("1577836801"), Some(t));
        assert_eq!(parse_date("1577836801.25"), Some(t + 250));
        assert_eq!(parse_date("2020-02-30"), None);
        assert_eq!(parse_date("2020-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2020-01-01T25:00:00Z"), None);
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(format_date(t).as_deref(), Some("2020-01-01T00:00:01Z"));
        assert_eq!(
            format_date(1_709_164_800_000).as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
        assert_eq!(format_date(i64::MAX), None);
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn cidrs_v4_and_v6() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        let single = Cidr::parse("192.0.2.7").unwrap();
        assert_eq!(single.prefix, 32, "a bare address uses the default /32");
        assert!(single.contains("192.0.2.7".parse().unwrap()));
        assert!(!single.contains("192.0.2.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678:abcd::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(
            !v6.contains("203.0.113.1".parse().unwrap()),
            "families never mix"
        );
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "203.0.113.0/33",
            "300.0.0.1",
            "10.0.0.0/",
            "10.0.0.0/x",
            "::/129",
            "",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(
            decode_base64("QmluYXJ5VmFsdWVJbkJhc2U2NA==").unwrap(),
            b"BinaryValueInBase64"
        );
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("YWI").unwrap(), b"ab");
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("YW!j"), None);
        assert_eq!(decode_base64("YQ==="), None);
        assert_eq!(decode_base64(" YWJj\n").unwrap(), b"abc");
        // Trailing bits beyond the last byte are ignored ("YWJ" and "YWK" both end in "ab").
        assert_eq!(decode_base64("YWK").unwrap(), b"ab");
    }
}
