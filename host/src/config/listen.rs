//! `[listen]`: the TCP listener of `s3logd listen`, which reads JSON objects
//! from clients (s3logger's job) and hands them to the sinks.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::MIB;
use super::validate::Problems;

/// The `time_format` values the ndjson parser reads (the listener's
/// tests check that the parser takes every one of them).
pub const TIME_FORMATS: [&str; 6] = ["rfc3339", "unix_s", "unix_ms", "unix_us", "unix_ns", "auto"];

/// The most one JSON object may be: the encoded record must stay far below
/// the 4 GiB a sink's buffer can hold.
const MAX_OBJECT_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// A socket address once the configuration is loaded.
    pub address: String,
    /// A connection sending a larger object is closed.
    pub max_object_bytes: u64,
    /// Connections served at once; past it, new ones wait to be accepted.
    pub max_connections: u32,
    /// PEM certificate chain; with `tls_key`, connections speak TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Networks (CIDRs such as `10.0.0.0/8`, or single addresses) clients
    /// may connect from; empty: any.
    pub allowed_networks: Vec<String>,
    /// The field holding a record's time (a dotted path reaches into
    /// nested objects); absent: the first present of `time`, `timestamp`,
    /// `ts`, `@timestamp`, as the ndjson parser does. Without one, the
    /// record's time is when it was received.
    pub time_field: Option<String>,
    /// One of [`TIME_FORMATS`].
    pub time_format: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            address: "127.0.0.1:8080".to_owned(),
            max_object_bytes: 4 * MIB,
            max_connections: 1024,
            tls_cert: None,
            tls_key: None,
            allowed_networks: Vec::new(),
            time_field: None,
            time_format: "auto".to_owned(),
        }
    }
}

impl ListenConfig {
    pub(super) fn validate(&self, problems: &mut Problems) {
        if self.address.parse::<SocketAddr>().is_err() {
            problems.add(
                "listen.address",
                format_args!(
                    "{:?} is not a socket address such as 0.0.0.0:8080",
                    self.address
                ),
            );
        }
        problems.in_range(
            "listen.max_object_bytes",
            self.max_object_bytes,
            1..=MAX_OBJECT_BYTES,
        );
        problems.in_range(
            "listen.max_connections",
            self.max_connections,
            1..=1_000_000,
        );
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => problems.add("listen.tls_key", "required with listen.tls_cert"),
            (None, Some(_)) => problems.add("listen.tls_cert", "required with listen.tls_key"),
            _ => {}
        }
        for (at, network) in self.allowed_networks.iter().enumerate() {
            if parse_network(network).is_none() {
                problems.add(
                    &format!("listen.allowed_networks[{at}]"),
                    format_args!("{network:?} is neither a CIDR such as 10.0.0.0/8 nor an address"),
                );
            }
        }
        if self.time_field.as_deref() == Some("") {
            problems.add("listen.time_field", "must not be empty");
        }
        if !TIME_FORMATS.contains(&self.time_format.as_str()) {
            problems.add(
                "listen.time_format",
                format_args!(
                    "{:?} is not one of {}",
                    self.time_format,
                    TIME_FORMATS.join(", ")
                ),
            );
        }
    }
}

/// A CIDR, or a single address as the network of only itself.
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
