//! `[sink.<name>]` of `type = "cloudwatch_logs"`: `PutLogEvents` through
//! the AWS SDK, with credentials from aws-config's default chain.

use serde::{Deserialize, Serialize};

use super::{BatchConfig, MIB, sections};
use crate::config::validate::Problems;

#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchLogsConfig {
    pub batch: BatchConfig,
    pub options: CloudWatchLogsOptions,
}

sections!(CloudWatchLogsConfig {
    batch: BatchConfig,
    options: CloudWatchLogsOptions,
});

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct CloudWatchLogsOptions {
    /// Log group and stream of each record: `{field}` takes a record or
    /// object field (`/aws/elb/{load_balancer}`), `%Y %m %d %H` the record's
    /// UTC time. A field a record lacks becomes `-`.
    pub log_group: String,
    pub log_stream: String,
    /// Create a missing log group or stream, then send again.
    pub create_missing: bool,
    /// `raw`: the event's message is the original log line. `json`: the
    /// whole record as JSON, whose fields Logs Insights discovers.
    pub message: CloudWatchMessage,
    /// Region of the log groups; `aws.region` (or the default chain) when
    /// absent.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudWatchMessage {
    Raw,
    Json,
}

impl Default for CloudWatchLogsOptions {
    fn default() -> Self {
        CloudWatchLogsOptions {
            log_group: String::new(),
            log_stream: "s3logd".into(),
            create_missing: true,
            message: CloudWatchMessage::Json,
            region: None,
        }
    }
}

impl Default for CloudWatchLogsConfig {
    fn default() -> Self {
        CloudWatchLogsConfig {
            // One PutLogEvents call carries at most 1 MiB (26 bytes counted
            // per event) and 10,000 events.
            batch: BatchConfig {
                batch_max_bytes: MIB,
                // 256 KiB counting 26 bytes of overhead in most accounts
                // (1 MiB in some).
                max_record_bytes: 256 * 1024 - 26,
                ..BatchConfig::default()
            },
            options: CloudWatchLogsOptions::default(),
        }
    }
}

impl CloudWatchLogsConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.batch.check(path, problems);
        if self.options.log_group.is_empty() {
            problems.add(&format!("{path}.log_group"), "required");
        }
        if self.options.log_stream.is_empty() {
            problems.add(&format!("{path}.log_stream"), "must not be empty");
        }
        problems.in_range(
            &format!("{path}.max_record_bytes"),
            self.batch.max_record_bytes,
            1..=MIB - 26,
        );
    }
}
