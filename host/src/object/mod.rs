//! One S3 object through the collector: checked against the bucket
//! allowlist, streamed from S3 (never held whole), parsed on a blocking
//! thread by the routed or detected parser, its records enriched, encoded
//! once for every sink its route names and handed to each in ~1 MiB
//! buffers they recycle. The object is stored when parsing reached the end
//! and every sink accounted for every buffer.

pub mod enrich;
pub mod routing;

use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

use crate::budget::ByteBudget;
use crate::decode::BatchLimits;
use crate::errors::error_chain;
use crate::metrics::{FailureReason, Metrics};
use crate::notification::ObjectRef;
use crate::parse::{LoadedParser, Parsers, Record, RecordVisitor};
use crate::pipeline::{ObjectSummary, ParserChoice, parse_object};
use crate::sink::delivery::{Encoded, Origin, SEND_BUFFER_BYTES, SinkError};
use crate::sink::{ObjectContext, RecordEncoder, Sink, Sinks};
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
    pub sinks: Arc<Sinks>,
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
        let response = self
            .get_object(object)
            .await
            .map_err(|error| ObjectFailure {
                reason: FailureReason::Read,
                detail: format!("GetObject failed: {}", error_chain(&error)),
            })?;
        let origin = Arc::new(Origin {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version: object
                .version_id
                .clone()
                .or_else(|| response.version_id.clone())
                .or_else(|| {
                    response
                        .e_tag
                        .as_ref()
                        .map(|tag| tag.trim_matches('"').to_owned())
                })
                .unwrap_or_default(),
        });
        let body = SyncIoBridge::new(Box::pin(response.body.into_async_read()));
        self.process_body(object, origin, body).await
    }

    /// The rest of [`ObjectProcessor::process`] once the object is open;
    /// also for bytes from elsewhere (`s3logd import` of a local directory).
    pub async fn process_body(
        self: &Arc<Self>,
        object: &ObjectRef,
        origin: Arc<Origin>,
        body: impl Read + Send + 'static,
    ) -> Result<ObjectSummary, NotStored> {
        let reader = CountingReader {
            inner: body,
            metrics: self.metrics.clone(),
        };
        let this = self.clone();
        let object = object.clone();
        let runtime = Handle::current();
        let (result, summary, deliveries) = tokio::task::spawn_blocking(move || {
            let route = this.router.route(&object.key);
            let choice = match route.parser {
                Some(parser) => ParserChoice::Named(parser.clone(), route.options.to_vec()),
                None => ParserChoice::Auto,
            };
            let sinks: Vec<&Sink> = match route.sinks {
                Some(positions) => positions.iter().map(|&at| &this.sinks.all()[at]).collect(),
                None => this.sinks.all().iter().collect(),
            };
            let mut visitor = SinkVisitor {
                processor: &this,
                object: &object,
                origin,
                runtime,
                sinks,
                targets: Vec::new(),
                records: 0,
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
            visitor.hand_over_all();
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
        let mut abandoned = false;
        for delivery in deliveries {
            let delivered = delivery.await.expect("awaiting a delivery does not panic");
            match delivered {
                Ok(()) => {}
                // Another sink's failure says more about the object.
                Err(SinkError::Cancelled) => abandoned = true,
                Err(error) => {
                    return Err(ObjectFailure {
                        reason: FailureReason::Sink,
                        detail: error.to_string(),
                    }
                    .into());
                }
            }
        }
        if abandoned {
            return Err(NotStored::Abandoned);
        }
        Ok(summary)
    }

    /// GetObject with the form-decoded key, then once more with the key as
    /// the notification spelled it when that differs and the first is
    /// missing (a literal `+` or `%` in the key, which S3 events URL-encode).
    async fn get_object(
        &self,
        object: &ObjectRef,
    ) -> Result<GetObjectOutput, SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>>
    {
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
        Ok(response)
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

/// Encodes records on the parsing thread, once for each sink the object
/// goes to, and hands full buffers to the sinks.
struct SinkVisitor<'a> {
    processor: &'a ObjectProcessor,
    object: &'a ObjectRef,
    origin: Arc<Origin>,
    runtime: Handle,
    /// Where the object's records go.
    sinks: Vec<&'a Sink>,
    /// One per sink, created once the parser is known: its name is a field
    /// of every record.
    targets: Vec<Target<'a>>,
    /// Records seen so far.
    records: u64,
    deliveries: Vec<PendingDelivery>,
}

struct Target<'a> {
    sink: &'a Sink,
    encoder: Box<dyn RecordEncoder>,
    /// Records not yet handed over.
    buffer: Option<Encoded>,
}

impl SinkVisitor<'_> {
    fn hand_over_all(&mut self) {
        for at in 0..self.targets.len() {
            self.hand_over(at);
        }
    }

    fn hand_over(&mut self, at: usize) {
        let target = &mut self.targets[at];
        let Some(records) = target.buffer.take() else {
            return;
        };
        let handle = &target.sink.handle;
        let reservation = self
            .runtime
            .block_on(self.processor.budget.reserve(records.len()));
        let delivery = handle.blocking_send(records);
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
        let object = ObjectContext {
            origin: &self.origin,
            fields: &fields,
        };
        self.targets = self
            .sinks
            .iter()
            .map(|sink| Target {
                sink,
                encoder: sink.encoding.encoder(&object),
                buffer: None,
            })
            .collect();
    }

    fn record(&mut self, record: &Record<'_>) {
        let index = self.records;
        self.records += 1;
        for at in 0..self.targets.len() {
            let target = &mut self.targets[at];
            let buffer = target.buffer.get_or_insert_with(|| {
                Encoded::new(target.sink.handle.buffer(), self.origin.clone())
            });
            target.encoder.encode(record, index, buffer);
            if buffer.len() >= SEND_BUFFER_BYTES {
                self.hand_over(at);
            }
        }
    }

    fn line_error(&mut self, line: u64, reason: &str) {
        // Counted in the summary; the per-line detail is for debugging.
        tracing::debug!(bucket = %self.object.bucket, key = %self.object.key, line, reason, "line not parsed");
    }
}
