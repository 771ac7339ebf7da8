//! The Loki sink: records pushed as JSON to `/loki/api/v1/push`, in
//! streams keyed by labels from low-cardinality fields, each entry
//! `[nanosecond-timestamp, line]`; the line is the record as JSON, or the
//! raw line with the parsed fields as structured metadata.
//!
//! How Loki answers: 204 once stored. A 400 (a line too long, a time too
//! old, bad labels) stores the valid entries and names the others: the
//! request is halved until each refused entry stands alone and goes to the
//! dead-letter output; the valid entries of the halves are sent again
//! (Loki's own deduplication of identical entries is not relied on, nor
//! tested here). 429 and 5xx are retried.

mod encoding;

use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::Context;
use super::delivery::{Answer, Records, Store};
use super::http::{ANSWER_BYTES, Body, HttpClient, sensitive};
use crate::config::{Compression, LokiConfig};

pub use encoding::LokiEncoding;

pub struct Loki {
    client: HttpClient,
    url: Url,
    compression: Compression,
}

/// The store and its encoding for `[sink.<name>]` at `path`.
pub fn build(
    config: &LokiConfig,
    path: &str,
    context: &Context,
) -> anyhow::Result<(Loki, LokiEncoding)> {
    let mut fixed = HeaderMap::new();
    fixed.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(tenant) = &config.options.tenant_id {
        fixed.insert(
            "X-Scope-OrgID",
            sensitive(tenant, || {
                format!("{path}.tenant_id holds characters not allowed in a header")
            })?,
        );
    }
    let client = HttpClient::new(&config.http, path, fixed)?;
    let url = client.url(&["loki", "api", "v1", "push"]);
    let labels = config
        .options
        .labels
        .clone()
        .unwrap_or_else(|| context.stream_fields.clone());
    let encoding = LokiEncoding::new(labels, &config.options.static_labels, config.options.line);
    let store = Loki {
        client,
        url,
        compression: config.options.compression,
    };
    Ok((store, encoding))
}

impl Store for Loki {
    async fn send(&self, records: &Records) -> Answer {
        let body = Body::of_bytes(encoding::push_body(records), self.compression).await;
        match self.client.post(&self.url, &body, ANSWER_BYTES).await {
            Ok(response) => response.answer(),
            Err(retry) => retry,
        }
    }
}

#[cfg(test)]
mod tests;
