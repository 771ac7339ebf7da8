//! One CLB access-log line: 15 space-separated fields, `request` and
//! `user_agent` quoted.

use s3logd_parser_sdk::text::{self, Fields};
use s3logd_parser_sdk::{Field, FieldId, FieldType, Output, time};

/// Fields every CLB line has had: up to `request`. A shorter line is cut
/// off; a line without `user_agent`, `ssl_cipher` or `ssl_protocol` keeps
/// them absent, as the conventions ask for fields a line predates.
const REQUIRED_FIELDS: usize = 12;

// Ids in the order of `fields()`.
const ELB: FieldId = 0;
const CLIENT_IP: FieldId = 1;
const CLIENT_PORT: FieldId = 2;
const BACKEND_IP: FieldId = 3;
const BACKEND_PORT: FieldId = 4;
const REQUEST_PROCESSING_TIME: FieldId = 5;
const BACKEND_PROCESSING_TIME: FieldId = 6;
const RESPONSE_PROCESSING_TIME: FieldId = 7;
const ELB_STATUS_CODE: FieldId = 8;
const BACKEND_STATUS_CODE: FieldId = 9;
const RECEIVED_BYTES: FieldId = 10;
const SENT_BYTES: FieldId = 11;
const REQUEST: FieldId = 12;
const REQUEST_METHOD: FieldId = 13;
const REQUEST_URL: FieldId = 14;
const REQUEST_PROTOCOL: FieldId = 15;
const USER_AGENT: FieldId = 16;
const SSL_CIPHER: FieldId = 17;
const SSL_PROTOCOL: FieldId = 18;

pub fn fields() -> Vec<Field> {
    use FieldType::{Float, Integer, String};
    vec![
        Field::new("elb", String, "load balancer name"),
        Field::new("client_ip", String, "client IP address"),
        Field::new("client_port", Integer, "client port"),
        Field::new(
            "backend_ip",
            String,
            "registered instance IP; absent if no instance took the request",
        ),
        Field::new("backend_port", Integer, "registered instance port"),
        Field::new(
            "request_processing_time",
            Float,
            "seconds from receiving the request to sending it to an instance; -1 if not dispatched",
        ),
        Field::new(
            "backend_processing_time",
            Float,
            "seconds the instance took to start responding; -1 if not available",
        ),
        Field::new(
            "response_processing_time",
            Float,
            "seconds from the instance's response to sending it to the client; -1 if not available",
        ),
        Field::new(
            "elb_status_code",
            Integer,
            "status code from the load balancer; absent for TCP/SSL listeners",
        ),
        Field::new(
            "backend_status_code",
            Integer,
            "status code from the instance; absent for TCP/SSL listeners",
        ),
        Field::new(
            "received_bytes",
            Integer,
            "request bytes received (HTTP: body only)",
        ),
        Field::new(
            "sent_bytes",
            Integer,
            "response bytes sent (HTTP: body only)",
        ),
        Field::new(
            "request",
            String,
            "request line as logged (`- - - ` for TCP/SSL listeners)",
        ),
        Field::new("request_method", String, "request method"),
        Field::new("request_url", String, "request URL as the client sent it"),
        Field::new("request_protocol", String, "HTTP version"),
        Field::new("user_agent", String, "User-Agent header"),
        Field::new("ssl_cipher", String, "TLS cipher (HTTPS/SSL listeners)"),
        Field::new("ssl_protocol", String, "TLS protocol (HTTPS/SSL listeners)"),
    ]
}

pub fn parse(line: &str, out: &mut Output) -> Result<(), String> {
    let mut fields = Fields::new(line);
    let [
        timestamp,
        elb,
        client,
        backend,
        request_processing_time,
        backend_processing_time,
        response_processing_time,
        elb_status_code,
        backend_status_code,
        received_bytes,
        sent_bytes,
        request,
        user_agent,
        ssl_cipher,
        ssl_protocol,
    ] = text::documented_fields(&mut fields, REQUIRED_FIELDS, "a CLB access log")?;

    let time = time::parse_iso8601(timestamp)
        .ok_or_else(|| format!("timestamp {timestamp:?} is not an ISO 8601 time"))?;
    let mut row = out.row();
    row.time(time).str_or_dash(ELB, elb);
    if let Some((ip, port)) = text::host_port_or_dash("client:port", client)? {
        row.str(CLIENT_IP, ip).int(CLIENT_PORT, port);
    }
    if let Some((ip, port)) = text::host_port_or_dash("backend:port", backend)? {
        row.str(BACKEND_IP, ip).int(BACKEND_PORT, port);
    }
    for (field, name, value) in [
        (
            REQUEST_PROCESSING_TIME,
            "request_processing_time",
            request_processing_time,
        ),
        (
            BACKEND_PROCESSING_TIME,
            "backend_processing_time",
            backend_processing_time,
        ),
        (
            RESPONSE_PROCESSING_TIME,
            "response_processing_time",
            response_processing_time,
        ),
    ] {
        if let Some(seconds) = text::float_or_dash(name, value)? {
            row.float(field, seconds);
        }
    }
    for (field, name, value) in [
        (ELB_STATUS_CODE, "elb_status_code", elb_status_code),
        (
            BACKEND_STATUS_CODE,
            "backend_status_code",
            backend_status_code,
        ),
        (RECEIVED_BYTES, "received_bytes", received_bytes),
        (SENT_BYTES, "sent_bytes", sent_bytes),
    ] {
        if let Some(number) = text::int_or_dash(name, value)? {
            row.int(field, number);
        }
    }
    let split = text::split_request(request);
    row.str_or_dash(REQUEST, request);
    for (field, part) in [
        (REQUEST_METHOD, split.method),
        (REQUEST_URL, split.url),
        (REQUEST_PROTOCOL, split.protocol),
    ] {
        if let Some(part) = part {
            row.str(field, part);
        }
    }
    row.str_or_dash(USER_AGENT, user_agent)
        .str_or_dash(SSL_CIPHER, ssl_cipher)
        .str_or_dash(SSL_PROTOCOL, ssl_protocol);
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}
