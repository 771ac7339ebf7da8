//! The documented columns of an S3 server access log line, in line order,
//! and how each becomes fields of a record.

use s3logd_parser_sdk::text::{self, Fields, split_request};
use s3logd_parser_sdk::{FieldId, Output};

use crate::access_time;

s3logd_parser_sdk::fields! {
    /// The static fields, in record order (`time` is the record time).
    pub mod field {
        BUCKET_OWNER = "bucket_owner": String, "canonical user id of the source bucket's owner";
        BUCKET = "bucket": String, "bucket the request was made to";
        REMOTE_IP = "remote_ip": String, "apparent IP address of the requester";
        REQUESTER = "requester": String, "canonical user id or IAM ARN of the requester; absent when unauthenticated";
        REQUEST_ID = "request_id": String, "id S3 gave the request";
        OPERATION = "operation": String, "operation, e.g. REST.GET.OBJECT";
        KEY = "key": String, "object key, URL-encoded as logged";
        REQUEST_URI = "request_uri": String, "Request-URI part of the HTTP request message, as logged";
        REQUEST_METHOD = "request_method": String, "method of request_uri";
        REQUEST_URL = "request_url": String, "URL of request_uri";
        REQUEST_PROTOCOL = "request_protocol": String, "protocol of request_uri";
        HTTP_STATUS = "http_status": Integer, "HTTP status of the response";
        ERROR_CODE = "error_code": String, "S3 error code";
        BYTES_SENT = "bytes_sent": Integer, "response bytes sent, excluding HTTP overhead";
        OBJECT_SIZE = "object_size": Integer, "total size of the object";
        TOTAL_TIME = "total_time": Integer, "milliseconds the request was in flight, seen from the server";
        TURN_AROUND_TIME = "turn_around_time": Integer, "milliseconds S3 spent processing the request";
        REFERER = "referer": String, "HTTP Referer header";
        USER_AGENT = "user_agent": String, "HTTP User-Agent header";
        VERSION_ID = "version_id": String, "version id of the object in the request";
        HOST_ID = "host_id": String, "x-amz-id-2 request id";
        SIGNATURE_VERSION = "signature_version": String, "SigV2 or SigV4";
        CIPHER_SUITE = "cipher_suite": String, "TLS cipher negotiated for HTTPS";
        AUTHENTICATION_TYPE = "authentication_type": String, "AuthHeader, QueryString or absent";
        HOST_HEADER = "host_header": String, "endpoint used to reach S3";
        TLS_VERSION = "tls_version": String, "TLS version negotiated by the client";
        ACCESS_POINT_ARN = "access_point_arn": String, "ARN of the access point of the request";
        ACL_REQUIRED = "acl_required": String, "Yes when an ACL was required to authorize the request";
    }
}

/// What a column of the line becomes.
enum Column {
    Text(FieldId),
    Integer(FieldId),
    /// The record time: `_time`, not a field.
    Time,
    /// The raw request line, then its method, URL and protocol.
    Request,
}

use Column::{Integer, Request, Text, Time};

/// The documented columns, in line order.
const COLUMNS: [Column; 26] = [
    Text(field::BUCKET_OWNER),
    Text(field::BUCKET),
    Time,
    Text(field::REMOTE_IP),
    Text(field::REQUESTER),
    Text(field::REQUEST_ID),
    Text(field::OPERATION),
    Text(field::KEY),
    Request,
    Integer(field::HTTP_STATUS),
    Text(field::ERROR_CODE),
    Integer(field::BYTES_SENT),
    Integer(field::OBJECT_SIZE),
    Integer(field::TOTAL_TIME),
    Integer(field::TURN_AROUND_TIME),
    Text(field::REFERER),
    Text(field::USER_AGENT),
    Text(field::VERSION_ID),
    Text(field::HOST_ID),
    Text(field::SIGNATURE_VERSION),
    Text(field::CIPHER_SUITE),
    Text(field::AUTHENTICATION_TYPE),
    Text(field::HOST_HEADER),
    Text(field::TLS_VERSION),
    Text(field::ACCESS_POINT_ARN),
    Text(field::ACL_REQUIRED),
];

pub fn parse_line(line: &str, out: &mut Output) -> Result<(), String> {
    // Some lines end in spaces; they separate no further fields.
    let mut values = Fields::new(line.trim_end_matches(' '));
    let mut row = out.row();
    let mut has_time = false;
    for column in &COLUMNS {
        let Some(value) = values.next() else { break };
        match *column {
            Text(id) => {
                row.str_opt(id, text::present(value));
            }
            Integer(id) => {
                if let Some(value) = text::present(value) {
                    let number = value
                        .parse()
                        .map_err(|_| format!("{} `{value}` is not an integer", field::name(id)))?;
                    row.int(id, number);
                }
            }
            Time => {
                let nanos = access_time::parse(value).ok_or_else(|| {
                    format!("time `{value}` is not `[dd/Mon/yyyy:HH:MM:SS +hhmm]`")
                })?;
                row.time(nanos);
                has_time = true;
            }
            Request => {
                let request = split_request(value);
                row.str_opt(field::REQUEST_URI, text::present(value))
                    .str_opt(field::REQUEST_METHOD, request.method)
                    .str_opt(field::REQUEST_URL, request.url)
                    .str_opt(field::REQUEST_PROTOCOL, request.protocol);
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
