//! `[sink.<name>]` of `type = "loki"`: JSON pushes to `/loki/api/v1/push`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BatchConfig, Compression, HttpConfig, MIB, allowed_compression, sections};
use crate::config::validate::Problems;

#[derive(Debug, Clone, PartialEq)]
pub struct LokiConfig {
    pub http: HttpConfig,
    pub batch: BatchConfig,
    pub options: LokiOptions,
}

sections!(LokiConfig {
    http: HttpConfig,
    batch: BatchConfig,
    options: LokiOptions,
});

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct LokiOptions {
    /// `X-Scope-OrgID`, for a multi-tenant Loki.
    pub tenant_id: Option<String>,
    /// Record and object fields that become stream labels (low cardinality
    /// only); `enrich.stream_fields` when absent.
    pub labels: Option<Vec<String>>,
    /// Labels with fixed values on every stream.
    pub static_labels: BTreeMap<String, String>,
    /// `json`: the line is the whole record as JSON. `raw`: the line is the
    /// original log line and the parsed fields travel as structured
    /// metadata (Loki 3 with `allow_structured_metadata`).
    pub line: LokiLine,
    pub compression: Compression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiLine {
    Json,
    Raw,
}

impl Default for LokiOptions {
    fn default() -> Self {
        LokiOptions {
            tenant_id: None,
            labels: None,
            static_labels: BTreeMap::new(),
            line: LokiLine::Json,
            compression: Compression::Gzip,
        }
    }
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            http: HttpConfig::with_timeout(30),
            // Promtail and Grafana Agent push about 1 MiB at a time; Loki's
            // default gRPC and push limits sit a few times above.
            batch: BatchConfig {
                batch_max_bytes: MIB,
                // Loki's -distributor.max-line-size.
                max_record_bytes: 256 * 1024,
                ..BatchConfig::default()
            },
            options: LokiOptions::default(),
        }
    }
}

impl LokiConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.http.check(path, problems);
        self.batch.check(path, problems);
        use Compression::*;
        allowed_compression(path, self.options.compression, &[None, Gzip], problems);
        for name in self.options.static_labels.keys() {
            if !is_label_name(name) {
                problems.add(
                    &format!("{path}.static_labels"),
                    format_args!("{name:?} is not a Loki label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                );
            }
        }
    }
}

/// Loki's (and Prometheus') label name syntax.
pub fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
