//! Amazon CloudFront standard logs: the legacy W3C files (tab-separated,
//! columns named by a `#Fields` header) and standard logging v2 objects,
//! which are either the same W3C form or one JSON object per line. One
//! component reads all three, choosing per line: `#` starts a directive,
//! `{` a JSON record (W3C values URL-encode `{`, so it never starts one),
//! anything else a W3C record.

mod json;
mod record_time;
mod w3c;

use s3logd_parser_sdk::{DeclaredFields, Description, Options, Output, Parser};

#[derive(Default)]
pub struct CloudFront {
    /// From the latest `#Fields` header; `None` until one is seen.
    columns: Option<w3c::Columns>,
    declared: DeclaredFields,
}

impl Parser for CloudFront {
    fn describe() -> Description {
        Description::new(
            "cloudfront",
            env!("CARGO_PKG_VERSION"),
            "Amazon CloudFront standard logs: legacy and v2 W3C (fields from the #Fields header), v2 JSON lines",
        )
        .format("Amazon CloudFront standard log (legacy)")
        .format("Amazon CloudFront standard log v2 (W3C or JSON)")
        // `DISTRIBUTIONID.YYYY-MM-DD-HH.unique.gz`, after the prefix's `/`.
        .key_pattern(r"(^|/)[A-Z0-9]{6,}\.\d{4}-\d\d-\d\d-\d\d\.[0-9A-Za-z]+\.gz$")
        .first_line_pattern(r"^#Version: ")
        .first_line_pattern(r"^#Fields: ")
        .first_line_pattern(r#"^\{.*"x-edge-(location|request-id|result-type)":"#)
        .time_source("date + time (UTC); v2 JSON records without them: timestamp (Unix seconds, or milliseconds)")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(CloudFront::default())
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        if let Some(directive) = line.strip_prefix('#') {
            // `#Version`, and any other W3C directive, carry no record.
            if let Some(names) = directive.strip_prefix("Fields:") {
                self.columns = Some(w3c::Columns::from_header(names, out, &mut self.declared));
            }
            return Ok(());
        }
        if line.starts_with('{') {
            return json::parse_record(line, out, &mut self.declared);
        }
        let columns = self
            .columns
            .as_ref()
            .ok_or("record before any #Fields header")?;
        columns.parse_record(line, out)
    }
}

s3logd_parser_sdk::export_parser!(CloudFront);
