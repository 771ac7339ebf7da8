//! One ALB connection-log line: 15 space-separated fields (12 in older
//! lines), the certificate subject quoted.

use s3logd_parser_sdk::text::{self, Fields};
use s3logd_parser_sdk::{Field, FieldId, FieldType, Output, time};

/// Up to `conn_trace_id`, the form of the documentation's examples; the
/// three later fields are absent when a line does not reach them.
const REQUIRED_FIELDS: usize = 12;

// Ids in the order of `fields()`.
const CLIENT_IP: FieldId = 0;
const CLIENT_PORT: FieldId = 1;
const LISTENER_PORT: FieldId = 2;
const TLS_PROTOCOL: FieldId = 3;
const TLS_CIPHER: FieldId = 4;
const TLS_HANDSHAKE_LATENCY: FieldId = 5;
const LEAF_CLIENT_CERT_SUBJECT: FieldId = 6;
const LEAF_CLIENT_CERT_VALIDITY: FieldId = 7;
const LEAF_CLIENT_CERT_NOT_BEFORE: FieldId = 8;
const LEAF_CLIENT_CERT_NOT_AFTER: FieldId = 9;
const LEAF_CLIENT_CERT_SERIAL_NUMBER: FieldId = 10;
const TLS_VERIFY_STATUS: FieldId = 11;
const CONN_TRACE_ID: FieldId = 12;
const TLS_KEYEXCHANGE: FieldId = 13;
const ELB: FieldId = 14;
const IP_ADDRESS: FieldId = 15;

pub fn fields() -> Vec<Field> {
    use FieldType::{Float, Integer, String, Timestamp};
    vec![
        Field::new("client_ip", String, "client IP address"),
        Field::new("client_port", Integer, "client port"),
        Field::new(
            "listener_port",
            Integer,
            "listener port that took the connection",
        ),
        Field::new("tls_protocol", String, "TLS protocol negotiated"),
        Field::new("tls_cipher", String, "TLS cipher negotiated"),
        Field::new(
            "tls_handshake_latency",
            Float,
            "seconds the TLS handshake took; absent when not TLS or it failed",
        ),
        Field::new(
            "leaf_client_cert_subject",
            String,
            "subject of the client's leaf certificate (mTLS)",
        ),
        Field::new(
            "leaf_client_cert_validity",
            String,
            "`NotBefore=…;NotAfter=…` as logged",
        ),
        Field::new(
            "leaf_client_cert_not_before",
            Timestamp,
            "start of the client certificate's validity",
        ),
        Field::new(
            "leaf_client_cert_not_after",
            Timestamp,
            "end of the client certificate's validity",
        ),
        Field::new(
            "leaf_client_cert_serial_number",
            String,
            "serial number of the client's leaf certificate",
        ),
        Field::new(
            "tls_verify_status",
            String,
            "`Success` or `Failed:<error code>`",
        ),
        Field::new(
            "conn_trace_id",
            String,
            "connection id, also in the access log's conn_trace_id",
        ),
        Field::new("tls_keyexchange", String, "key exchange group negotiated"),
        Field::new("elb", String, "load balancer resource id `app/name/id`"),
        Field::new("ip_address", String, "IP address of the load balancer node"),
    ]
}

pub fn parse(line: &str, out: &mut Output) -> Result<(), String> {
    let mut fields = Fields::new(line);
    let [
        timestamp,
        client_ip,
        client_port,
        listener_port,
        tls_protocol,
        tls_cipher,
        tls_handshake_latency,
        leaf_client_cert_subject,
        leaf_client_cert_validity,
        leaf_client_cert_serial_number,
        tls_verify_status,
        conn_trace_id,
        tls_keyexchange,
        elb,
        ip_address,
    ] = text::documented_fields(&mut fields, REQUIRED_FIELDS, "an ALB connection log")?;

    let time = time::parse_iso8601(timestamp)
        .ok_or_else(|| format!("timestamp {timestamp:?} is not an ISO 8601 time"))?;
    let mut row = out.row();
    row.time(time).str_or_dash(CLIENT_IP, client_ip);
    for (field, name, value) in [
        (CLIENT_PORT, "client_port", client_port),
        (LISTENER_PORT, "listener_port", listener_port),
    ] {
        if let Some(port) = text::int_or_dash(name, value)? {
            row.int(field, port);
        }
    }
    row.str_or_dash(TLS_PROTOCOL, tls_protocol)
        .str_or_dash(TLS_CIPHER, tls_cipher);
    if let Some(seconds) = text::float_or_dash("tls_handshake_latency", tls_handshake_latency)? {
        row.float(TLS_HANDSHAKE_LATENCY, seconds);
    }
    row.str_or_dash(LEAF_CLIENT_CERT_SUBJECT, leaf_client_cert_subject)
        .str_or_dash(LEAF_CLIENT_CERT_VALIDITY, leaf_client_cert_validity);
    // The raw value is kept either way, so a validity in another shape
    // loses nothing and is not worth failing the connection's record.
    if let Some((not_before, not_after)) = validity(leaf_client_cert_validity) {
        row.timestamp(LEAF_CLIENT_CERT_NOT_BEFORE, not_before)
            .timestamp(LEAF_CLIENT_CERT_NOT_AFTER, not_after);
    }
    row.str_or_dash(
        LEAF_CLIENT_CERT_SERIAL_NUMBER,
        leaf_client_cert_serial_number,
    )
    .str_or_dash(TLS_VERIFY_STATUS, tls_verify_status)
    .str_or_dash(CONN_TRACE_ID, conn_trace_id)
    .str_or_dash(TLS_KEYEXCHANGE, tls_keyexchange)
    .str_or_dash(ELB, elb)
    .str_or_dash(IP_ADDRESS, ip_address);
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}

/// `NotBefore=<time>;NotAfter=<time>` as UTC nanoseconds.
fn validity(raw: &str) -> Option<(i64, i64)> {
    let (not_before, not_after) = raw.split_once(';')?;
    let not_before = time::parse_iso8601(not_before.strip_prefix("NotBefore=")?)?;
    let not_after = time::parse_iso8601(not_after.strip_prefix("NotAfter=")?)?;
    Some((not_before, not_after))
}
