//! One NLB access-log line: 22 space-separated fields, none quoted.

use s3logd_parser_sdk::{Output, text, time};

/// Up to `sent_bytes`: the connection itself. A shorter line is cut off;
/// the TLS details after it are absent when a line does not reach them, as
/// the conventions ask for fields a line predates (21-field lines have no
/// `tls_connection_creation_time`).
const REQUIRED_FIELDS: usize = 11;

s3logd_parser_sdk::fields! {
    /// The static fields, in record order (`time` is the record time).
    pub mod field {
        TYPE = "type": String, "listener type (`tls`)";
        VERSION = "version": String, "log entry version, e.g. \"2.0\"";
        ELB = "elb": String, "load balancer resource id `net/name/id`";
        LISTENER = "listener": String, "TLS listener resource id";
        CLIENT_IP = "client_ip": String, "client IP address";
        CLIENT_PORT = "client_port": Integer, "client port";
        DESTINATION_IP = "destination_ip": String, "listener or VPC endpoint IP address";
        DESTINATION_PORT = "destination_port": Integer, "listener or VPC endpoint port";
        CONNECTION_TIME = "connection_time": Float, "milliseconds from the connection's start to its close";
        TLS_HANDSHAKE_TIME = "tls_handshake_time": Float, "milliseconds the TLS handshake took; absent when it did not complete";
        RECEIVED_BYTES = "received_bytes": Integer, "bytes received from the client, after decryption";
        SENT_BYTES = "sent_bytes": Integer, "bytes sent to the client, before encryption";
        INCOMING_TLS_ALERT = "incoming_tls_alert": Integer, "TLS alert received from the client";
        CHOSEN_CERT_ARN = "chosen_cert_arn": String, "ARN of the certificate served";
        CHOSEN_CERT_SERIAL = "chosen_cert_serial": String, "serial number of the certificate served (reserved)";
        TLS_CIPHER = "tls_cipher": String, "cipher suite negotiated (OpenSSL name)";
        TLS_PROTOCOL_VERSION = "tls_protocol_version": String, "TLS version negotiated (`tlsv12`, …)";
        TLS_NAMED_GROUP = "tls_named_group": String, "key exchange group negotiated";
        DOMAIN_NAME = "domain_name": String, "SNI server name, URL-encoded as logged";
        ALPN_FE_PROTOCOL = "alpn_fe_protocol": String, "application protocol negotiated with the client";
        ALPN_BE_PROTOCOL = "alpn_be_protocol": String, "application protocol negotiated with the target";
        ALPN_CLIENT_PREFERENCE_LIST = "alpn_client_preference_list": StringList, "protocols the client offered, in its order of preference, URL-encoded as logged";
        TLS_CONNECTION_CREATION_TIME = "tls_connection_creation_time": Timestamp, "when the TLS connection started";
    }
}

pub fn parse(line: &str, out: &mut Output) -> Result<(), String> {
    // Not `text::Fields`: no NLB field holds a space, and the quotes of the
    // ALPN preference list (`"h2","http/1.1"`) are its items', not a field's.
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
        .str_or_dash(field::TYPE, listener_type)
        .str_or_dash(field::VERSION, version)
        .str_or_dash(field::ELB, elb)
        .str_or_dash(field::LISTENER, listener);
    if let Some((ip, port)) = text::host_port_or_dash("client:port", client)? {
        row.str(field::CLIENT_IP, ip).int(field::CLIENT_PORT, port);
    }
    if let Some((ip, port)) = text::host_port_or_dash("destination:port", destination)? {
        row.str(field::DESTINATION_IP, ip)
            .int(field::DESTINATION_PORT, port);
    }
    for (id, value) in [
        (field::CONNECTION_TIME, connection_time),
        (field::TLS_HANDSHAKE_TIME, tls_handshake_time),
    ] {
        row.float_opt(id, text::float_or_dash(field::name(id), value)?);
    }
    for (id, value) in [
        (field::RECEIVED_BYTES, received_bytes),
        (field::SENT_BYTES, sent_bytes),
        (field::INCOMING_TLS_ALERT, incoming_tls_alert),
    ] {
        row.int_opt(id, text::int_or_dash(field::name(id), value)?);
    }
    row.str_or_dash(field::CHOSEN_CERT_ARN, chosen_cert_arn)
        .str_or_dash(field::CHOSEN_CERT_SERIAL, chosen_cert_serial)
        .str_or_dash(field::TLS_CIPHER, tls_cipher)
        .str_or_dash(field::TLS_PROTOCOL_VERSION, tls_protocol_version)
        .str_or_dash(field::TLS_NAMED_GROUP, tls_named_group)
        .str_or_dash(field::DOMAIN_NAME, domain_name)
        .str_or_dash(field::ALPN_FE_PROTOCOL, alpn_fe_protocol)
        .str_or_dash(field::ALPN_BE_PROTOCOL, alpn_be_protocol);
    if alpn_client_preference_list != "-" {
        row.str_list(
            field::ALPN_CLIENT_PREFERENCE_LIST,
            alpn_protocols(alpn_client_preference_list),
        );
    }
    if tls_connection_creation_time != "-" {
        let started = time::parse_iso8601(tls_connection_creation_time).ok_or_else(|| {
            format!(
                "tls_connection_creation_time {tls_connection_creation_time:?} is not an ISO 8601 time"
            )
        })?;
        row.timestamp(field::TLS_CONNECTION_CREATION_TIME, started);
    }
    for extra in fields {
        row.extra(extra);
    }
    Ok(())
}

/// The protocols of `"h2","http%2F1.1"`: each quoted, comma-separated.
/// AWS cuts the list at 256 bytes, so the last one may have lost its
/// closing quote, or all but its opening one.
fn alpn_protocols(list: &str) -> impl Iterator<Item = &str> {
    text::split_ascii(list, b',')
        .map(|quoted| quoted.trim_matches('"'))
        .filter(|protocol| !protocol.is_empty())
}
