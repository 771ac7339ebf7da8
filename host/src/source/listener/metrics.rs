//! The listener's counters, rendered after the collector's on `/metrics`.

use std::fmt::Write as _;

use crate::metrics::Value;

/// Why a connection was closed by the listener rather than by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not a stream of JSON objects (or one cut short at its end).
    InvalidJson,
    /// An object over `listen.max_object_bytes`.
    TooLarge,
}

#[derive(Default)]
pub struct ListenerMetrics {
    pub connections_total: Value,
    pub connections_open: Value,
    /// Refused by `listen.allowed_networks`.
    pub connections_denied: Value,
    pub tls_failures: Value,
    pub objects: Value,
    pub bytes: Value,
    invalid_json: Value,
    too_large: Value,
    /// Objects the parser gave no record for (a time that does not parse),
    /// written to the dead-letter output.
    pub objects_rejected: Value,
    /// Records a sink failed for good (or, at the end of the grace period,
    /// abandoned): logged, counted, not stored.
    pub records_failed: Value,
}

impl ListenerMetrics {
    pub fn malformed(&self, why: Malformed) {
        match why {
            Malformed::InvalidJson => self.invalid_json.inc(),
            Malformed::TooLarge => self.too_large.inc(),
        }
    }

    pub fn malformed_count(&self, why: Malformed) -> u64 {
        match why {
            Malformed::InvalidJson => self.invalid_json.get(),
            Malformed::TooLarge => self.too_large.get(),
        }
    }

    /// Appends the Prometheus text of every listener metric to `out`.
    pub fn render(&self, out: &mut String) {
        let series: [(&str, &str, &str, u64); 8] = [
            (
                "s3logd_listen_connections_total",
                "counter",
                "Connections accepted.",
                self.connections_total.get(),
            ),
            (
                "s3logd_listen_connections_open",
                "gauge",
                "Connections being read.",
                self.connections_open.get(),
            ),
            (
                "s3logd_listen_connections_denied_total",
                "counter",
                "Connections refused by listen.allowed_networks.",
                self.connections_denied.get(),
            ),
            (
                "s3logd_listen_tls_failures_total",
                "counter",
                "Connections whose TLS handshake failed.",
                self.tls_failures.get(),
            ),
            (
                "s3logd_listen_objects_total",
                "counter",
                "JSON objects read from connections.",
                self.objects.get(),
            ),
            (
                "s3logd_listen_bytes_total",
                "counter",
                "Bytes read from connections (after TLS).",
                self.bytes.get(),
            ),
            (
                "s3logd_listen_objects_rejected_total",
                "counter",
                "Objects that gave no record (their time does not parse), written to the dead-letter output.",
                self.objects_rejected.get(),
            ),
            (
                "s3logd_listen_records_failed_total",
                "counter",
                "Records a sink failed for good or shutdown abandoned.",
                self.records_failed.get(),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "s3logd_listen_malformed_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections closed for malformed input, by reason."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (reason, why) in [
            ("invalid_json", Malformed::InvalidJson),
            ("too_large", Malformed::TooLarge),
        ] {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{reason}\"}} {}",
                self.malformed_count(why)
            );
        }
    }
}
