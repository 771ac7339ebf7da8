//! `[sink.<name>]` of `type = "victorialogs"`: JSON lines to `/insert/jsonline`.

use serde::{Deserialize, Serialize};

use super::{BatchConfig, Compression, HttpConfig, allowed_compression, sections};
use crate::config::validate::Problems;

#[derive(Debug, Clone, PartialEq)]
pub struct VictoriaLogsConfig {
    pub http: HttpConfig,
    pub batch: BatchConfig,
    pub options: VictoriaLogsOptions,
}

sections!(VictoriaLogsConfig {
    http: HttpConfig,
    batch: BatchConfig,
    options: VictoriaLogsOptions,
});

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct VictoriaLogsOptions {
    pub compression: Compression,
    /// Tenant: the `AccountID` and `ProjectID` headers.
    pub account_id: Option<u32>,
    pub project_id: Option<u32>,
    /// `_stream_fields`; `enrich.stream_fields` when absent.
    pub stream_fields: Option<Vec<String>>,
}

impl Default for VictoriaLogsOptions {
    fn default() -> Self {
        VictoriaLogsOptions {
            compression: Compression::Zstd,
            account_id: None,
            project_id: None,
            stream_fields: None,
        }
    }
}

impl Default for VictoriaLogsConfig {
    fn default() -> Self {
        VictoriaLogsConfig {
            http: HttpConfig::with_timeout(30),
            batch: BatchConfig {
                // VictoriaLogs skips longer lines silently
                // (-insert.maxLineSizeBytes).
                max_record_bytes: 256 * 1024,
                ..BatchConfig::default()
            },
            options: VictoriaLogsOptions::default(),
        }
    }
}

impl VictoriaLogsConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.http.check(path, problems);
        self.batch.check(path, problems);
        use Compression::*;
        allowed_compression(
            path,
            self.options.compression,
            &[Zstd, Gzip, Snappy, None],
            problems,
        );
    }
}
