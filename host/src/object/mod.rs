//! One S3 object through the collector: checked against the bucket
//! allowlist, streamed from S3 (never held whole), parsed on a blocking
//! thread by the routed or detected parser, its records enriched, encoded
//! and handed to the sink in ~1 MiB buffers it recycles. The object is stored when
//! parsing reached the end and the sink acknowledged every buffer.

pub mod enrich;
pub mod routing;

use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

use crate::decode::BatchLimits;
use crate::metrics::{FailureReason, Metrics};
use crate::notification::ObjectRef;
use crate::parse::{LoadedParser, Parsers, Record, RecordVisitor};
use crate::pipeline::{ObjectSummary, ParserChoice, parse_object};
use crate::queue::budget::ByteBudget;
use crate::queue::error_chain;
use crate::sink::json::JsonLineWriter;
use crate::sink::victorialogs::{SEND_BUFFER_BYTES, SinkError, VictoriaLogs};
use enrich::Enricher;
use routing::Router;

/// Why an object was not stored.
#[derive(Debug)]
pub enum NotStored {
    /// For good on this attempt; counted and logged.
    Failed(ObjectFailure),
    /// Shutdown abandoned its delivery at the end of the grace period: not
    /// the object's fault, so it is neither counted nor kept from the next
    /// consumer.
    Abandoned,
}

impl From<ObjectFailure> for NotStored {
    fn from(failure: ObjectFailure) -> Self {
        NotStored::Failed(failure)
    }
}

/// Why an object failed, for the metric label and the log.
#[derive(Debug)]
pub struct ObjectFailure {
    pub reason: FailureReason,
    pub detail: String,
}

/// Everything an object needs on its way; shared by all objects.
pub struct ObjectProcessor {
    pub s3: aws_sdk_s3::Client,
    pub parsers: Arc<Parsers>,
    pub router: Router<Arc<LoadedParser>>,
    pub enricher: Enricher,
    /// Empty: every bucket.
    pub allowed_buckets: Vec<String>,
    pub limits: BatchLimits,
    pub sink: VictoriaLogs,
    pub budget: Arc<ByteBudget>,
    pub metrics: Arc<Metrics>,
}

impl ObjectProcessor {
    /// Streams, parses and delivers one object; `Ok` once every record is
    /// stored.
    pub async fn process(self: &Arc<Self>, object: &ObjectRef) -> Result<ObjectSummary, NotStored> {
        if !self.allowed_buckets.is_empty() && !self.allowed_buckets.contains(&object.bucket) {
            return Err(ObjectFailure {
                reason: FailureReason::BucketNotAllowed,
                detail: format!(
                    "bucket {:?} is not in objects.allowed_buckets",
                    object.bucket
                ),
            }
            .into());
        }
        let body = self
            .get_object(object)
            .await
            .map_err(|error| ObjectFailure {
                reason: FailureReason::Read,
                detail: format!("GetObject failed: {}", error_chain(&error)),
            })?;
        let reader = CountingReader {
            inner: SyncIoBridge::new(Box::pin(body.into_async_read())),
            metrics: self.metrics.clone(),
        };
        let this = self.clone();
        let object = object.clone();
        let runtime = Handle::current();
        let (result, summary, deliveries) = tokio::task::spawn_blocking(move || {
            let choice = match this.router.route(&object.key) {
                Some((parser, options)) => ParserChoice::Named(parser.clone(), options.to_vec()),
                None => ParserChoice::Auto,
            };
            let mut visitor = SinkVisitor {
                processor: &this,
                object: &object,
                runtime,
                writer: None,
                buffer: Vec::new(),
                records_in_buffer: 0,
                deliveries: Vec::new(),
            };
            let mut summary = ObjectSummary::default();
            let result = parse_object(
                &this.parsers,
                &choice,
                &object.key,
                reader,
                this.limits,
                &mut visitor,
                &mut summary,
            );
            visitor.hand_over();
            (result, summary, visitor.deliveries)
        })
        .await
        .expect("parsing an object does not panic");
        let outcome = summary.outcome;
        self.metrics.lines.add(outcome.lines);
        self.metrics.records.add(outcome.records);
        self.metrics.parse_errors.add(outcome.line_errors);
        // Records handed over before a failure are still delivered: the
        // retry of the whole object may store them twice, which
        // at-least-once allows.
        if let Err(error) = result {
            return Err(ObjectFailure {
                reason: FailureReason::from_kind(error.kind()),
                detail: error.to_string(),
            }
            .into());
        }
        for delivery in deliveries {
            let delivered = delivery.await.expect("awaiting a delivery does not panic");
            match delivered {
                Ok(()) => {}
                Err(SinkError::Cancelled) => return Err(NotStored::Abandoned),
                Err(error) => {
                    return Err(ObjectFailure {
                        reason: FailureReason::Sink,
                        detail: error.to_string(),
                    }
                    .into());
                }
            }
        }
        Ok(summary)
    }

