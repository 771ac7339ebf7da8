//! Unix seconds and the civil UTC times AWS writes: RFC 3339 in
//! notifications and on the command line, dates in key layouts.

use std::sync::LazyLock;

use regex::Regex;

pub const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day number: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

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
