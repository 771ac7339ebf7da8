//! One CLB access-log line: 15 space-separated fields, `request` and
//! `user_agent` quoted.

use s3logd_parser_sdk::text::{self, Fields};
use s3logd_parser_sdk::{Output, time};

/// Fields every CLB line has had: up to `request`. A shorter line is cut
/// off; a line without `user_agent`, `ssl_cipher` or `ssl_protocol` keeps
/// them absent, as the conventions ask for fields a line predates.
const REQUIRED_FIELDS: usize = 12;

s3logd_parser_sdk::fields! {
    /// The static fields, in record order (`timestamp` is the record time).
    pub mod field {
        ELB = "elb": String, "load balancer name";
        CLIENT_IP = "client_ip": String, "client IP address";
        CLIENT_PORT = "client_port": Integer, "client port";
        BACKEND_IP = "backend_ip": String, "registered instance IP; absent if no instance took the request";
        BACKEND_PORT = "backend_port": Integer, "registered instance port";
        REQUEST_PROCESSING_TIME = "request_processing_time": Float, "seconds from receiving the request to sending it to an instance; -1 if not dispatched";
        BACKEND_PROCESSING_TIME = "backend_processing_time": Float, "seconds the instance took to start responding; -1 if not available";
        RESPONSE_PROCESSING_TIME = "response_processing_time": Float, "seconds from the instance's response to sending it to the client; -1 if not available";
        ELB_STATUS_CODE = "elb_status_code": Integer, "status code from the load balancer; absent for TCP/SSL listeners";
        BACKEND_STATUS_CODE = "backend_status_code": Integer, "status code from the instance; absent for TCP/SSL listeners";
        RECEIVED_BYTES = "received_bytes": Integer, "request bytes received (HTTP: body only)";
        SENT_BYTES = "sent_bytes": Integer, "response bytes sent (HTTP: body only)";
        REQUEST = "request": String, "request line as logged (`- - - ` for TCP/SSL listeners)";
        REQUEST_METHOD = "request_method": String, "request method";
        REQUEST_URL = "request_url": String, "request URL as the client sent it";
        REQUEST_PROTOCOL = "request_protocol": String, "HTTP version";
        USER_AGENT = "user_agent": String, "User-Agent header";
        SSL_CIPHER = "ssl_cipher": String, "TLS cipher (HTTPS/SSL listeners)";
        SSL_PROTOCOL = "ssl_protocol": String, "TLS protocol (HTTPS/SSL listeners)";
    }
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
    row.time(time).str_or_dash(field::ELB, elb);
    if let Some((ip, port)) = text::host_port_or_dash("client:port", client)? {
        row.str(field::CLIENT_IP, ip).int(field::CLIENT_PORT, port);
    }
    if let Some((ip, port)) = text::host_port_or_dash("backend:port", backend)? {
        row.str(field::BACKEND_IP, ip)
            .int(field::BACKEND_PORT, port);
    }
    for (id, value) in [
        (field::REQUEST_PROCESSING_TIME, request_processing_time),
        (field::BACKEND_PROCESSING_TIME, backend_processing_time),
        (field::RESPONSE_PROCESSING_TIME, response_processing_time),
    ] {
        row.float_opt(id, text::float_or_dash(field::name(id), value)?);
    }
    for (id, value) in [
        (field::ELB_STATUS_CODE, elb_status_code),
        (field::BACKEND_STATUS_CODE, backend_status_code),
        (field::RECEIVED_BYTES, received_bytes),
        (field::SENT_BYTES, sent_bytes),
    ] {
        row.int_opt(id, text::int_or_dash(field::name(id), value)?);
    }
    let split = text::split_request(request);
    row.str_or_dash(field::REQUEST, request)
        .str_opt(field::REQUEST_METHOD, split.method)
        .str_opt(field::REQUEST_URL, split.url)
        .str_opt(field::REQUEST_PROTOCOL, split.protocol)
        .str_or_dash(field::USER_AGENT, user_agent)
        .str_or_dash(field::SSL_CIPHER, ssl_cipher)
        .str_or_dash(field::SSL_PROTOCOL, ssl_protocol);
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}
