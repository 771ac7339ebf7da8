//! One NLB access-log line: 22 space-separated fields, none quoted.

use s3logd_parser_sdk::text;
use s3logd_parser_sdk::{Field, FieldId, FieldType, Output, time};

/// Up to `sent_bytes`: the connection itself. A shorter line is cut off;
/// the TLS details after it are absent when a line does not reach them, as
/// the conventions ask for fields a line predates (21-field lines have no
/// `tls_connection_creation_time`).
const REQUIRED_FIELDS: usize = 11;

// Ids in the order of `fields()`.
const TYPE: FieldId = 0;
const VERSION: FieldId = 1;
const ELB: FieldId = 2;
const LISTENER: FieldId = 3;
const CLIENT_IP: FieldId = 4;
const CLIENT_PORT: FieldId = 5;
const DESTINATION_IP: FieldId = 6;
const DESTINATION_PORT: FieldId = 7;
const CONNECTION_TIME: FieldId = 8;
const TLS_HANDSHAKE_TIME: FieldId = 9;
const RECEIVED_BYTES: FieldId = 10;
const SENT_BYTES: FieldId = 11;
const INCOMING_TLS_ALERT: FieldId = 12;
const CHOSEN_CERT_ARN: FieldId = 13;
const CHOSEN_CERT_SERIAL: FieldId = 14;
const TLS_CIPHER: FieldId = 15;
const TLS_PROTOCOL_VERSION: FieldId = 16;
const TLS_NAMED_GROUP: FieldId = 17;
const DOMAIN_NAME: FieldId = 18;
const ALPN_FE_PROTOCOL: FieldId = 19;
const ALPN_BE_PROTOCOL: FieldId = 20;
const ALPN_CLIENT_PREFERENCE_LIST: FieldId = 21;
const TLS_CONNECTION_CREATION_TIME: FieldId = 22;

pub fn fields() -> Vec<Field> {
    use FieldType::{Float, Integer, String, Timestamp};
    vec![
        Field::new("type", String, "listener type (`tls`)"),
        Field::new("version", String, "log entry version, e.g. \"2.0\""),
        Field::new("elb", String, "load balancer resource id `net/name/id`"),
        Field::new("listener", String, "TLS listener resource id"),
        Field::new("client_ip", String, "client IP address"),
        Field::new("client_port", Integer, "client port"),
        Field::new(
            "destination_ip",
            String,
            "listener or VPC endpoint IP address",
        ),
        Field::new("destination_port", Integer, "listener or VPC endpoint port"),
        Field::new(
            "connection_time",
            Float,
            "milliseconds from the connection's start to its close",
        ),
        Field::new(
            "tls_handshake_time",
            Float,
            "milliseconds the TLS handshake took; absent when it did not complete",
        ),
        Field::new(
            "received_bytes",
            Integer,
            "bytes received from the client, after decryption",
        ),
        Field::new(
            "sent_bytes",
            Integer,
            "bytes sent to the client, before encryption",
        ),
        Field::new(
            "incoming_tls_alert",
            Integer,
            "TLS alert received from the client",
        ),
        Field::new("chosen_cert_arn", String, "ARN of the certificate served"),
        Field::new(
            "chosen_cert_serial",
            String,
            "serial number of the certificate served (reserved)",
        ),
        Field::new(
            "tls_cipher",
            String,
            "cipher suite negotiated (OpenSSL name)",
        ),
        Field::new(
            "tls_protocol_version",
            String,
            "TLS version negotiated (`tlsv12`, …)",
        ),
        Field::new("tls_named_group", String, "key exchange group negotiated"),
        Field::new(
            "domain_name",
            String,
            "SNI server name, URL-encoded as logged",
        ),
        Field::new(
            "alpn_fe_protocol",
            String,
            "application protocol negotiated with the client",
        ),
        Field::new(
            "alpn_be_protocol",
            String,
            "application protocol negotiated with the target",
        ),
        Field::new(
            "alpn_client_preference_list",
            String,
            "client's ALPN list as logged (URL-encoded, quoted, comma-separated)",
        ),
        Field::new(
            "tls_connection_creation_time",
            Timestamp,
            "when the TLS connection started",
        ),
    ]
}

pub fn parse(line: &str, out: &mut Output) -> Result<(), String> {
    // Not `text::Fields`: the ALPN preference list (`"h2","http/1.1"`) holds
    // quotes of its own that must stay, and no NLB field holds a space.
    let mut fields = line.split(' ');
    let [
        listener_type,
        version,
        time,
        elb,
        listener,
        client,
        destination,
        connection_time,
        tls_handshake_time,
        received_bytes,
        sent_bytes,
        incoming_tls_alert,
        chosen_cert_arn,
        chosen_cert_serial,
        tls_cipher,
        tls_protocol_version,
        tls_named_group,
        domain_name,
        alpn_fe_protocol,
        alpn_be_protocol,
        alpn_client_preference_list,
        tls_connection_creation_time,
    ] = text::documented_fields(&mut fields, REQUIRED_FIELDS, "an NLB access log")?;

    let end_time = time::parse_iso8601(time)
        .ok_or_else(|| format!("time {time:?} is not an ISO 8601 time"))?;
    let mut row = out.row();
    row.time(end_time)
        .str_or_dash(TYPE, listener_type)
        .str_or_dash(VERSION, version)
        .str_or_dash(ELB, elb)
        .str_or_dash(LISTENER, listener);
    if let Some((ip, port)) = text::host_port_or_dash("client:port", client)? {
        row.str(CLIENT_IP, ip).int(CLIENT_PORT, port);
    }
    if let Some((ip, port)) = text::host_port_or_dash("destination:port", destination)? {
        row.str(DESTINATION_IP, ip).int(DESTINATION_PORT, port);
    }
    for (field, name, value) in [
        (CONNECTION_TIME, "connection_time", connection_time),
        (TLS_HANDSHAKE_TIME, "tls_handshake_time", tls_handshake_time),
    ] {
        if let Some(millis) = text::float_or_dash(name, value)? {
            row.float(field, millis);
        }
    }
    for (field, name, value) in [
        (RECEIVED_BYTES, "received_bytes", received_bytes),
        (SENT_BYTES, "sent_bytes", sent_bytes),
        (INCOMING_TLS_ALERT, "incoming_tls_alert", incoming_tls_alert),
    ] {
        if let Some(number) = text::int_or_dash(name, value)? {
            row.int(field, number);
        }
    }
    row.str_or_dash(CHOSEN_CERT_ARN, chosen_cert_arn)
        .str_or_dash(CHOSEN_CERT_SERIAL, chosen_cert_serial)
        .str_or_dash(TLS_CIPHER, tls_cipher)
        .str_or_dash(TLS_PROTOCOL_VERSION, tls_protocol_version)
        .str_or_dash(TLS_NAMED_GROUP, tls_named_group)
        .str_or_dash(DOMAIN_NAME, domain_name)
        .str_or_dash(ALPN_FE_PROTOCOL, alpn_fe_protocol)
        .str_or_dash(ALPN_BE_PROTOCOL, alpn_be_protocol)
        .str_or_dash(ALPN_CLIENT_PREFERENCE_LIST, alpn_client_preference_list);
    if tls_connection_creation_time != "-" {
        let started = time::parse_iso8601(tls_connection_creation_time).ok_or_else(|| {
            format!(
                "tls_connection_creation_time {tls_connection_creation_time:?} is not an ISO 8601 time"
            )
        })?;
        row.timestamp(TLS_CONNECTION_CREATION_TIME, started);
    }
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}
