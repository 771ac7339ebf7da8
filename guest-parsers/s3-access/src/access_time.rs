//! The bracketed Common Log Format time S3 writes:
//! `[06/Feb/2019:00:00:38 +0000]`.

use s3logd_parser_sdk::time::unix_nanos;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// UTC nanoseconds of `[dd/Mon/yyyy:HH:MM:SS ±hhmm]`, brackets included.
pub fn parse(bracketed: &str) -> Option<i64> {
    let b = bracketed.strip_prefix('[')?.strip_suffix(']')?.as_bytes();
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let month = MONTHS.iter().position(|name| name[..] == b[3..6])? as u32 + 1;
    let local = unix_nanos(
        i64::from(number(&b[7..11])?),
        month,
        number(&b[0..2])?,
        number(&b[12..14])?,
        number(&b[15..17])?,
        number(&b[18..20])?,
        0,
    )?;
    let offset_secs = i64::from(number(&b[22..24])? * 3600 + number(&b[24..26])? * 60);
    let offset_nanos = offset_secs * 1_000_000_000;
    match b[21] {
        b'+' => local.checked_sub(offset_nanos),
        b'-' => local.checked_add(offset_nanos),
        _ => None,
    }
}

fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3logd_parser_sdk::time::parse_iso8601;

    #[test]
    fn documented_time_is_utc() {
        assert_eq!(
            parse("[06/Feb/2019:00:00:38 +0000]"),
            parse_iso8601("2019-02-06T00:00:38Z")
        );
    }

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            parse("[31/Dec/2023:23:30:00 -0130]"),
            parse_iso8601("2024-01-01T01:00:00Z")
        );
        assert_eq!(
            parse("[01/Mar/2024:02:00:00 +0200]"),
            parse_iso8601("2024-03-01T00:00:00Z")
        );
    }

    #[test]
    fn every_month_name_is_known() {
        for (index, name) in [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .enumerate()
        {
            let expected = parse_iso8601(&format!("2020-{:02}-15T12:00:00Z", index + 1));
            assert_eq!(
                parse(&format!("[15/{name}/2020:12:00:00 +0000]")),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "06/Feb/2019:00:00:38 +0000",
            "[06/Fev/2019:00:00:38 +0000]",
            "[30/Feb/2019:00:00:38 +0000]",
            "[06/Feb/2019:00:00:38]",
            "[06/Feb/2019:00:00:38 *0000]",
            "[6/Feb/2019:00:00:38 +0000]",
            "-",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
