//! The record time of a CloudFront record, from whichever of its time
//! fields the configuration included.

use s3logd_parser_sdk::time::{parse_iso8601, parse_seconds};

/// Above this, an integer `timestamp` is in milliseconds: as seconds it
/// would be past the year 5000.
const LARGEST_SECONDS: i64 = 100_000_000_000;

/// `date` (`YYYY-MM-DD`) and `time` (`HH:MM:SS`), both UTC.
pub fn from_date_and_time(date: &str, time: &str) -> Result<i64, String> {
    // parse_iso8601 would also take a zone or a fraction; CloudFront writes neither.
    if date.len() != 10 || time.len() != 8 {
        return Err(format!(
            "date `{date}` and time `{time}` are not YYYY-MM-DD and HH:MM:SS"
        ));
    }
    parse_iso8601(&format!("{date}T{time}Z"))
        .ok_or_else(|| format!("date `{date}` and time `{time}` are not a valid UTC time"))
}

/// A v2 `timestamp`: Unix seconds with an optional fraction (as real-time
/// logs write it), Unix milliseconds, or an ISO 8601 time.
pub fn from_timestamp(timestamp: &str) -> Result<i64, String> {
    let nanos = match timestamp.parse::<i64>() {
        Ok(millis) if millis > LARGEST_SECONDS => millis.checked_mul(1_000_000),
        _ => parse_seconds(timestamp).or_else(|| parse_iso8601(timestamp)),
    };
    nanos.ok_or_else(|| {
        format!("timestamp `{timestamp}` is not Unix seconds, milliseconds or ISO 8601")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS: i64 = 1_000_000_000;

    #[test]
    fn date_and_time_are_utc() {
        assert_eq!(
            from_date_and_time("2019-12-04", "21:02:31"),
            Ok(1_575_493_351 * NANOS)
        );
        assert!(from_date_and_time("2019-12-04", "21:02:31+02:00").is_err());
        assert!(from_date_and_time("2019-02-30", "21:02:31").is_err());
        assert!(from_date_and_time("2019-12-04 21:02:31", "").is_err());
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_or_iso() {
        assert_eq!(
            from_timestamp("1575493351.123"),
            Ok(1_575_493_351_123_000_000)
        );
        assert_eq!(from_timestamp("1575493351"), Ok(1_575_493_351 * NANOS));
        assert_eq!(
            from_timestamp("1575493351123"),
            Ok(1_575_493_351_123_000_000)
        );
        assert_eq!(
            from_timestamp("2019-12-04T21:02:31Z"),
            Ok(1_575_493_351 * NANOS)
        );
        assert!(from_timestamp("yesterday").is_err());
    }
}
