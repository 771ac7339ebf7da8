//! One ALB access log line: its space-separated tokens by position, typed as
//! the record conventions require. Fields are appended to the format over
//! the years, so the position of a token is its meaning; a line shorter than
//! the current list leaves the missing tail absent, a longer one keeps the
//! surplus as `extra_N`.

use s3logd_parser_sdk::{Field, FieldId, FieldType, Output, Row, text, time};

/// Declares the static fields once: the [`Col`] ids used when filling a row
/// and the schema reported by `describe` cannot drift apart.
macro_rules! columns {
    ($($col:ident = $name:literal: $ty:ident, $doc:literal;)*) => {
        /// A static field, by position in the schema.
        #[derive(Clone, Copy)]
        enum Col { $($col),* }

        const COLUMNS: &[(&str, FieldType, &str)] = &[$(($name, FieldType::$ty, $doc)),*];
    };
}

columns! {
    Type = "type": String, "listener type: http, https, h2, grpcs, ws or wss";
    Elb = "elb": String, "load balancer resource id (app/name/id)";
    ClientIp = "client_ip": String, "client or proxy IP address";
    ClientPort = "client_port": Integer, "client or proxy port";
    TargetIp = "target_ip": String, "target IP address; absent when no target was reached (Lambda, WAF block, incomplete request)";
    TargetPort = "target_port": Integer, "target port";
    RequestProcessingTime = "request_processing_time": Float, "seconds from receiving the request to sending it to a target; -1 when not dispatched";
    TargetProcessingTime = "target_processing_time": Float, "seconds from sending the request to the target to the start of its response; -1 when not available";
    ResponseProcessingTime = "response_processing_time": Float, "seconds from the target's response to the start of the response to the client; -1 when not available";
    ElbStatusCode = "elb_status_code": Integer, "status code of the load balancer's response";
    TargetStatusCode = "target_status_code": Integer, "status code of the target's response";
    ReceivedBytes = "received_bytes": Integer, "request bytes received from the client, headers included";
    SentBytes = "sent_bytes": Integer, "response bytes sent to the client, headers included";
    Request = "request": String, "the request line as logged";
    RequestMethod = "request_method": String, "HTTP method of the request line";
    RequestUrl = "request_url": String, "URL of the request line, as the client sent it";
    RequestProtocol = "request_protocol": String, "HTTP version of the request line";
    UserAgent = "user_agent": String, "User-Agent header (truncated by AWS above 8 KB)";
    SslCipher = "ssl_cipher": String, "TLS cipher (OpenSSL name) for HTTPS listeners";
    SslProtocol = "ssl_protocol": String, "TLS protocol for HTTPS listeners";
    TargetGroupArn = "target_group_arn": String, "ARN of the target group";
    TraceId = "trace_id": String, "contents of the X-Amzn-Trace-Id header";
    DomainName = "domain_name": String, "SNI domain sent by the client in the TLS handshake";
    ChosenCertArn = "chosen_cert_arn": String, "ARN of the certificate presented to the client, or session-reused";
    MatchedRulePriority = "matched_rule_priority": Integer, "priority of the rule that matched: 0 for the default action, -1 on a rule evaluation error";
    RequestCreationTime = "request_creation_time": Timestamp, "when the load balancer received the request";
    ActionsExecuted = "actions_executed": StringList, "actions taken (waf, authenticate, redirect, fixed-response, forward, …)";
    RedirectUrl = "redirect_url": String, "Location of a redirect response";
    ErrorReason = "error_reason": String, "error code of a failed authentication, Lambda, WAF or target group stickiness step";
    TargetPortList = "target_port_list": StringList, "ip:port of each target that processed the request";
    TargetStatusCodeList = "target_status_code_list": IntegerList, "status code of each target's response";
    Classification = "classification": String, "desync mitigation classification: Acceptable, Ambiguous or Severe; absent when RFC 7230 compliant";
    ClassificationReason = "classification_reason": String, "why the request was classified as it was";
    ConnTraceId = "conn_trace_id": String, "connection traceability id, shared with the connection log";
    TransformedHost = "transformed_host": String, "host header after a host header rewrite transform";
    TransformedUri = "transformed_uri": String, "URI after a URL rewrite transform";
    RequestTransformStatus = "request_transform_status": String, "status of the rewrite transform";
}

impl Col {
    fn id(self) -> FieldId {
        self as FieldId
    }

    fn name(self) -> &'static str {
        COLUMNS[self as usize].0
    }
}

