//! Decoding SQS message bodies into the S3 objects they announce.
//!
//! A body is one of the shapes AWS delivers object-created events in: an S3
//! event (possibly several `Records`), the same wrapped in an SNS envelope, an
//! EventBridge "Object Created" event, CloudTrail's own file notification, or
//! the `s3:TestEvent` sent when a notification is configured. The queue loop
//! fetches [`Notification::Objects`], deletes a [`Notification::TestEvent`],
//! and leaves an [`Unrecognized`] body to the queue's redrive policy.

mod form_key;

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

/// What a message body asks of the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to fetch, plus the names of events in the same message that
    /// announce no new object (deletions, restores...): the caller counts
    /// those and deletes the message once the objects are stored.
    Objects {
        envelope: Envelope,
        objects: Vec<ObjectRef>,
        ignored_events: Vec<String>,
    },
    /// The message S3 sends once when a notification is configured.
    TestEvent {
        bucket: Option<String>,
        via_sns: bool,
    },
}

/// How the objects were announced, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub source: Source,
    /// Inside an SNS envelope. SNS with raw message delivery leaves no trace
    /// and reads as the bare event.
    pub via_sns: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An S3 event notification (`Records[]`, eventSource `aws:s3`).
    S3Event,
    /// An EventBridge event from source `aws.s3`.
    EventBridge,
    /// CloudTrail's own `s3Bucket`/`s3ObjectKey` notification.
    CloudTrail,
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::S3Event => "s3",
            Source::EventBridge => "eventbridge",
            Source::CloudTrail => "cloudtrail",
        };
        if self.via_sns {
            write!(f, "sns/{source}")
        } else {
            f.write_str(source)
        }
    }
}

/// One object to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key to request: form-decoded for S3 and EventBridge events.
    pub key: String,
    /// The key as the notification spelled it. It differs from `key` only when
    /// it contained `+` or `%`; AWS advises retrying a missing object with it.
    pub raw_key: String,
    pub size: Option<u64>,
    pub version_id: Option<String>,
    pub region: Option<String>,
    pub event_time: Option<String>,
    /// `eventName` of an S3 event (`ObjectCreated:Put`) or `detail.reason` of
    /// an EventBridge event (`PutObject`).
    pub event_name: Option<String>,
    /// Orders events for one key; compare after right-padding with zeros.
    pub sequencer: Option<String>,
}

/// A body that is none of the known shapes, with a one-line reason that
/// never repeats the body itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognized {
    pub reason: String,
}

impl Unrecognized {
    fn new(reason: impl Into<String>) -> Self {
        Unrecognized {
            reason: reason.into(),
        }
    }

    fn context(self, context: &str) -> Self {
        Unrecognized::new(format!("{context}: {}", self.reason))
    }
}

impl fmt::Display for Unrecognized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unrecognized notification: {}", self.reason)
    }
}

impl std::error::Error for Unrecognized {}

/// Decodes one SQS message body, trying the shapes of the module's doc in
/// that order.
pub fn decode(body: &str) -> Result<Notification, Unrecognized> {
    let json: Value = serde_json::from_str(body)
        .map_err(|error| Unrecognized::new(format!("not JSON: {error}")))?;
    decode_json(&json)
}

/// [`decode`] for a body already parsed: a Lambda function is handed S3,
/// SNS and EventBridge events as JSON, not as text.
pub fn decode_json(json: &Value) -> Result<Notification, Unrecognized> {
    let object = as_object(json)?;
    if let Some(message) = sns_message(object)? {
        let inner: Value = serde_json::from_str(message)
            .map_err(|error| Unrecognized::new(format!("SNS Message is not JSON: {error}")))?;
        let inner_object = as_object(&inner).map_err(|error| error.context("SNS Message"))?;
        if sns_message(inner_object)?.is_some() {
            return Err(Unrecognized::new("SNS envelope inside an SNS envelope"));
        }
        return decode_event(&inner, true).map_err(|error| error.context("SNS Message"));
    }
    decode_event(json, false)
}

fn as_object(json: &Value) -> Result<&Map<String, Value>, Unrecognized> {
    json.as_object().ok_or_else(|| {
        let kind = match json {
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
            Value::Object(_) => unreachable!("objects are accepted above"),
        };
        Unrecognized::new(format!("JSON {kind}, not an object"))
    })
}

/// The `Message` of an SNS envelope, `None` when the body is no envelope.
fn sns_message(object: &Map<String, Value>) -> Result<Option<&str>, Unrecognized> {
    let (Some(Value::String(kind)), Some(message)) = (object.get("Type"), object.get("Message"))
    else {
        return Ok(None);
    };
    if kind != "Notification" {
        return Err(Unrecognized::new(format!(
            "SNS {kind} message, not a Notification"
        )));
    }
    match message {
        Value::String(message) => Ok(Some(message)),
        _ => Err(Unrecognized::new("SNS Message is not a string")),
    }
}

