//! AWS Classic Load Balancer access logs: plain-text `.log` objects written
//! under `elasticloadbalancing/` with the load balancer's bare name in the
//! file name (no `app.`/`net.`).

mod line;

use s3logd_parser_sdk::{Description, Options, Output, Parser};

pub struct Clb;

impl Parser for Clb {
    fn describe() -> Description {
        Description::new(
            "clb",
            env!("CARGO_PKG_VERSION"),
            "AWS Classic Load Balancer access logs",
        )
        .format("AWS Classic Load Balancer (ELB) access log")
        // A CLB name is letters, digits and hyphens, so the name segment
        // never takes the `app.`/`net.` ids of ALB and NLB; anchoring on the
        // file name's start keeps `conn_log_…` names out.
        .key_pattern(
            r"(^|/)\d{12}_elasticloadbalancing_[a-z0-9-]+_[A-Za-z0-9-]+_\d{8}T\d{4}Z_[^_/]+_[^_/]+\.log(\.gz)?$",
        )
        // The time, the name, then `client:port` (an ALB connection log has
        // an IP and a bare port there).
        .first_line_pattern(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z [A-Za-z0-9-]+ \S+:\d+ ")
        .fields(line::field::schema())
        .time_source("timestamp: when the load balancer received the request")
    }

    fn open(_object_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Clb)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        line::parse(line, out)
    }
}

#[cfg(test)]
mod tests;

s3logd_parser_sdk::export_parser!(Clb);
