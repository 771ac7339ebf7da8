//! AWS Application Load Balancer access logs. (Placeholder: the full parser
//! replaces this.)

use s3logd_parser_sdk::{Description, Field, FieldType, Options, Output, Parser, text, time};

pub struct Alb;

impl Parser for Alb {
    fn describe() -> Description {
        Description::new("alb", env!("CARGO_PKG_VERSION"), "AWS Application Load Balancer access logs")
            .format("AWS ALB access log")
            .key_pattern(r"_elasticloadbalancing_[^_/]+_app\.[^/]*\.log(\.gz)?$")
            .first_line_pattern(r"^(http|https|h2|grpcs|ws|wss) \d{4}-\d\d-\d\dT")
            .field(Field::new("type", FieldType::String, "listener type"))
            .time_source("time")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Alb)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let mut fields = text::Fields::new(line);
        let ty = fields.next().ok_or("empty line")?;
        let t = fields.next().and_then(time::parse_iso8601).ok_or("bad time")?;
        out.row().str(0, ty).time(t);
        Ok(())
    }
}

s3logd_parser_sdk::export_parser!(Alb);