fn decode_event(json: &Value, via_sns: bool) -> Result<Notification, Unrecognized> {
    let object = as_object(json)?;
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = object
            .get("Bucket")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Ok(Notification::TestEvent { bucket, via_sns });
    }
    let (source, (objects, ignored_events)) = if let Some(records) = object.get("Records") {
        (Source::S3Event, s3_event(records)?)
    } else if object.get("source").and_then(Value::as_str) == Some("aws.s3")
        && object.contains_key("detail-type")
    {
        (Source::EventBridge, eventbridge_event(json)?)
    } else if object.contains_key("s3Bucket") && object.contains_key("s3ObjectKey") {
        (
            Source::CloudTrail,
            (cloudtrail_notification(json)?, Vec::new()),
        )
    } else {
        return Err(Unrecognized::new(
            "JSON without Records, Message, Event, detail-type or s3ObjectKey",
        ));
    };
    Ok(Notification::Objects {
        envelope: Envelope { source, via_sns },
        objects,
        ignored_events,
    })
}

type Decoded = (Vec<ObjectRef>, Vec<String>);

fn parse<'a, T: Deserialize<'a>>(value: &'a Value, what: &str) -> Result<T, Unrecognized> {
    T::deserialize(value).map_err(|error| Unrecognized::new(format!("{what}: {error}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3RecordHead<'a> {
    event_source: Option<&'a str>,
    event_version: Option<&'a str>,
    event_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    aws_region: Option<String>,
    event_time: Option<String>,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: BucketName,
    object: S3Object,
}

#[derive(Deserialize)]
struct BucketName {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Object {
    key: String,
    size: Option<u64>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

fn s3_event(records: &Value) -> Result<Decoded, Unrecognized> {
    let records = records
        .as_array()
        .ok_or_else(|| Unrecognized::new("Records is not an array"))?;
    if records.is_empty() {
        return Err(Unrecognized::new("Records is empty"));
    }
    let mut objects = Vec::new();
    let mut ignored_events = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let what = format!("Records[{index}]");
        let head: S3RecordHead = parse(record, &what)?;
        if head.event_source != Some("aws:s3") {
            return Err(Unrecognized::new(format!(
                "{what}: eventSource {:?}, not \"aws:s3\"",
                head.event_source.unwrap_or("(missing)")
            )));
        }
        // Consumers are told to check only the major version: minor versions
        // add fields.
        if let Some(version) = head.event_version
            && version.split('.').next() != Some("2")
        {
            return Err(Unrecognized::new(format!(
                "{what}: unsupported eventVersion {version:?}"
            )));
        }
        if !head.event_name.starts_with("ObjectCreated:") {
            ignored_events.push(head.event_name);
            continue;
        }
        let record: S3Record = parse(record, &what)?;
        let object = record.s3.object;
        objects.push(ObjectRef {
            bucket: record.s3.bucket.name,
            key: form_key::decode(&object.key)
                .map_err(|error| error.context(&format!("{what}: s3.object.key")))?,
            raw_key: object.key,
            size: object.size,
            version_id: object.version_id,
            region: record.aws_region,
            event_time: record.event_time,
            event_name: Some(head.event_name),
            sequencer: object.sequencer,
        });
    }
    Ok((objects, ignored_events))
}

#[derive(Deserialize)]
struct EventBridgeEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    region: Option<String>,
    time: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: BucketName,
    object: EventBridgeObject,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeObject {
    key: String,
    size: Option<u64>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

fn eventbridge_event(json: &Value) -> Result<Decoded, Unrecognized> {
    let event: EventBridgeEvent = parse(json, "EventBridge event")?;
    if event.detail_type != "Object Created" {
        return Ok((Vec::new(), vec![event.detail_type]));
    }
    let detail = json
        .get("detail")
        .ok_or_else(|| Unrecognized::new("EventBridge event without detail"))?;
    let detail: EventBridgeDetail = parse(detail, "EventBridge detail")?;
    // AWS does not say whether this key is encoded; AWS's own libraries
    // decode it like an S3 event key (URL-encoded, `+` for a space).
    let key = form_key::decode(&detail.object.key)
        .map_err(|error| error.context("EventBridge detail.object.key"))?;
    let object = ObjectRef {
        bucket: detail.bucket.name,
        key,
        raw_key: detail.object.key,
        size: detail.object.size,
        version_id: detail.object.version_id,
        region: event.region,
        event_time: event.time,
        event_name: detail.reason,
        sequencer: detail.object.sequencer,
    };
    Ok((vec![object], Vec::new()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudTrailNotification {
    s3_bucket: String,
    s3_object_key: Vec<String>,
}

fn cloudtrail_notification(json: &Value) -> Result<Vec<ObjectRef>, Unrecognized> {
    let notification: CloudTrailNotification = parse(json, "CloudTrail notification")?;
    let bucket = notification.s3_bucket;
    let objects = notification
        .s3_object_key
        .into_iter()
        .map(|key| ObjectRef {
            bucket: bucket.clone(),
            raw_key: key.clone(),
            key,
            size: None,
            version_id: None,
            region: None,
            event_time: None,
            event_name: None,
            sequencer: None,
        })
        .collect();
    Ok(objects)
}

#[cfg(test)]
mod tests;