    /// GetObject with the form-decoded key, then once more with the key as
    /// the notification spelled it when that differs and the first is
    /// missing (a literal `+` or `%` in the key, aws-log-formats.md §6.4).
    async fn get_object(
        &self,
        object: &ObjectRef,
    ) -> Result<ByteStream, SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>> {
        let get = |key: &str| {
            let mut request = self.s3.get_object().bucket(&object.bucket).key(key);
            if let Some(version) = &object.version_id {
                request = request.version_id(version);
            }
            request.send()
        };
        let response = match get(&object.key).await {
            Err(error) if is_missing(&error) && object.raw_key != object.key => {
                tracing::debug!(key = %object.key, raw_key = %object.raw_key, "object missing under its decoded key; trying the key as notified");
                get(&object.raw_key).await
            }
            other => other,
        }?;
        Ok(response.body)
    }
}

fn is_missing(error: &SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    error
        .as_service_error()
        .is_some_and(GetObjectError::is_no_such_key)
        || error
            .raw_response()
            .is_some_and(|response| response.status().as_u16() == 404)
}

/// Counts the object's bytes as stored, before decompression.
struct CountingReader<R> {
    inner: R,
    metrics: Arc<Metrics>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.metrics.bytes_read.add(read as u64);
        Ok(read)
    }
}

/// A delivery that gives its budget back as soon as it resolves.
type PendingDelivery = JoinHandle<Result<(), SinkError>>;

/// Encodes records on the parsing thread and hands full buffers to the
/// sink.
struct SinkVisitor<'a> {
    processor: &'a ObjectProcessor,
    object: &'a ObjectRef,
    runtime: Handle,
    /// Created once the parser is known: its name is a field of every record.
    writer: Option<JsonLineWriter>,
    buffer: Vec<u8>,
    records_in_buffer: u64,
    deliveries: Vec<PendingDelivery>,
}

impl SinkVisitor<'_> {
    fn hand_over(&mut self) {
        if self.records_in_buffer == 0 {
            return;
        }
        let lines = std::mem::take(&mut self.buffer);
        let records = std::mem::take(&mut self.records_in_buffer);
        let reservation = self
            .runtime
            .block_on(self.processor.budget.reserve(lines.len()));
        let delivery = self.processor.sink.blocking_send(lines, records);
        self.deliveries.push(self.runtime.spawn(async move {
            let delivered = delivery.await;
            drop(reservation);
            delivered
        }));
    }
}

impl RecordVisitor for SinkVisitor<'_> {
    fn parser_chosen(&mut self, parser: &str) {
        let fields = self.processor.enricher.object_fields(self.object, parser);
        self.writer = Some(JsonLineWriter::new(&fields));
    }

    fn record(&mut self, record: &Record<'_>) {
        let writer = self
            .writer
            .as_mut()
            .expect("the pipeline names the parser before the first record");
        if self.buffer.capacity() == 0 {
            self.buffer = self.processor.sink.buffer();
        }
        writer.write(record, &mut self.buffer);
        self.records_in_buffer += 1;
        if self.buffer.len() >= SEND_BUFFER_BYTES {
            self.hand_over();
        }
    }

    fn line_error(&mut self, line: u64, reason: &str) {
        // Counted in the summary; the per-line detail is for debugging.
        tracing::debug!(bucket = %self.object.bucket, key = %self.object.key, line, reason, "line not parsed");
    }
}
