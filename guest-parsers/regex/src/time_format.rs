//! The `time_format` option: how the `time_field` group's text becomes UTC
//! nanoseconds, without a clock or time zone database (so a layout must
//! name its year, and a time without `%z` is UTC).

use std::fmt;

use s3logd_parser_sdk::time;

const SUPPORTED: &str =
    "rfc3339, unix_s, unix_ms, unix_us, unix_ns, or a layout using %Y %m %b %d %H %M %S %f %z %%";

#[derive(Debug, PartialEq)]
pub enum TimeFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    UnixMicros,
    UnixNanos,
    Layout(Layout),
}

impl TimeFormat {
    pub fn from_option(value: &str) -> Result<TimeFormat, String> {
        Ok(match value {
            "rfc3339" => TimeFormat::Rfc3339,
            "unix_s" => TimeFormat::UnixSeconds,
            "unix_ms" => TimeFormat::UnixMillis,
            "unix_us" => TimeFormat::UnixMicros,
            "unix_ns" => TimeFormat::UnixNanos,
            layout if layout.contains('%') => TimeFormat::Layout(Layout::compile(layout)?),
            other => return Err(format!("time_format {other:?} is not one of {SUPPORTED}")),
        })
    }

    /// UTC nanoseconds, or `None` when `text` does not fit the format.
    pub fn parse(&self, text: &str) -> Option<i64> {
        // Integer unix times only: a fraction of a millisecond is rarer than
        // a typo, and `unix_s` (which does take fractions) covers the rest.
        let scaled = |nanos_per_unit: i64| text.parse::<i64>().ok()?.checked_mul(nanos_per_unit);
        match self {
            TimeFormat::Rfc3339 => time::parse_iso8601(text),
            TimeFormat::UnixSeconds => time::parse_seconds(text),
            TimeFormat::UnixMillis => scaled(1_000_000),
            TimeFormat::UnixMicros => scaled(1_000),
            TimeFormat::UnixNanos => scaled(1),
            TimeFormat::Layout(layout) => layout.parse(text),
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::UnixSeconds => "unix_s",
            TimeFormat::UnixMillis => "unix_ms",
            TimeFormat::UnixMicros => "unix_us",
            TimeFormat::UnixNanos => "unix_ns",
            TimeFormat::Layout(layout) => &layout.source,
        })
    }
}

/// A strftime-like layout, checked once when the session opens.
#[derive(Debug, PartialEq)]
pub struct Layout {
    source: String,
    items: Vec<Item>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Literal(char),
    /// `%Y`: four digits.
    Year,
    /// `%m`: one or two digits.
    Month,
    /// `%b`: `Jan` … `Dec`, any case.
    MonthName,
    Day,
    Hour,
    Minute,
    Second,
    /// `%f`: the digits after the decimal point, down to nanoseconds.
    Fraction,
    /// `%z`: `Z`, `±HH`, `±HHMM` or `±HH:MM`.
    Zone,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl Layout {
    fn compile(source: &str) -> Result<Layout, String> {
        let mut items = Vec::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                items.push(Item::Literal(c));
                continue;
            }
            items.push(match chars.next() {
                Some('Y') => Item::Year,
                Some('m') => Item::Month,
                Some('b') => Item::MonthName,
                Some('d') => Item::Day,
                Some('H') => Item::Hour,
                Some('M') => Item::Minute,
                Some('S') => Item::Second,
                Some('f') => Item::Fraction,
                Some('z') => Item::Zone,
                Some('%') => Item::Literal('%'),
                Some(other) => {
                    return Err(format!(
                        "time_format {source:?}: %{other} is not supported; use {SUPPORTED}"
                    ));
                }
                None => return Err(format!("time_format {source:?} ends with a lone %")),
            });
        }
        let has = |wanted: &[Item]| items.iter().any(|item| wanted.contains(item));
        if !(has(&[Item::Year]) && has(&[Item::Month, Item::MonthName]) && has(&[Item::Day])) {
            return Err(format!(
                "time_format {source:?} needs %Y, %m or %b, and %d: without a clock the date cannot be guessed"
            ));
        }
        Ok(Layout {
            source: source.to_string(),
            items,
        })
    }

    fn parse(&self, text: &str) -> Option<i64> {
        let mut rest = text.as_bytes();
        let (mut year, mut month, mut day) = (0i64, 0u32, 0u32);
        let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut offset_secs = 0i64;
        for item in &self.items {
            match *item {
                Item::Literal(c) => {
                    let mut utf8 = [0; 4];
                    rest = rest.strip_prefix(c.encode_utf8(&mut utf8).as_bytes())?;
                }
                Item::Year => year = i64::from(take_digits(&mut rest, 4, 4)?),
                Item::Month => month = take_digits(&mut rest, 1, 2)?,
                Item::MonthName => {
                    let name = rest.get(..3)?.to_ascii_lowercase();
                    let index = MONTHS.iter().position(|m| m.as_bytes() == name)?;
                    month = index as u32 + 1;
                    rest = &rest[3..];
                }
                Item::Day => day = take_digits(&mut rest, 1, 2)?,
                Item::Hour => hour = take_digits(&mut rest, 1, 2)?,
                Item::Minute => minute = take_digits(&mut rest, 1, 2)?,
                Item::Second => second = take_digits(&mut rest, 1, 2)?,
                Item::Fraction => nanos = take_fraction(&mut rest)?,
                Item::Zone => offset_secs = take_zone(&mut rest)?,
            }
        }
        if !rest.is_empty() {
            return None;
        }
        let local = time::unix_nanos(year, month, day, hour, minute, second, nanos)?;
        local.checked_sub(offset_secs * 1_000_000_000)
    }
}

