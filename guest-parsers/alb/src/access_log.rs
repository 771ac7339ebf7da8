//! One ALB access log line: its space-separated tokens by position, typed as
//! the record conventions require. Fields are appended to the format over
//! the years, so the position of a token is its meaning; a line shorter than
//! the current list leaves the missing tail absent, a longer one keeps the
//! surplus as `extra_N`.

use s3logd_parser_sdk::{FieldId, Output, Row, text, time};

s3logd_parser_sdk::fields! {
    /// The static fields in record order (`time` is the record time, not a
    /// field).
    pub mod field {
        TYPE = "type": String, "listener type: http, https, h2, grpcs, ws or wss";
        ELB = "elb": String, "load balancer resource id (app/name/id)";
        CLIENT_IP = "client_ip": String, "client or proxy IP address";
        CLIENT_PORT = "client_port": Integer, "client or proxy port";
        TARGET_IP = "target_ip": String, "target IP address; absent when no target was reached (Lambda, WAF block, incomplete request)";
        TARGET_PORT = "target_port": Integer, "target port";
        REQUEST_PROCESSING_TIME = "request_processing_time": Float, "seconds from receiving the request to sending it to a target; -1 when not dispatched";
        TARGET_PROCESSING_TIME = "target_processing_time": Float, "seconds from sending the request to the target to the start of its response; -1 when not available";
        RESPONSE_PROCESSING_TIME = "response_processing_time": Float, "seconds from the target's response to the start of the response to the client; -1 when not available";
        ELB_STATUS_CODE = "elb_status_code": Integer, "status code of the load balancer's response";
        TARGET_STATUS_CODE = "target_status_code": Integer, "status code of the target's response";
        RECEIVED_BYTES = "received_bytes": Integer, "request bytes received from the client, headers included";
        SENT_BYTES = "sent_bytes": Integer, "response bytes sent to the client, headers included";
        REQUEST = "request": String, "the request line as logged";
        REQUEST_METHOD = "request_method": String, "HTTP method of the request line";
        REQUEST_URL = "request_url": String, "URL of the request line, as the client sent it";
        REQUEST_PROTOCOL = "request_protocol": String, "HTTP version of the request line";
        USER_AGENT = "user_agent": String, "User-Agent header (truncated by AWS above 8 KB)";
        SSL_CIPHER = "ssl_cipher": String, "TLS cipher (OpenSSL name) for HTTPS listeners";
        SSL_PROTOCOL = "ssl_protocol": String, "TLS protocol for HTTPS listeners";
        TARGET_GROUP_ARN = "target_group_arn": String, "ARN of the target group";
        TRACE_ID = "trace_id": String, "contents of the X-Amzn-Trace-Id header";
        DOMAIN_NAME = "domain_name": String, "SNI domain sent by the client in the TLS handshake";
        CHOSEN_CERT_ARN = "chosen_cert_arn": String, "ARN of the certificate presented to the client, or session-reused";
        MATCHED_RULE_PRIORITY = "matched_rule_priority": Integer, "priority of the rule that matched: 0 for the default action, -1 on a rule evaluation error";
        REQUEST_CREATION_TIME = "request_creation_time": Timestamp, "when the load balancer received the request";
        ACTIONS_EXECUTED = "actions_executed": StringList, "actions taken (waf, authenticate, redirect, fixed-response, forward, …)";
        REDIRECT_URL = "redirect_url": String, "Location of a redirect response";
        ERROR_REASON = "error_reason": String, "error code of a failed authentication, Lambda, WAF or target group stickiness step";
        TARGET_PORT_LIST = "target_port_list": StringList, "ip:port of each target that processed the request";
        TARGET_STATUS_CODE_LIST = "target_status_code_list": IntegerList, "status code of each target's response";
        CLASSIFICATION = "classification": String, "desync mitigation classification: Acceptable, Ambiguous or Severe; absent when RFC 7230 compliant";
        CLASSIFICATION_REASON = "classification_reason": String, "why the request was classified as it was";
        CONN_TRACE_ID = "conn_trace_id": String, "connection traceability id, shared with the connection log";
        TRANSFORMED_HOST = "transformed_host": String, "host header after a host header rewrite transform";
        TRANSFORMED_URI = "transformed_uri": String, "URI after a URL rewrite transform";
        REQUEST_TRANSFORM_STATUS = "request_transform_status": String, "status of the rewrite transform";
    }
}

/// Tokens of the current format: `type` through `request_transform_status`.
const CURRENT_TOKENS: usize = 33;

/// The oldest documented line ends at `ssl_protocol`: the 15 fields of a
/// Classic Load Balancer line behind ALB's leading `type`.
const MIN_TOKENS: usize = 16;

/// The content of the test object ELB writes when logging is enabled.
const CONTROL_LINE_PREFIX: &str = "Enable AccessLog for ELB: ";

