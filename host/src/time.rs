//! Unix seconds and the civil UTC times AWS writes: RFC 3339 in
//! notifications and on the command line, dates in key layouts.

use std::sync::LazyLock;

use regex::Regex;
use s3logd_rows::calendar::{civil_from_days, days_from_civil};

pub const DAY: i64 = 86_400;

/// Unix seconds of a UTC civil time; `None` when a field is out of range.
pub fn unix_time(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 31 February would silently become 3 March.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// `2024-05-01T00:05:00Z`.
pub fn format_time(time: i64) -> String {
    let (year, month, day) = civil_from_days(time.div_euclid(DAY));
    let seconds = time.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// A time given on the command line: RFC 3339 (`2024-05-01T12:00:00Z`, an
/// offset, fractions, `T` or a space) or a date (`2024-05-01`, midnight UTC).
pub fn parse_time(text: &str) -> Result<i64, String> {
    static FORMAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$",
        )
        .expect("a valid regex")
    });
    let invalid =
        || format!("{text:?} is neither RFC 3339 (2024-05-01T12:00:00Z) nor a date (2024-05-01)");
    let captures = FORMAT.captures(text.trim()).ok_or_else(invalid)?;
    let number = |at: usize| -> u32 {
        captures
            .get(at)
            .map_or(0, |m| m.as_str().parse().expect("digits"))
    };
    let has_clock = captures.get(4).is_some();
    let has_zone = captures.get(7).is_some() || captures.get(8).is_some();
    if has_clock && !has_zone {
        return Err(format!("{text:?} has no time zone: add Z for UTC"));
    }
    let local = unix_time(
        i64::from(number(1)),
        number(2),
        number(3),
        number(4),
        number(5),
        number(6),
    )
    .ok_or_else(invalid)?;
    let offset = match captures.get(8).map(|m| m.as_str()) {
        Some(sign) => {
            let minutes = i64::from(number(9) * 60 + number(10));
            if sign == "-" { -minutes } else { minutes }
        }
        None => 0,
    };
    Ok(local - offset * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_time(text).unwrap()
    }

    #[test]
    fn civil_days_round_trip_across_leap_years_and_month_ends() {
        for day in -800_000..800_000 {
            let (year, month, date) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, date), day);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 29) + 1),
            (2024, 3, 1)
        );
        assert!(unix_time(2023, 2, 29, 0, 0, 0).is_none());
        assert!(unix_time(2024, 4, 31, 0, 0, 0).is_none());
    }

    #[test]
    fn command_line_times_are_rfc_3339_or_dates_in_utc() {
        assert_eq!(at("2024-05-01"), 1_714_521_600);
        assert_eq!(at("2024-05-01T00:00:00Z"), 1_714_521_600);
        assert_eq!(at("2024-05-01T02:00:00+02:00"), 1_714_521_600);
        assert_eq!(at("2024-04-30T19:00:00.250-05:00"), 1_714_521_600);
        assert_eq!(at("2024-05-01 00:05Z"), 1_714_521_900);
        assert!(
            parse_time("2024-05-01T00:00:00")
                .unwrap_err()
                .contains("zone")
        );
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_time(1_714_521_900), "2024-05-01T00:05:00Z");
    }
}
