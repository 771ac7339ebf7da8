//! Amazon S3 server access logs: one space-separated, partly quoted line per
//! request, with the request time in brackets.

mod access_time;
mod columns;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub struct S3Access;

impl Parser for S3Access {
    fn describe() -> Description {
        Description::new(
            "s3-access",
            env!("CARGO_PKG_VERSION"),
            "Amazon S3 server access logs",
        )
        .format("Amazon S3 server access log")
        // `TargetPrefixYYYY-mm-DD-HH-MM-SS-UniqueString`, no extension; the
        // partitioned form ends with the same file name. The prefix may end
        // in any character, so only a digit right before the date is refused.
        .key_pattern(r"(^|[^0-9])\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-Za-z]{8,32}$")
        // Owner id, bucket, then the bracketed time.
        .first_line_pattern(r"^\S+ \S+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ")
        .fields(columns::field::schema())
        .time_source("time (`[06/Feb/2019:00:00:38 +0000]`)")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(S3Access)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        columns::parse_line(line, out)
    }
}

s3logd_parser_sdk::export_parser!(S3Access);
