//! Amazon VPC flow logs delivered to S3 as text: a header line naming the
//! fields (default or custom format), then one space-separated record per
//! line.

mod flow_fields;

use s3logd_parser_sdk::{DeclaredFields, Description, Options, Output, Parser};

use flow_fields::Columns;

#[derive(Default)]
pub struct VpcFlow {
    /// From the latest header line; `None` until one is seen.
    columns: Option<Columns>,
    declared: DeclaredFields,
}

impl Parser for VpcFlow {
    fn describe() -> Description {
        Description::new(
            "vpc-flow",
            env!("CARGO_PKG_VERSION"),
            "Amazon VPC flow logs (text format, any field selection: columns come from the header line)",
        )
        .format("Amazon VPC flow log")
        .key_pattern(r"(^|/)AWSLogs/(\d{12}|aws-account-id=\d{12})/(vpcflowlogs|aws-service=vpcflowlogs)/[^ ]*\.log(\.gz)?$")
        .first_line_pattern(&flow_fields::header_pattern())
        .time_source("start (Unix seconds), also kept as the `start` field")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(VpcFlow::default())
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        if flow_fields::is_header(line) {
            self.columns = Some(Columns::from_header(line, out, &mut self.declared));
            return Ok(());
        }
        let columns = self
            .columns
            .as_ref()
            .ok_or("record before the header line naming the fields")?;
        columns.parse_record(line, out)
    }
}

s3logd_parser_sdk::export_parser!(VpcFlow);
