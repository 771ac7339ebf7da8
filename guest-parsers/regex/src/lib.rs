//! Any line format, described by the user: a regular expression whose named
//! groups become fields. Chosen only by configuration (`--format regex`), so
//! it has no key or first-line pattern.
//!
//! Every field is a string: a group's text is text, and guessing numbers
//! per value would give one column different types from line to line,
//! which typed stores (Elasticsearch mappings) reject.

mod session;
mod time_format;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub use session::RegexSession;

impl Parser for RegexSession {
    fn describe() -> Description {
        Description::new(
            "regex",
            env!("CARGO_PKG_VERSION"),
            "lines matched by a user-given regular expression; named groups become string fields",
        )
        .format("any line format (regular expression with named groups)")
        .option(
            "pattern",
            "required: a Rust `regex` expression; each named group becomes a field of that name, declared at the first line (a group that did not take part, or matched `-`, is absent)",
            None,
        )
        .option(
            "time_field",
            "a group whose text is the record time (`_time`); it is not repeated as a field",
            None,
        )
        .option(
            "time_format",
            "how time_field is written: rfc3339, unix_s, unix_ms, unix_us, unix_ns, or a layout with %Y %m %b %d %H %M %S %f %z %% (no %z: UTC)",
            Some("rfc3339"),
        )
        .option(
            "msg_field",
            "a group whose text is `_msg` instead of the whole line; it is not repeated as a field",
            None,
        )
        .time_source("the time_field group, read per time_format; none without time_field")
    }

    fn open(_object_key: &str, options: &Options) -> Result<Self, String> {
        RegexSession::open(options)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        self.parse_line(line, out)
    }
}

s3logd_parser_sdk::export_parser!(RegexSession);
