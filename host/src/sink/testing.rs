//! Helpers for the sinks' tests: one sink started from its settings, with a
//! dead-letter file of its own, and records to hand it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use s3logd_rows::{FieldType, Value};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::dead_letter::DeadLetter;
use super::delivery::{Delivery, Encoded, Origin, SinkError};
use super::{Context, ObjectContext, Sink, Sinks};
use crate::config::SinkConfig;
use crate::parse::{Field, Record};

/// Generous: only a hang should hit it.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct TestSink {
    pub sink: Sink,
    dead_letters: PathBuf,
    _dir: TempDir,
}

impl TestSink {
    /// Starts `config` as the sink `name` on the current runtime.
    pub fn start(name: &str, config: SinkConfig) -> TestSink {
        Self::try_start(name, config).expect("the sink starts")
    }

    pub fn try_start(name: &str, config: SinkConfig) -> anyhow::Result<TestSink> {
        Self::try_start_with_aws(name, config, test_aws_config(None))
    }

    /// [`TestSink::start`] with `aws` as the sinks' AWS configuration
    /// (moto's endpoint, say).
    pub fn start_with_aws(name: &str, config: SinkConfig, aws: aws_config::SdkConfig) -> TestSink {
        Self::try_start_with_aws(name, config, aws).expect("the sink starts")
    }

    pub fn try_start_with_aws(
        name: &str,
        config: SinkConfig,
        aws: aws_config::SdkConfig,
    ) -> anyhow::Result<TestSink> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let dead_letters = dir.path().join("dead-letter.ndjson");
        let context = Context {
            stream_fields: ["log_type", "account"].map(String::from).to_vec(),
            aws,
            dead_letter: DeadLetter::file(&dead_letters),
            cancel: CancellationToken::new(),
        };
        let mut sinks = Sinks::start(&BTreeMap::from([(name.to_owned(), config)]), &context)?;
        Ok(TestSink {
            sink: sinks.sinks.pop().expect("one sink"),
            dead_letters,
            _dir: dir,
        })
    }

    /// Hands over `lines`, each ending in `\n`, one record each, numbered
    /// from line `first_line`.
    pub async fn send_lines(&self, lines: &[u8], first_line: u64) -> Delivery {
        let mut encoded = Encoded::new(self.sink.handle.buffer(), Arc::new(origin("lines")));
        for (n, line) in lines.split_inclusive(|&b| b == b'\n').enumerate() {
            encoded.bytes().extend_from_slice(line);
            encoded.end_record(first_line + n as u64, None, "");
        }
        self.sink.handle.send(encoded).await
    }

    /// Encodes `records` of one object (`origin`, with `object_fields`) as
    /// the sink does and hands them over.
    pub async fn send_records(
        &self,
        origin: Arc<Origin>,
        object_fields: &[(String, String)],
        records: &[TestRecord],
    ) -> Delivery {
        let mut encoder = self.sink.encoding.encoder(&ObjectContext {
            origin: &origin,
            fields: object_fields,
        });
        let mut encoded = Encoded::new(self.sink.handle.buffer(), origin.clone());
        let fields = field_table(records);
        for (index, record) in records.iter().enumerate() {
            let values = record.values(&fields);
            encoder.encode(
                &record.as_record(&fields, &values),
                index as u64,
                &mut encoded,
            );
        }
        self.sink.handle.send(encoded).await
    }

    /// What the dead-letter output holds so far, one JSON value a letter.
    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(&self.dead_letters) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).expect("a dead letter is JSON"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

pub fn origin(key: &str) -> Origin {
    Origin {
        bucket: "logs".into(),
        key: key.into(),
        version: "v1".into(),
    }
}

/// An AWS configuration with fixed credentials, for tests (moto or none).
pub fn test_aws_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    let credentials =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            credentials,
        ));
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// Waits for a delivery, failing the test if it hangs.
pub async fn resolve(delivery: Delivery) -> Result<(), SinkError> {
    tokio::time::timeout(PATIENCE, delivery)
        .await
        .expect("the delivery resolves")
}

/// A record as a parser hands it over, with owned values.
pub struct TestRecord {
    pub line: u64,
    pub time: Option<i64>,
    pub msg: Option<String>,
    pub fields: Vec<(String, TestValue)>,
}

impl TestRecord {
    /// A record of line 1 at `time` (UTC nanoseconds), message `line`, no fields.
    pub fn at(time: i64) -> TestRecord {
        TestRecord {
            line: 1,
            time: Some(time),
            msg: Some("line".into()),
            fields: Vec::new(),
        }
    }

    pub fn with(mut self, name: &str, value: TestValue) -> TestRecord {
        self.fields.push((name.into(), value));
        self
    }

    /// The record's values against the object's field table.
    pub fn values(&self, fields: &[Field]) -> Vec<Value<'_>> {
        let mut values = vec![Value::Absent; fields.len()];
        for (name, value) in &self.fields {
            let at = fields
                .iter()
                .position(|field| field.name == *name)
                .expect("listed");
            values[at] = value.as_value();
        }
        values
    }

    pub fn as_record<'a>(&'a self, fields: &'a [Field], values: &'a [Value<'a>]) -> Record<'a> {
        Record {
            line: self.line,
            time: self.time,
            msg: self.msg.as_deref(),
            fields,
            values,
        }
    }
}

/// One field table for the records of an object, as a parser session has.
pub fn field_table(records: &[TestRecord]) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for (name, value) in records.iter().flat_map(|record| &record.fields) {
        if !fields.iter().any(|field| field.name == *name) {
            fields.push(Field {
                name: name.clone(),
                ty: value.field_type(),
                description: String::new(),
            });
        }
    }
    fields
}

pub enum TestValue {
    Str(String),
    Int(i64),
}

impl TestValue {
    fn field_type(&self) -> FieldType {
        match self {
            TestValue::Str(_) => FieldType::String,
            TestValue::Int(_) => FieldType::Integer,
        }
    }

    fn as_value(&self) -> Value<'_> {
        match self {
            TestValue::Str(text) => Value::Str(text),
            TestValue::Int(n) => Value::Int(*n),
        }
    }
}
