//! s3logger's names: a spool file is `YYYYMMDDTHHMMSS_<16 hex>.json.gz`,
//! the UTC time of its creation and a random 64-bit value, and its object
//! is `<prefix>dt=YYYY-MM-DD/<the same name>`, the date taken from the
//! name. The key follows from the file's name alone, so a file uploaded
//! twice (a crash between its upload and its removal) lands on the same
//! key both times.

use s3logd_rows::calendar::civil_from_days;

/// A finished spool file's suffix.
pub const FINISHED: &str = ".json.gz";
/// The suffix of the file being written.
pub const PART: &str = ".json.gz.part";

/// The name of a file created `unix_secs` after the epoch.
pub fn file_name(unix_secs: i64, random: u64) -> String {
    let of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(unix_secs.div_euclid(86_400));
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}_{random:016x}{FINISHED}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
    )
}

/// Whether `name` is a finished file's name as [`file_name`] makes them.
pub fn is_finished(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(FINISHED) else {
        return false;
    };
    let bytes = stem.as_bytes();
    bytes.len() == 32
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'_'
        && bytes[16..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The name `name` (finished) has while it is written.
pub fn part_of(name: &str) -> String {
    format!("{name}{}", &PART[FINISHED.len()..])
}

/// The finished name of a part file's name.
pub fn finished_of_part(name: &str) -> Option<String> {
    let finished = name.strip_suffix(&PART[FINISHED.len()..])?;
    is_finished(finished).then(|| finished.to_owned())
}

/// `prefix` as keys start with it: empty, or ending in `/`, so that
/// `dt=` starts a path segment (the `ndjson` parser looks for `/dt=`).
pub fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// The object key of the finished file `name` under `prefix` (as
/// [`key_prefix`] made it).
pub fn object_key(prefix: &str, name: &str) -> Option<String> {
    if !is_finished(name) {
        return None;
    }
    let date = &name[..8];
    Some(format!(
        "{prefix}dt={}-{}-{}/{name}",
        &date[..4],
        &date[4..6],
        &date[6..8]
    ))
}
