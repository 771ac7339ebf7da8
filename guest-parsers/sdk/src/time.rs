//! Turning the timestamps AWS writes into UTC nanoseconds, without a clock,
//! a time zone database or allocation.

const NANOS_PER_SEC: i64 = 1_000_000_000;

pub use s3logd_rows::calendar::{civil_from_days, days_from_civil};

/// UTC nanoseconds of a civil date and time; `None` when a part is out of range.
pub fn unix_nanos(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
) -> Option<i64> {
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && min < 60
        && sec <= 60
        && nanos < 1_000_000_000;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(min) * 60
        + i64::from(sec);
    secs.checked_mul(NANOS_PER_SEC)?
        .checked_add(i64::from(nanos))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (a space may replace
/// the `T`). Without a zone the time is taken as UTC, which is what AWS means
/// when it leaves the zone out (NLB, CloudFront).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, min, sec) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let given = at - start;
        if given == 0 {
            return None;
        }
        for _ in given..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &b[at..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [_, _, b':', _, _] => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                [_, _, _, _] => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                [_, _] => (digits(rest, 0, 2)?, 0),
                _ => return None,
            };
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let local = unix_nanos(i64::from(year), month, day, hour, min, sec, nanos)?;
    local.checked_sub(offset_secs * NANOS_PER_SEC)
}

/// Parses a decimal number of seconds (`1418530010`, `0.000073`) into nanoseconds.
pub fn parse_seconds(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut nanos = 0i64;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(NANOS_PER_SEC)?
        .checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_variants() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601("2018-07-02T22:23:00.186641Z"),
            Some(1_530_570_180_186_641_000)
        );
        // NLB: no fraction, no zone, UTC.
        assert_eq!(
            parse_iso8601("2018-12-20T02:59:40"),
            Some(1_545_274_780_000_000_000)
        );
        assert_eq!(
            parse_iso8601("2023-06-20 15:32:10.123456789+02:00"),
            parse_iso8601("2023-06-20T13:32:10.123456789Z")
        );
        assert_eq!(
            parse_iso8601("2024-02-29T00:00:00Z"),
            Some(1_709_164_800 * NANOS_PER_SEC)
        );
        assert_eq!(parse_iso8601("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2018-07-02T22:23:00."), None);
        assert_eq!(parse_iso8601("2018-07-02T22:23:00Zjunk"), None);
        assert_eq!(parse_iso8601("not a time"), None);
    }

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(
            parse_seconds("1418530010"),
            Some(1_418_530_010 * NANOS_PER_SEC)
        );
        assert_eq!(parse_seconds("0.000073"), Some(73_000));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("1.2.3"), None);
    }
}