/// The static fields in record order (`time` is the record time, not a field).
pub fn schema() -> impl Iterator<Item = Field> {
    COLUMNS
        .iter()
        .map(|&(name, ty, doc)| Field::new(name, ty, doc))
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
        .str(Col::Type.id(), t[0])
        .str_or_dash(Col::Elb.id(), t[2]);
    endpoint(&mut row, Col::ClientIp, Col::ClientPort, t[3])?;
    endpoint(&mut row, Col::TargetIp, Col::TargetPort, t[4])?;
    float(&mut row, Col::RequestProcessingTime, t[5])?;
    float(&mut row, Col::TargetProcessingTime, t[6])?;
    float(&mut row, Col::ResponseProcessingTime, t[7])?;
    int(&mut row, Col::ElbStatusCode, t[8])?;
    int(&mut row, Col::TargetStatusCode, t[9])?;
    int(&mut row, Col::ReceivedBytes, t[10])?;
    int(&mut row, Col::SentBytes, t[11])?;
    request(&mut row, t[12]);
    row.str_or_dash(Col::UserAgent.id(), t[13])
        .str_or_dash(Col::SslCipher.id(), t[14])
        .str_or_dash(Col::SslProtocol.id(), t[15])
        .str_or_dash(Col::TargetGroupArn.id(), t[16])
        .str_or_dash(Col::TraceId.id(), t[17])
        .str_or_dash(Col::DomainName.id(), t[18])
        .str_or_dash(Col::ChosenCertArn.id(), t[19]);
    int(&mut row, Col::MatchedRulePriority, t[20])?;
    timestamp(&mut row, Col::RequestCreationTime, t[21])?;
    str_list(&mut row, Col::ActionsExecuted, t[22], b',');
    row.str_or_dash(Col::RedirectUrl.id(), t[23])
        .str_or_dash(Col::ErrorReason.id(), t[24]);
    str_list(&mut row, Col::TargetPortList, t[25], b' ');
    int_list(&mut row, Col::TargetStatusCodeList, t[26])?;
    row.str_or_dash(Col::Classification.id(), t[27])
        .str_or_dash(Col::ClassificationReason.id(), t[28])
        .str_or_dash(Col::ConnTraceId.id(), t[29])
        .str_or_dash(Col::TransformedHost.id(), t[30])
        .str_or_dash(Col::TransformedUri.id(), t[31])
        .str_or_dash(Col::RequestTransformStatus.id(), t[32]);
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
fn endpoint(row: &mut Row, ip: Col, port: Col, value: &str) -> Result<(), String> {
    if value == "-" {
        return Ok(());
    }
    let (host, port_text) =
        text::split_host_port(value).ok_or_else(|| invalid(ip.name(), value, "an ip:port pair"))?;
    let port_number =
        text::parse_int(port_text).ok_or_else(|| invalid(port.name(), port_text, "an integer"))?;
    row.str(ip.id(), host).int(port.id(), port_number);
    Ok(())
}

#[inline(always)]
fn int(row: &mut Row, col: Col, value: &str) -> Result<(), String> {
    if value != "-" {
        let number =
            text::parse_int(value).ok_or_else(|| invalid(col.name(), value, "an integer"))?;
        row.int(col.id(), number);
    }
    Ok(())
}

/// Timings keep AWS's `-1` ("not available") as the number -1.
#[inline(always)]
fn float(row: &mut Row, col: Col, value: &str) -> Result<(), String> {
    if value != "-" {
        let number =
            text::parse_float(value).ok_or_else(|| invalid(col.name(), value, "a number"))?;
        row.float(col.id(), number);
    }
    Ok(())
}

#[inline(always)]
fn timestamp(row: &mut Row, col: Col, value: &str) -> Result<(), String> {
    if value != "-" {
        let nanos = time::parse_iso8601(value)
            .ok_or_else(|| invalid(col.name(), value, "an ISO 8601 time"))?;
        row.timestamp(col.id(), nanos);
    }
    Ok(())
}

/// The raw request line, and its method, URL and protocol.
fn request(row: &mut Row, value: &str) {
    row.str_or_dash(Col::Request.id(), value);
    let parts = text::split_request(value);
    for (col, part) in [
        (Col::RequestMethod, parts.method),
        (Col::RequestUrl, parts.url),
        (Col::RequestProtocol, parts.protocol),
    ] {
        if let Some(part) = part {
            row.str(col.id(), part);
        }
    }
}

fn str_list(row: &mut Row, col: Col, value: &str, separator: u8) {
    if value != "-" {
        row.str_list(col.id(), text::split_ascii(value, separator));
    }
}

fn int_list(row: &mut Row, col: Col, value: &str) -> Result<(), String> {
    if value == "-" {
        return Ok(());
    }
    // One pass: a bad code fails the line, and a failed line's row,
    // partial list included, is discarded.
    let mut bad = None;
    row.int_list(
        col.id(),
        text::split_ascii(value, b' ').filter_map(|code| {
            let number = text::parse_int(code);
            if number.is_none() {
                bad.get_or_insert(code);
            }
            number
        }),
    );
    if let Some(bad) = bad {
        return Err(invalid(col.name(), bad, "an integer"));
    }
    Ok(())
}
