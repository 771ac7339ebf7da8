//! The documented columns of an S3 server access log line, in line order,
//! and how each becomes fields of a record.

use s3logd_parser_sdk::text::{self, Fields, split_request};
use s3logd_parser_sdk::{Field, FieldId, FieldType, Output};

use crate::access_time;

enum Column {
    Text(&'static str, &'static str),
    Integer(&'static str, &'static str),
    /// The record time: `_time`, not a field.
    Time,
    /// The raw request line, then its method, URL and protocol.
    Request,
}

use Column::{Integer, Request, Text, Time};

const COLUMNS: [Column; 26] = [
    Text(
        "bucket_owner",
        "canonical user id of the source bucket's owner",
    ),
    Text("bucket", "bucket the request was made to"),
    Time,
    Text("remote_ip", "apparent IP address of the requester"),
    Text(
        "requester",
        "canonical user id or IAM ARN of the requester; absent when unauthenticated",
    ),
    Text("request_id", "id S3 gave the request"),
    Text("operation", "operation, e.g. REST.GET.OBJECT"),
    Text("key", "object key, URL-encoded as logged"),
    Request,
    Integer("http_status", "HTTP status of the response"),
    Text("error_code", "S3 error code"),
    Integer("bytes_sent", "response bytes sent, excluding HTTP overhead"),
    Integer("object_size", "total size of the object"),
    Integer(
        "total_time",
        "milliseconds the request was in flight, seen from the server",
    ),
    Integer(
        "turn_around_time",
        "milliseconds S3 spent processing the request",
    ),
    Text("referer", "HTTP Referer header"),
    Text("user_agent", "HTTP User-Agent header"),
    Text("version_id", "version id of the object in the request"),
    Text("host_id", "x-amz-id-2 request id"),
    Text("signature_version", "SigV2 or SigV4"),
    Text("cipher_suite", "TLS cipher negotiated for HTTPS"),
    Text("authentication_type", "AuthHeader, QueryString or absent"),
    Text("host_header", "endpoint used to reach S3"),
    Text("tls_version", "TLS version negotiated by the client"),
    Text("access_point_arn", "ARN of the access point of the request"),
    Text(
        "acl_required",
        "Yes when an ACL was required to authorize the request",
    ),
];

const REQUEST_FIELDS: [(&str, &str); 4] = [
    (
        "request_uri",
        "Request-URI part of the HTTP request message, as logged",
    ),
    ("request_method", "method of request_uri"),
    ("request_url", "URL of request_uri"),
    ("request_protocol", "protocol of request_uri"),
];

/// The static schema, in record order.
pub fn fields() -> Vec<Field> {
    COLUMNS
        .iter()
        .flat_map(|column| match column {
            Text(name, doc) => vec![Field::new(name, FieldType::String, doc)],
            Integer(name, doc) => vec![Field::new(name, FieldType::Integer, doc)],
            Time => Vec::new(),
            Request => REQUEST_FIELDS
                .iter()
                .map(|(name, doc)| Field::new(name, FieldType::String, doc))
                .collect(),
        })
        .collect()
}

pub fn parse_line(line: &str, out: &mut Output) -> Result<(), String> {
    // Some lines end in spaces; they separate no further fields.
    let mut values = Fields::new(line.trim_end_matches(' '));
    let mut row = out.row();
    let mut next_field: FieldId = 0;
    let mut has_time = false;
    for column in &COLUMNS {
        let Some(value) = values.next() else { break };
        match column {
            Text(..) => {
                if let Some(value) = text::present(value) {
                    row.str(next_field, value);
                }
                next_field += 1;
            }
            Integer(name, _) => {
                if let Some(value) = text::present(value) {
                    let number = value
                        .parse()
                        .map_err(|_| format!("{name} `{value}` is not an integer"))?;
                    row.int(next_field, number);
                }
                next_field += 1;
            }
            Time => {
                let nanos = access_time::parse(value).ok_or_else(|| {
                    format!("time `{value}` is not `[dd/Mon/yyyy:HH:MM:SS +hhmm]`")
                })?;
                row.time(nanos);
                has_time = true;
            }
            Request => {
                if let Some(value) = text::present(value) {
                    row.str(next_field, value);
                }
                let request = split_request(value);
                for (offset, part) in [request.method, request.url, request.protocol]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(part) = part {
                        row.str(next_field + 1 + offset, part);
                    }
                }
                next_field += REQUEST_FIELDS.len();
            }
        }
    }
    if !has_time {
        return Err("line ends before the [time] field".into());
    }
    for extra in values {
        row.extra(extra);
    }
    Ok(())
}
