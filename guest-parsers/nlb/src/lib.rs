//! AWS Network Load Balancer access logs, which exist for TLS listeners
//! only: gzip objects with `net.` before the load balancer id in the file
//! name, one line per TLS connection.

mod line;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub struct Nlb;

impl Parser for Nlb {
    fn describe() -> Description {
        Description::new(
            "nlb",
            env!("CARGO_PKG_VERSION"),
            "AWS Network Load Balancer TLS access logs",
        )
        .format("AWS Network Load Balancer access log")
        .key_pattern(
            r"(^|/)\d{12}_elasticloadbalancing_[a-z0-9-]+_net\.[^_/]+_\d{8}T\d{4}Z_[^_/]+\.log(\.gz)?$",
        )
        .first_line_pattern(r"^tls 2\.0 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ")
        .fields(line::field::schema())
        .time_source("time: when the TLS connection ended (logged without a zone; UTC)")
    }

    fn open(_object_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Nlb)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        line::parse(line, out)
    }
}

#[cfg(test)]
mod tests;

s3logd_parser_sdk::export_parser!(Nlb);
