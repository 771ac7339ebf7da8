//! What AWS's own key layouts say about time, so that an import lists only
//! the prefixes its range covers and keeps only the objects whose key time
//! falls in it.
//!
//! - `…/YYYY/MM/DD/[HH/[MM/]]` folders (the `AWSLogs/` tree of ELB, VPC
//!   flow logs, CloudTrail and WAF; Firehose; partitioned S3 access logs),
//!   also Hive-style `year=YYYY/month=MM/day=DD/`: a folder whose children
//!   are years is a *date root*, and only its day prefixes in the range are
//!   listed.
//! - File names with a time: `_YYYYMMDDTHHMMZ_` (ELB, VPC, CloudTrail,
//!   WAF), CloudFront's `DISTID.YYYY-MM-DD-HH.`, S3 server access logs'
//!   `YYYY-MM-DD-HH-MM-SS-`. The last two sit side by side in one folder;
//!   their names sort by time, so a listing [`seek`]s past the parts of the
//!   folder outside the range.
//!
//! Times are Unix seconds, UTC. A range is half-open: `since` included,
//! `until` not, so that consecutive ranges never import an object twice.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

pub const DAY: i64 = 86_400;

/// `[since, until)` in Unix seconds; `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, time: i64) -> bool {
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }

    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

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

/// The time an object's key says it holds: from the file name when it has
/// one, else from its date folders.
pub fn key_time(key: &str) -> Option<i64> {
    let (folders, name) = key.rsplit_once('/').unwrap_or(("", key));
    name_time(name).or_else(|| folder_time(folders))
}

static AWS_NAME_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z(?:_|\.|$)").expect("a valid regex")
});
static CLOUDFRONT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9]+)\.(\d{4})-(\d{2})-(\d{2})-(\d{2})\.").expect("a valid regex")
});
/// S3 access logs at the start of the name; Firehose after the stream name.
static DASHED_NAME_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|-)(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-").expect("a valid regex")
});
static ACCESS_LOG_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-").expect("a valid regex")
});
static DATE_FOLDERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|/)(?:year=)?(\d{4})/(?:month=)?(\d{2})/(?:day=)?(\d{2})(?:/(?:hour=)?(\d{2})(?:/(\d{2}))?)?(?:/|$)",
    )
    .expect("a valid regex")
});

fn time_of(captures: &regex::Captures<'_>, first: usize) -> Option<i64> {
    let number = |at: usize| -> Option<u32> {
        captures
            .get(first + at)
            .map_or(Some(0), |m| m.as_str().parse().ok())
    };
    let year = captures.get(first)?.as_str().parse().ok()?;
    unix_time(
        year,
        number(1)?,
        number(2)?,
        number(3)?,
        number(4)?,
        number(5)?,
    )
}

fn name_time(name: &str) -> Option<i64> {
    if let Some(captures) = AWS_NAME_TIME.captures(name) {
        return time_of(&captures, 1);
    }
    if let Some(captures) = CLOUDFRONT_NAME.captures(name) {
        return time_of(&captures, 2);
    }
    DASHED_NAME_TIME
        .captures(name)
        .and_then(|captures| time_of(&captures, 1))
}

fn folder_time(folders: &str) -> Option<i64> {
    let last = DATE_FOLDERS.captures_iter(folders).last()?;
    time_of(&last, 1)
}

/// How a date root spells its day folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DateStyle {
    /// `2024/05/01/`
    Plain,
    /// `year=2024/month=05/day=01/`
    Hive,
}

/// The year a child folder of a date root stands for (`2024/`,
/// `year=2024/`), given the child's last segment without its `/`.
pub fn year_folder(segment: &str) -> Option<(i64, DateStyle)> {
    let (digits, style) = match segment.strip_prefix("year=") {
        Some(digits) => (digits, DateStyle::Hive),
        None => (segment, DateStyle::Plain),
    };
    let plausible = digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit());
    let year: i64 = digits.parse().ok().filter(|_| plausible)?;
    (1990..=2200).contains(&year).then_some((year, style))
}