/// Parses one line into a row; the ELB control line yields nothing.
pub fn parse_line(line: &str, out: &mut Output) -> Result<(), String> {
    if line.starts_with(CONTROL_LINE_PREFIX) {
        return Ok(());
    }
    let mut fields = text::Fields::unbracketed(line);
    // Tokens an older line lacks read as AWS's own "no value" placeholder.
    let mut t = ["-"; CURRENT_TOKENS];
    let count = fields.fill(&mut t);
    if count < MIN_TOKENS {
        return Err(format!(
            "{count} fields; an ALB access log line has at least {MIN_TOKENS} (type through ssl_protocol)"
        ));
    }
    let time =
        time::parse_iso8601(t[1]).ok_or_else(|| invalid("time", t[1], "an ISO 8601 time"))?;

    let mut row = out.row();
    row.time(time)
        .str(field::TYPE, t[0])
        .str_or_dash(field::ELB, t[2]);
    endpoint(&mut row, field::CLIENT_IP, field::CLIENT_PORT, t[3])?;
    endpoint(&mut row, field::TARGET_IP, field::TARGET_PORT, t[4])?;
    float(&mut row, field::REQUEST_PROCESSING_TIME, t[5])?;
    float(&mut row, field::TARGET_PROCESSING_TIME, t[6])?;
    float(&mut row, field::RESPONSE_PROCESSING_TIME, t[7])?;
    int(&mut row, field::ELB_STATUS_CODE, t[8])?;
    int(&mut row, field::TARGET_STATUS_CODE, t[9])?;
    int(&mut row, field::RECEIVED_BYTES, t[10])?;
    int(&mut row, field::SENT_BYTES, t[11])?;
    request(&mut row, t[12]);
    row.str_or_dash(field::USER_AGENT, t[13])
        .str_or_dash(field::SSL_CIPHER, t[14])
        .str_or_dash(field::SSL_PROTOCOL, t[15])
        .str_or_dash(field::TARGET_GROUP_ARN, t[16])
        .str_or_dash(field::TRACE_ID, t[17])
        .str_or_dash(field::DOMAIN_NAME, t[18])
        .str_or_dash(field::CHOSEN_CERT_ARN, t[19]);
    int(&mut row, field::MATCHED_RULE_PRIORITY, t[20])?;
    timestamp(&mut row, field::REQUEST_CREATION_TIME, t[21])?;
    str_list(&mut row, field::ACTIONS_EXECUTED, t[22], b',');
    row.str_or_dash(field::REDIRECT_URL, t[23])
        .str_or_dash(field::ERROR_REASON, t[24]);
    str_list(&mut row, field::TARGET_PORT_LIST, t[25], b' ');
    int_list(&mut row, field::TARGET_STATUS_CODE_LIST, t[26])?;
    row.str_or_dash(field::CLASSIFICATION, t[27])
        .str_or_dash(field::CLASSIFICATION_REASON, t[28])
        .str_or_dash(field::CONN_TRACE_ID, t[29])
        .str_or_dash(field::TRANSFORMED_HOST, t[30])
        .str_or_dash(field::TRANSFORMED_URI, t[31])
        .str_or_dash(field::REQUEST_TRANSFORM_STATUS, t[32]);
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}

fn invalid(name: &str, value: &str, expected: &str) -> String {
    format!("{name} `{value}` is not {expected}")
}

/// `ip:port` split at the last colon (ELB writes IPv6 without brackets).
#[inline(always)]
fn endpoint(row: &mut Row, ip: FieldId, port: FieldId, value: &str) -> Result<(), String> {
    if value == "-" {
        return Ok(());
    }
    let (host, port_text) = text::split_host_port(value)
        .ok_or_else(|| invalid(field::name(ip), value, "an ip:port pair"))?;
    let port_number = text::parse_int(port_text)
        .ok_or_else(|| invalid(field::name(port), port_text, "an integer"))?;
    row.str(ip, host).int(port, port_number);
    Ok(())
}

#[inline(always)]
fn int(row: &mut Row, id: FieldId, value: &str) -> Result<(), String> {
    if value != "-" {
        let number =
            text::parse_int(value).ok_or_else(|| invalid(field::name(id), value, "an integer"))?;
        row.int(id, number);
    }
    Ok(())
}

/// Timings keep AWS's `-1` ("not available") as the number -1.
#[inline(always)]
fn float(row: &mut Row, id: FieldId, value: &str) -> Result<(), String> {
    if value != "-" {
        let number =
            text::parse_float(value).ok_or_else(|| invalid(field::name(id), value, "a number"))?;
        row.float(id, number);
    }
    Ok(())
}

#[inline(always)]
fn timestamp(row: &mut Row, id: FieldId, value: &str) -> Result<(), String> {
    if value != "-" {
        let nanos = time::parse_iso8601(value)
            .ok_or_else(|| invalid(field::name(id), value, "an ISO 8601 time"))?;
        row.timestamp(id, nanos);
    }
    Ok(())
}

/// The raw request line, and its method, URL and protocol.
fn request(row: &mut Row, value: &str) {
    row.str_or_dash(field::REQUEST, value);
    let parts = text::split_request(value);
    row.str_opt(field::REQUEST_METHOD, parts.method)
        .str_opt(field::REQUEST_URL, parts.url)
        .str_opt(field::REQUEST_PROTOCOL, parts.protocol);
}

fn str_list(row: &mut Row, id: FieldId, value: &str, separator: u8) {
    if value != "-" {
        row.str_list(id, text::split_ascii(value, separator));
    }
}

fn int_list(row: &mut Row, id: FieldId, value: &str) -> Result<(), String> {
    if value == "-" {
        return Ok(());
    }
    // One pass: a bad code fails the line, and a failed line's row,
    // partial list included, is discarded.
    let mut bad = None;
    row.int_list(
        id,
        text::split_ascii(value, b' ').filter_map(|code| {
            let number = text::parse_int(code);
            if number.is_none() {
                bad.get_or_insert(code);
            }
            number
        }),
    );
    if let Some(bad) = bad {
        return Err(invalid(field::name(id), bad, "an integer"));
    }
    Ok(())
}
