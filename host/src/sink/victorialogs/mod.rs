//! The VictoriaLogs sink: records as JSON lines POSTed to
//! `/insert/jsonline`, with the field roles (`_msg`, `_time`,
//! `_stream_fields`) set in the URL so that nothing depends on the server's
//! defaults or on headers a proxy may drop.
//!
//! How VictoriaLogs answers: 200 once the lines are stored; a line that is
//! not valid JSON is skipped and the request is a 400 only when every line
//! failed; a line longer than `-insert.maxLineSizeBytes` is skipped
//! silently, which is why longer records never leave s3logd
//! (`max_record_bytes`, 256 KiB by default) but go to the dead-letter
//! output.

use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::Context;
use super::delivery::{Answer, RecordAnswer, Records, Store};
use super::http::{ANSWER_BYTES, Body, HttpClient};
use super::json::{JsonLines, MSG_KEY, TIME_KEY};
use crate::config::{Compression, VictoriaLogsConfig};

/// VictoriaLogs answers 200 and drops the body unread without this type.
const STREAM_CONTENT_TYPE: &str = "application/stream+json";

pub struct VictoriaLogs {
    client: HttpClient,
    url: Url,
    compression: Compression,
}

/// The store and its encoding (JSON lines) for `[sink.<name>]` at `path`.
pub fn build(
    config: &VictoriaLogsConfig,
    path: &str,
    context: &Context,
) -> anyhow::Result<(VictoriaLogs, JsonLines)> {
    let mut fixed = HeaderMap::new();
    fixed.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(STREAM_CONTENT_TYPE),
    );
    for (name, id) in [
        ("AccountID", config.options.account_id),
        ("ProjectID", config.options.project_id),
    ] {
        if let Some(id) = id {
            fixed.insert(name, HeaderValue::from(id));
        }
    }
    let client = HttpClient::new(&config.http, path, fixed)?;
    let stream_fields = config
        .options
        .stream_fields
        .as_ref()
        .unwrap_or(&context.stream_fields);
    let mut url = client.url(&["insert", "jsonline"]);
    {
        let mut query = url.query_pairs_mut();
        if !stream_fields.is_empty() {
            query.append_pair("_stream_fields", &stream_fields.join(","));
        }
        query.append_pair("_msg_field", MSG_KEY);
        query.append_pair("_time_field", TIME_KEY);
    }
    let store = VictoriaLogs {
        client,
        url,
        compression: config.options.compression,
    };
    Ok((store, JsonLines))
}

impl Store for VictoriaLogs {
    async fn send(&self, records: &Records) -> Answer {
        let body = Body::of_records(records, self.compression).await;
        let response = match self.client.post(&self.url, &body, ANSWER_BYTES).await {
            Ok(response) => response,
            Err(retry) => return retry,
        };
        match response.answer() {
            // A 400 means every line failed (one that VictoriaLogs could
            // read would have been stored): each is refused on its own.
            Answer::Refused { reason } => {
                Answer::PerRecord(vec![RecordAnswer::Refused(reason); records.len()])
            }
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests;
