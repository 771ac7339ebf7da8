//! `[sink.<name>]` of `type = "elasticsearch"`: the `_bulk` API of
//! Elasticsearch and OpenSearch (Amazon OpenSearch Service and Serverless
//! through SigV4).

use serde::{Deserialize, Serialize};

use super::{BatchConfig, Compression, HttpConfig, MIB, allowed_compression, sections};
use crate::config::Secret;
use crate::config::validate::Problems;

#[derive(Debug, Clone, PartialEq)]
pub struct ElasticsearchConfig {
    pub http: HttpConfig,
    pub batch: BatchConfig,
    pub auth: ElasticsearchAuth,
    pub options: ElasticsearchOptions,
}

sections!(ElasticsearchConfig {
    http: HttpConfig,
    batch: BatchConfig,
    auth: ElasticsearchAuth,
    options: ElasticsearchOptions,
});

/// Credentials beyond basic and bearer: an API key, or AWS SigV4 signing
/// with credentials from aws-config's default chain.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ElasticsearchAuth {
    /// Sent as `Authorization: ApiKey <api_key>` (the encoded form
    /// Elasticsearch hands out).
    pub api_key: Option<Secret>,
    /// `es` (Amazon OpenSearch Service) or `aoss` (OpenSearch Serverless);
    /// absent: requests are not signed.
    pub aws_service: Option<String>,
    /// The domain's region; `aws.region` (or the default chain) when absent.
    pub aws_region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ElasticsearchOptions {
    /// Index (or data stream) name: `%Y %m %d %H` from the record's time
    /// (UTC) and `{field}` from its fields.
    pub index: String,
    /// `create` (the default; what data streams take) or `index`.
    pub action: BulkAction,
    /// A `_id` derived from the object and the record's position in it, so
    /// that a redelivered object adds no documents. Off: Elasticsearch
    /// assigns ids, and redelivery adds duplicates.
    pub deterministic_ids: bool,
    /// Names of the record's time and raw line in the document.
    pub timestamp_field: String,
    pub message_field: String,
    /// An ingest pipeline for every document.
    pub pipeline: Option<String>,
    pub compression: Compression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    Create,
    Index,
}

impl Default for ElasticsearchOptions {
    fn default() -> Self {
        ElasticsearchOptions {
            index: "s3logd-%Y.%m.%d".into(),
            action: BulkAction::Create,
            deterministic_ids: true,
            timestamp_field: "@timestamp".into(),
            message_field: "message".into(),
            pipeline: None,
            compression: Compression::None,
        }
    }
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            http: HttpConfig::with_timeout(60),
            // Elastic's guidance is bulk requests of 5–15 MB.
            batch: BatchConfig {
                batch_max_bytes: 5 * MIB,
                // Well within http.max_content_length (100 MB).
                max_record_bytes: 64 * MIB,
                ..BatchConfig::default()
            },
            auth: ElasticsearchAuth::default(),
            options: ElasticsearchOptions::default(),
        }
    }
}

impl ElasticsearchConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.http.check(path, problems);
        self.batch.check(path, problems);
        use Compression::*;
        allowed_compression(path, self.options.compression, &[None, Gzip], problems);
        let credentials = [
            self.http.has_credentials() || self.http.username.is_some(),
            self.auth.api_key.is_some(),
            self.auth.aws_service.is_some(),
        ];
        if credentials.iter().filter(|&&set| set).count() > 1 {
            problems.add(
                &format!("{path}.api_key"),
                "use one of username/password, bearer_token, api_key and aws_service",
            );
        }
        if let Some(service) = &self.auth.aws_service
            && !matches!(service.as_str(), "es" | "aoss")
        {
            problems.add(
                &format!("{path}.aws_service"),
                format_args!("{service:?} is neither \"es\" nor \"aoss\""),
            );
        }
        if self.options.index.is_empty() {
            problems.add(&format!("{path}.index"), "required");
        }
        for (key, value) in [
            ("timestamp_field", &self.options.timestamp_field),
            ("message_field", &self.options.message_field),
        ] {
            if value.is_empty() {
                problems.add(&format!("{path}.{key}"), "must not be empty");
            }
        }
    }
}
