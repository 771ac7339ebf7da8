//! AWS Application Load Balancer access logs: the bundled `alb` parser
//! component. Detection and the schema live here; the line format itself is
//! in [`access_log`].

mod access_log;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub struct Alb;

impl Parser for Alb {
    fn describe() -> Description {
        Description::new(
            "alb",
            env!("CARGO_PKG_VERSION"),
            "AWS Application Load Balancer access logs",
        )
        .format("AWS ALB access log")
        // The file name segment only: connection logs (`conn_log_` prefix),
        // NLB (`_net.`) and CLB (plain name) share the same key tree.
        .key_pattern(
            r"(^|/)\d{12}_elasticloadbalancing_[a-z0-9-]+_app\.[^/_]+_\d{8}T\d{4}Z_[^/_]+_[^/_]+\.log(\.gz)?$",
        )
        .first_line_pattern(
            r"^(http|https|h2|grpcs|ws|wss) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ",
        )
        .fields(access_log::field::schema())
        .time_source("time (when the load balancer sent the response; for WebSockets, when the connection closed)")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Alb)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        access_log::parse_line(line, out)
    }
}

s3logd_parser_sdk::export_parser!(Alb);

#[cfg(test)]
mod tests;
