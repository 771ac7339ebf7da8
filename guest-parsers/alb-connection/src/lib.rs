//! AWS Application Load Balancer connection logs: one line per client
//! connection attempt, in the access logs' tree but with `conn_log_` before
//! the file name. `conn_trace_id` joins a connection to its requests in the
//! access logs.

mod line;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub struct AlbConnection;

impl Parser for AlbConnection {
    fn describe() -> Description {
        Description::new(
            "alb-connection",
            env!("CARGO_PKG_VERSION"),
            "AWS Application Load Balancer connection logs",
        )
        .format("AWS ALB connection log")
        .key_pattern(
            r"(^|/)conn_log_\d{12}_elasticloadbalancing_[a-z0-9-]+_app\.[^_/]+_\d{8}T\d{4}Z_[^_/]+_[^_/]+\.log(\.gz)?$",
        )
        // The time, the client IP, then two bare ports (a CLB line has
        // `client:port` after its name).
        .first_line_pattern(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \S+ \d+ \d+ ")
        .fields(line::field::schema())
        .time_source("timestamp: when the connection was established or failed")
    }

    fn open(_object_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(AlbConnection)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        line::parse(line, out)
    }
}

#[cfg(test)]
mod tests;

s3logd_parser_sdk::export_parser!(AlbConnection);