/// The day prefixes to list under a date root whose year folders are
/// `years`: every day of the range in one of those years, plus the day
/// before the range, because a file's name time may lie just past its
/// folder's day (ELB names carry the end of their five minutes). An open
/// end stops at the first or last year present.
pub fn day_prefixes(root: &str, style: DateStyle, years: &[i64], range: TimeRange) -> Vec<String> {
    let (Some(&first_year), Some(&last_year)) = (years.iter().min(), years.iter().max()) else {
        return Vec::new();
    };
    let first_present = days_from_civil(first_year, 1, 1);
    let last_present = days_from_civil(last_year, 12, 31);
    let first = range
        .since
        .map_or(first_present, |since| since.div_euclid(DAY) - 1)
        .max(first_present);
    // `until` is excluded: its own day is listed only if some of it is in range.
    let last = range
        .until
        .map_or(last_present, |until| (until - 1).div_euclid(DAY))
        .min(last_present);
    let mut prefixes = Vec::new();
    for day in first..=last {
        let (year, month, day) = civil_from_days(day);
        if !years.contains(&year) {
            continue;
        }
        let mut prefix = root.to_owned();
        match style {
            DateStyle::Plain => write!(prefix, "{year:04}/{month:02}/{day:02}/"),
            DateStyle::Hive => write!(prefix, "year={year:04}/month={month:02}/day={day:02}/"),
        }
        .expect("writing to a String");
        prefixes.push(prefix);
    }
    prefixes
}

