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

use s3logd_rows::calendar::{civil_from_days, days_from_civil};

use crate::time::{DAY, unix_time};

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
    use crate::time::parse_time;

    fn at(text: &str) -> i64 {
        parse_time(text).unwrap()
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
