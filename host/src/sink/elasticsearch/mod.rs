//! The Elasticsearch / OpenSearch sink: records as `_bulk` NDJSON, an
//! action line and a document line each, with a `_id` derived from the
//! object and the record's place in it so that a redelivered object adds
//! no documents (a `create` answered 409 is a record already stored).
//!
//! How `_bulk` answers: 200 even when items failed, with `errors` set and
//! one item per action in order. Items answered 429 or 5xx are sent again
//! alone; other item failures (a mapping error, a bad index name) go to the
//! dead-letter output. A whole request answered 429 or 5xx is sent again,
//! 413 split, 401/403/404 fails. Amazon OpenSearch Service and Serverless
//! take SigV4-signed requests (`aws_service`).

mod answer;
mod encoding;

use anyhow::Context as _;
use aws_credential_types::provider::SharedCredentialsProvider;
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::Context;
use super::delivery::{Answer, Records, Store};
use super::http::{ANSWER_BYTES, Body, HttpClient, Signer, sensitive};
use crate::config::{BulkAction, Compression, ElasticsearchConfig};

pub use encoding::BulkEncoding;

/// Only what the answer is read for: whether and why each item failed.
/// Percent-encoded strictly (`,` and `*` too), as SigV4 canonicalizes a
/// query, so that what is signed is what is sent.
const FILTER_PATH: &str =
    "errors%2Citems.%2A.status%2Citems.%2A.error.type%2Citems.%2A.error.reason";
/// Room in the answer per item, beyond [`ANSWER_BYTES`]: a failed item's
/// type and reason are a few hundred bytes.
const ANSWER_BYTES_PER_ITEM: usize = 1024;

pub struct Elasticsearch {
    client: HttpClient,
    url: Url,
    compression: Compression,
    action: BulkAction,
}

/// The store and its encoding for `[sink.<name>]` at `path`.
pub fn build(
    config: &ElasticsearchConfig,
    path: &str,
    context: &Context,
) -> anyhow::Result<(Elasticsearch, BulkEncoding)> {
    let mut fixed = HeaderMap::new();
    fixed.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(key) = &config.auth.api_key {
        fixed.insert(
            header::AUTHORIZATION,
            sensitive(&format!("ApiKey {}", key.expose()), || {
                format!("{path}.api_key holds characters not allowed in a header")
            })?,
        );
    }
    let mut client = HttpClient::new(&config.http, path, fixed)?;
    if let Some(service) = &config.auth.aws_service {
        let region = config
            .auth
            .aws_region
            .clone()
            .or_else(|| context.aws.region().map(ToString::to_string))
            .with_context(|| {
                format!("{path}.aws_region: required to sign (no region is configured)")
            })?;
        let provider: SharedCredentialsProvider =
            context.aws.credentials_provider().with_context(|| {
                format!("{path}.aws_service: no AWS credentials provider to sign with")
            })?;
        client = client.signed_by(Signer::new(service, &region, provider));
    }
    let mut url = client.url(&["_bulk"]);
    let mut query = format!("filter_path={FILTER_PATH}");
    if let Some(pipeline) = &config.options.pipeline {
        query.push_str("&pipeline=");
        query.push_str(&strictly_encoded(pipeline));
    }
    url.set_query(Some(&query));
    let encoding = BulkEncoding::new(&config.options)
        .map_err(|reason| anyhow::anyhow!("{path}.index: {reason}"))?;
    let store = Elasticsearch {
        client,
        url,
        compression: config.options.compression,
        action: config.options.action,
    };
    Ok((store, encoding))
}

/// `text` with every byte but RFC 3986's unreserved ones percent-encoded.
fn strictly_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Store for Elasticsearch {
    async fn send(&self, records: &Records) -> Answer {
        let body = Body::of_records(records, self.compression).await;
        let answer_bytes = ANSWER_BYTES + ANSWER_BYTES_PER_ITEM * records.len();
        let response = match self.client.post(&self.url, &body, answer_bytes).await {
            Ok(response) => response,
            Err(retry) => return retry,
        };
        if response.status.is_success() {
            answer::read(&response.body, records.len(), self.action)
        } else {
            response.answer()
        }
    }
}

#[cfg(test)]
mod tests;