/// Where a folder listing should continue instead of reading on, when the
/// object it just read (`name`, relative to the folder) is one of a run of
/// names that sort by time and lies outside the range: a `start_after`
/// relative to the folder, always past `name`.
pub fn seek(name: &str, range: TimeRange) -> Option<String> {
    let (family, time, hour_only) = if let Some(captures) = CLOUDFRONT_NAME.captures(name) {
        let family = format!("{}.", &captures[1]);
        (family, time_of(&captures, 2)?, true)
    } else if let Some(captures) = ACCESS_LOG_NAME.captures(name) {
        (String::new(), time_of(&captures, 1)?, false)
    } else {
        return None;
    };
    let target = if let Some(since) = range.since.filter(|&since| time < since) {
        let (year, month, day) = civil_from_days(since.div_euclid(DAY));
        let seconds = since.rem_euclid(DAY);
        let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        if hour_only {
            format!("{family}{year:04}-{month:02}-{day:02}-{hour:02}")
        } else {
            format!("{family}{year:04}-{month:02}-{day:02}-{hour:02}-{minute:02}-{second:02}")
        }
    } else if range.until.is_some_and(|until| time >= until) {
        if hour_only {
            // Past every name of this distribution: `~` sorts after digits.
            format!("{family}~")
        } else {
            // Past this year's access logs but not the `YYYY/` folder, which
            // sorts after `YYYY-…`.
            format!("{}-~", &name[..4])
        }
    } else {
        return None;
    };
    (target.as_str() > name).then_some(target)
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

    #[test]
    fn key_times_come_from_the_name_then_from_the_folders() {
        let alb = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/05/01/123456789012_elasticloadbalancing_us-east-2_app.web.50dc6c495c0c9188_20240501T2355Z_10.0.1.7_4x2k9f.log.gz";
        assert_eq!(key_time(alb), Some(at("2024-05-01T23:55:00Z")));
        let cloudfront = "cf/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz";
        assert_eq!(key_time(cloudfront), Some(at("2019-11-14T20:00:00Z")));
        let access = "s3-access/2023-12-31-23-59-58-7A2B6C1D2E3F4A5B";
        assert_eq!(key_time(access), Some(at("2023-12-31T23:59:58Z")));
        let firehose = "firehose/2015/10/29/00/my-delivery-stream-2015-10-29-00-01-21-a188030a-62d2-49e6-b7c2-b11f1a7ba250";
        assert_eq!(key_time(firehose), Some(at("2015-10-29T00:01:21Z")));
        let waf = "AWSLogs/123456789012/WAFLogs/us-east-1/acl/2024/02/29/13/40/events.log.gz";
        assert_eq!(key_time(waf), Some(at("2024-02-29T13:40:00Z")));
        let hive = "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=01/day=31/flows.log.gz";
        assert_eq!(key_time(hive), Some(at("2024-01-31")));
        assert_eq!(key_time("exports/app/events.json"), None);
        // A date-looking folder that is no date.
        assert_eq!(key_time("x/2024/13/45/a.log"), None);
    }

    #[test]
    fn range_is_half_open() {
        let range = TimeRange {
            since: Some(at("2024-01-31")),
            until: Some(at("2024-02-01")),
        };
        assert!(range.contains(at("2024-01-31")));
        assert!(range.contains(at("2024-01-31T23:59:59Z")));
        assert!(!range.contains(at("2024-02-01")));
        assert!(!range.contains(at("2024-01-30T23:59:59Z")));
        assert!(TimeRange::default().contains(0));
    }

    #[test]
    fn day_prefixes_cover_the_range_across_month_and_year_ends() {
        let range = TimeRange {
            since: Some(at("2023-12-31T12:00:00Z")),
            until: Some(at("2024-01-02")),
        };
        assert_eq!(
            day_prefixes("r/", DateStyle::Plain, &[2023, 2024], range),
            ["r/2023/12/30/", "r/2023/12/31/", "r/2024/01/01/"]
        );
        // Only years that exist are listed.
        assert_eq!(
            day_prefixes("r/", DateStyle::Plain, &[2024], range),
            ["r/2024/01/01/"]
        );
        let leap = TimeRange {
            since: Some(at("2024-02-29")),
            until: Some(at("2024-03-01T00:00:01Z")),
        };
        assert_eq!(
            day_prefixes("", DateStyle::Hive, &[2024], leap),
            [
                "year=2024/month=02/day=28/",
                "year=2024/month=02/day=29/",
                "year=2024/month=03/day=01/"
            ]
        );
        // Open ends stop at the years present.
        let open = TimeRange {
            since: None,
            until: Some(at("2020-01-03")),
        };
        assert_eq!(day_prefixes("", DateStyle::Plain, &[2020], open).len(), 2);
        assert_eq!(
            day_prefixes("", DateStyle::Plain, &[2020], TimeRange::default()).len(),
            366
        );
        assert!(day_prefixes("", DateStyle::Plain, &[], open).is_empty());
    }

    #[test]
    fn year_folders_are_plain_or_hive() {
        assert_eq!(year_folder("2024"), Some((2024, DateStyle::Plain)));
        assert_eq!(year_folder("year=2019"), Some((2019, DateStyle::Hive)));
        assert_eq!(year_folder("123456789012"), None);
        assert_eq!(year_folder("us-east-1"), None);
        assert_eq!(year_folder("0042"), None);
    }

    #[test]
    fn flat_dated_names_seek_to_the_range_and_past_it() {
        let range = TimeRange {
            since: Some(at("2024-01-31T22:30:00Z")),
            until: Some(at("2024-02-01T01:00:00Z")),
        };
        assert_eq!(
            seek("EDFDVBD6EXAMPLE.2024-01-01-00.abc.gz", range).as_deref(),
            Some("EDFDVBD6EXAMPLE.2024-01-31-22")
        );
        assert_eq!(
            seek("EDFDVBD6EXAMPLE.2024-02-01-01.abc.gz", range).as_deref(),
            Some("EDFDVBD6EXAMPLE.~")
        );
        assert_eq!(seek("EDFDVBD6EXAMPLE.2024-01-31-23.abc.gz", range), None);
        assert_eq!(
            seek("2023-06-01-00-00-00-ABCDEF", range).as_deref(),
            Some("2024-01-31-22-30-00")
        );
        assert_eq!(
            seek("2024-02-01-01-00-00-ABCDEF", range).as_deref(),
            Some("2024-~")
        );
        // `2024-~` sorts before the `2024/` folder, which is not skipped.
        assert!("2024-~" < "2024/");
        assert_eq!(seek("2024-02-01-00-59-59-ABCDEF", range), None);
        assert_eq!(seek("notes.txt", range), None);
        // Never backwards: the CloudFront hour of `since` is not sought again.
        let mid_hour = TimeRange {
            since: Some(at("2024-01-31T22:30:00Z")),
            until: None,
        };
        assert_eq!(seek("EDFDVBD6EXAMPLE.2024-01-31-22.abc.gz", mid_hour), None);
    }
}