/// Between `min` and `max` leading ASCII digits, as a number.
fn take_digits(rest: &mut &[u8], min: usize, max: usize) -> Option<u32> {
    let count = rest
        .iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if count < min {
        return None;
    }
    let value = rest[..count]
        .iter()
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    *rest = &rest[count..];
    Some(value)
}

/// Fraction digits as nanoseconds; digits past the ninth are dropped.
fn take_fraction(rest: &mut &[u8]) -> Option<u32> {
    let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    let nanos = (0..9).fold(0u32, |acc, i| {
        acc * 10
            + rest
                .get(i)
                .filter(|_| i < count)
                .map_or(0, |b| u32::from(b - b'0'))
    });
    *rest = &rest[count..];
    Some(nanos)
}

/// A UTC offset in seconds, east positive.
fn take_zone(rest: &mut &[u8]) -> Option<i64> {
    let (&sign, after_sign) = rest.split_first()?;
    if matches!(sign, b'Z' | b'z') {
        *rest = after_sign;
        return Some(0);
    }
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    *rest = after_sign;
    let hours = take_digits(rest, 2, 2)?;
    if let Some(after_colon) = rest.strip_prefix(b":") {
        *rest = after_colon;
    }
    let minutes = if rest.first().is_some_and(u8::is_ascii_digit) {
        take_digits(rest, 2, 2)?
    } else {
        0
    };
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2000-10-10T20:55:36Z, the Apache documentation's example instant.
    const APACHE_EXAMPLE: i64 = 971_211_336_000_000_000;

    fn layout(source: &str) -> TimeFormat {
        TimeFormat::from_option(source).unwrap()
    }

    #[test]
    fn named_formats() {
        let at = |format: &str, text: &str| layout(format).parse(text);
        assert_eq!(at("rfc3339", "2000-10-10T20:55:36Z"), Some(APACHE_EXAMPLE));
        assert_eq!(
            at("rfc3339", "2000-10-10T13:55:36-07:00"),
            Some(APACHE_EXAMPLE)
        );
        assert_eq!(at("unix_s", "971211336"), Some(APACHE_EXAMPLE));
        assert_eq!(
            at("unix_s", "971211336.25"),
            Some(APACHE_EXAMPLE + 250_000_000)
        );
        assert_eq!(
            at("unix_ms", "971211336250"),
            Some(APACHE_EXAMPLE + 250_000_000)
        );
        assert_eq!(
            at("unix_us", "971211336000001"),
            Some(APACHE_EXAMPLE + 1_000)
        );
        assert_eq!(
            at("unix_ns", "971211336000000001"),
            Some(APACHE_EXAMPLE + 1)
        );
        assert_eq!(at("unix_ms", "971211336.250"), None);
        assert_eq!(at("unix_s", "yesterday"), None);
    }

    #[test]
    fn layouts_with_names_offsets_and_fractions() {
        let apache = layout("%d/%b/%Y:%H:%M:%S %z");
        assert_eq!(
            apache.parse("10/Oct/2000:13:55:36 -0700"),
            Some(APACHE_EXAMPLE)
        );
        assert_eq!(
            apache.parse("10/oct/2000:13:55:36 -07:00"),
            Some(APACHE_EXAMPLE)
        );
        assert_eq!(apache.parse("10/Oct/2000:13:55:36 -0700 trailing"), None);
        assert_eq!(apache.parse("10/Okt/2000:13:55:36 -0700"), None);

        let compact = layout("%Y%m%d%H%M%S.%f");
        assert_eq!(
            compact.parse("20001010205536.5"),
            Some(APACHE_EXAMPLE + 500_000_000)
        );
        assert_eq!(
            compact.parse("20001010205536.1234567891"),
            Some(APACHE_EXAMPLE + 123_456_789),
            "digits past nanoseconds are dropped"
        );

        let spaced = layout("%Y-%m-%d %H:%M:%S %% %z");
        assert_eq!(
            spaced.parse("2000-10-10 22:55:36 % +02"),
            Some(APACHE_EXAMPLE)
        );
        assert_eq!(
            spaced.parse("2000-10-10 20:55:36 % Z"),
            Some(APACHE_EXAMPLE)
        );
        assert_eq!(spaced.parse("2000-02-30 20:55:36 % Z"), None, "no such day");
        assert_eq!(
            layout("%Y-%m-%d").parse("2000-10-10"),
            Some(APACHE_EXAMPLE - 75_336_000_000_000)
        );
    }

    #[test]
    fn unusable_formats_are_refused_with_a_reason() {
        assert_eq!(
            TimeFormat::from_option("%Y-%m-%dT%H:%M:%S%Z").unwrap_err(),
            format!("time_format \"%Y-%m-%dT%H:%M:%S%Z\": %Z is not supported; use {SUPPORTED}")
        );
        assert!(
            TimeFormat::from_option("%H:%M:%S")
                .unwrap_err()
                .contains("needs %Y")
        );
        assert!(
            TimeFormat::from_option("%Y-%m-%d %")
                .unwrap_err()
                .contains("lone %")
        );
        assert!(
            TimeFormat::from_option("iso")
                .unwrap_err()
                .contains("is not one of")
        );
    }
}
