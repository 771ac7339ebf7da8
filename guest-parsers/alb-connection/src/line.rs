//! One ALB connection-log line: 15 space-separated fields (12 in older
//! lines), the certificate subject quoted.

use s3logd_parser_sdk::text::{self, Fields};
use s3logd_parser_sdk::{Output, time};

/// Up to `conn_trace_id`, the form of the documentation's examples; the
/// three later fields are absent when a line does not reach them.
const REQUIRED_FIELDS: usize = 12;

s3logd_parser_sdk::fields! {
    /// The static fields, in record order (`timestamp` is the record time).
    pub mod field {
        CLIENT_IP = "client_ip": String, "client IP address";
        CLIENT_PORT = "client_port": Integer, "client port";
        LISTENER_PORT = "listener_port": Integer, "listener port that took the connection";
        TLS_PROTOCOL = "tls_protocol": String, "TLS protocol negotiated";
        TLS_CIPHER = "tls_cipher": String, "TLS cipher negotiated";
        TLS_HANDSHAKE_LATENCY = "tls_handshake_latency": Float, "seconds the TLS handshake took; absent when not TLS or it failed";
        LEAF_CLIENT_CERT_SUBJECT = "leaf_client_cert_subject": String, "subject of the client's leaf certificate (mTLS)";
        LEAF_CLIENT_CERT_VALIDITY = "leaf_client_cert_validity": String, "`NotBefore=…;NotAfter=…` as logged";
        LEAF_CLIENT_CERT_NOT_BEFORE = "leaf_client_cert_not_before": Timestamp, "start of the client certificate's validity";
        LEAF_CLIENT_CERT_NOT_AFTER = "leaf_client_cert_not_after": Timestamp, "end of the client certificate's validity";
        LEAF_CLIENT_CERT_SERIAL_NUMBER = "leaf_client_cert_serial_number": String, "serial number of the client's leaf certificate";
        TLS_VERIFY_STATUS = "tls_verify_status": String, "`Success` or `Failed:<error code>`";
        CONN_TRACE_ID = "conn_trace_id": String, "connection id, also in the access log's conn_trace_id";
        TLS_KEYEXCHANGE = "tls_keyexchange": String, "key exchange group negotiated";
        ELB = "elb": String, "load balancer resource id `app/name/id`";
        IP_ADDRESS = "ip_address": String, "IP address of the load balancer node";
    }
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
    row.time(time).str_or_dash(field::CLIENT_IP, client_ip);
    for (id, value) in [
        (field::CLIENT_PORT, client_port),
        (field::LISTENER_PORT, listener_port),
    ] {
        row.int_opt(id, text::int_or_dash(field::name(id), value)?);
    }
    row.str_or_dash(field::TLS_PROTOCOL, tls_protocol)
        .str_or_dash(field::TLS_CIPHER, tls_cipher)
        .float_opt(
            field::TLS_HANDSHAKE_LATENCY,
            text::float_or_dash(
                field::name(field::TLS_HANDSHAKE_LATENCY),
                tls_handshake_latency,
            )?,
        )
        .str_or_dash(field::LEAF_CLIENT_CERT_SUBJECT, leaf_client_cert_subject)
        .str_or_dash(field::LEAF_CLIENT_CERT_VALIDITY, leaf_client_cert_validity);
    // The raw value is kept either way, so a validity in another shape
    // loses nothing and is not worth failing the connection's record.
    if let Some((not_before, not_after)) = validity(leaf_client_cert_validity) {
        row.timestamp(field::LEAF_CLIENT_CERT_NOT_BEFORE, not_before)
            .timestamp(field::LEAF_CLIENT_CERT_NOT_AFTER, not_after);
    }
    row.str_or_dash(
        field::LEAF_CLIENT_CERT_SERIAL_NUMBER,
        leaf_client_cert_serial_number,
    )
    .str_or_dash(field::TLS_VERIFY_STATUS, tls_verify_status)
    .str_or_dash(field::CONN_TRACE_ID, conn_trace_id)
    .str_or_dash(field::TLS_KEYEXCHANGE, tls_keyexchange)
    .str_or_dash(field::ELB, elb)
    .str_or_dash(field::IP_ADDRESS, ip_address);
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
