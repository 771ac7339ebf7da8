//! `--enqueue`: instead of processing the listed objects, announce each to
//! the collectors' queue as S3 itself would (an `ObjectCreated:Put` event,
//! its key form-encoded), ten to a `SendMessageBatch`, so that every
//! `s3logd run` on the queue shares the backfill with the live path's
//! heartbeat, retries and dead-letter queue.

use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::json;

use crate::errors::error_chain;
use crate::time::format_time;

/// Most entries SQS takes in one batch.
pub const BATCH: usize = 10;
const ATTEMPTS: u32 = 4;

/// One object to announce.
#[derive(Debug, Clone)]
pub struct Announced {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<i64>,
}

/// S3 event notifications spell keys with form encoding: `+` for a space,
/// `%XX` for bytes other than unreserved ones and `/`.
pub fn form_encode(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            _ => write!(encoded, "%{byte:02X}").expect("writing to a String"),
        }
    }
    encoded
}

/// The message body for one object: an S3 event with one record.
pub fn event_body(object: &Announced, region: &str) -> String {
    let time = object.last_modified.map_or_else(
        || "1970-01-01T00:00:00.000Z".to_owned(),
        |time| format_time(time).replace('Z', ".000Z"),
    );
    let mut s3_object = json!({
        "key": form_encode(&object.key),
        "size": object.size,
        "sequencer": format!("{:016X}", object.last_modified.unwrap_or(0)),
    });
    if let Some(etag) = &object.etag {
        s3_object["eTag"] = json!(etag);
    }
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "s3logd-import"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "s3logd-import",
                "bucket": {
                    "name": object.bucket,
                    "ownerIdentity": {"principalId": "s3logd-import"},
                    "arn": format!("arn:aws:s3:::{}", object.bucket),
                },
                "object": s3_object,
            }
        }]
    })
    .to_string()
}

/// Sends one message per object; returns, per object in order, `Ok` or why
/// its message could not be sent. Entries SQS refused are sent again a few
/// times before they count as failed.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    region: &str,
    objects: &[Announced],
) -> Vec<Result<(), String>> {
    let mut results: Vec<Result<(), String>> = vec![Err("not sent".to_owned()); objects.len()];
    let mut pending: Vec<usize> = (0..objects.len()).collect();
    let mut backoff = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let entries: Vec<SendMessageBatchRequestEntry> = pending
            .iter()
            .map(|&at| {
                SendMessageBatchRequestEntry::builder()
                    .id(at.to_string())
                    .message_body(event_body(&objects[at], region))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        match sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                for sent in output.successful {
                    if let Ok(at) = sent.id.parse::<usize>()
                        && at < results.len()
                    {
                        results[at] = Ok(());
                    }
                }
                for refused in output.failed {
                    if let Ok(at) = refused.id.parse::<usize>()
                        && at < results.len()
                    {
                        let reason = refused.message.unwrap_or(refused.code);
                        results[at] = Err(format!("SendMessageBatch refused it: {reason}"));
                    }
                }
            }
            Err(error) => {
                let reason = format!("SendMessageBatch failed: {}", error_chain(&error));
                for &at in &pending {
                    results[at] = Err(reason.clone());
                }
            }
        }
        pending.retain(|&at| results[at].is_err());
        if pending.is_empty() || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{self, Notification};

    #[test]
    fn announced_objects_decode_as_s3_events_with_their_exact_keys() {
        let object = Announced {
            bucket: "logs".into(),
            key: "AWSLogs/1/x/us-east-1/2024/05/01/a b+c%d:é.log.gz".into(),
            size: 42,
            etag: Some("abc".into()),
            last_modified: Some(1_714_521_600),
        };
        let body = event_body(&object, "us-east-1");
        assert!(body.contains("a+b%2Bc%25d%3A%C3%A9.log.gz"), "{body}");
        let Notification::Objects { objects, .. } = notification::decode(&body).unwrap() else {
            panic!("not an object notification: {body}");
        };
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].bucket, "logs");
        assert_eq!(objects[0].key, object.key);
        assert_eq!(objects[0].size, Some(42));
        assert_eq!(
            objects[0].event_time.as_deref(),
            Some("2024-05-01T00:00:00.000Z")
        );
    }
}
