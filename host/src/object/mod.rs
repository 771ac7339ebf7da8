//! One S3 object through the collector: checked against the bucket
//! allowlist, streamed from S3 (never held whole), parsed on a blocking
//! thread by the routed or detected parser, its records enriched, encoded
//! once for every sink its route names and handed to each in ~1 MiB
//! buffers they recycle; lines that gave no record go to the dead-letter
//! output. The object is stored when parsing reached the end, every sink
//! accounted for every buffer and those lines are written.

pub mod enrich;
pub mod routing;

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;
use tokio_util::sync::CancellationToken;

use crate::budget::{Account, ByteBudget, Reservation};
use crate::decode::{BatchLimits, LineMemory};
use crate::errors::{error_chain, panic_message};
use crate::metrics::{FailureReason, Metrics};
use crate::notification::ObjectRef;
use crate::parse::{LoadedParser, Parsers, Record, RecordVisitor};
use crate::pipeline::{Batching, ObjectSummary, ParserChoice, parse_object_counted};
use crate::sink::dead_letter::{Letters, LineLetter};
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
    /// The account every bucket read must belong to (S3's `ExpectedBucketOwner`).
    pub expected_bucket_owner: Option<String>,
    pub limits: BatchLimits,
    pub sinks: Arc<Sinks>,
    pub budget: Arc<ByteBudget>,
    pub metrics: Arc<Metrics>,
}

impl ObjectProcessor {
    /// Streams, parses and delivers one object; `Ok` once every record is
    /// stored.
    pub async fn process(self: &Arc<Self>, object: &ObjectRef) -> Result<ObjectSummary, NotStored> {
        self.process_until(object, CancellationToken::new()).await
    }

    /// [`ObjectProcessor::process`], whose reading of the object stops once
    /// `abandon` fires, so that its parsing thread comes free at once: for a
    /// process that lives on after abandoning an object (the Lambda
    /// function, between invocations). An abandoned object is
    /// [`NotStored::Abandoned`].
    pub async fn process_until(
        self: &Arc<Self>,
        object: &ObjectRef,
        abandon: CancellationToken,
    ) -> Result<ObjectSummary, NotStored> {
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
            .map_err(|error| self.get_object_failure(object, &error))?;
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
        let body = Abandonable {
            inner: SyncIoBridge::new(Box::pin(response.body.into_async_read())),
            abandon: abandon.clone(),
        };
        match self.process_body(object, origin, body).await {
            Err(NotStored::Failed(_)) if abandon.is_cancelled() => Err(NotStored::Abandoned),
            processed => processed,
        }
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
        let parsed = tokio::task::spawn_blocking(move || {
            let route = this.router.route(&object.key);
            let choice = match route.parser {
                Some(parser) => ParserChoice::Named(parser.clone(), route.options.to_vec()),
                None => ParserChoice::Auto,
            };
            let sinks: Vec<&Sink> = match route.sinks {
                Some(positions) => positions.iter().map(|&at| &this.sinks.all()[at]).collect(),
                None => this.sinks.all().iter().collect(),
            };
            let account = RefCell::new(this.budget.account());
            let mut visitor = SinkVisitor {
                processor: &this,
                object: &object,
                origin,
                runtime: runtime.clone(),
                account: &account,
                sinks,
                targets: Vec::new(),
                records: 0,
                parser: String::new(),
                failed_lines: None,
                deliveries: Vec::new(),
            };
            let mut summary = ObjectSummary::default();
            let batching = Batching {
                limits: this.limits,
                memory: CountedLines {
                    account: &account,
                    runtime: &runtime,
                },
            };
            let result = parse_object_counted(
                &this.parsers,
                &choice,
                &object.key,
                reader,
                batching,
                &mut visitor,
                &mut summary,
            );
            visitor.hand_over_all();
            (result, summary, visitor.deliveries)
        })
        .await;
        let (result, summary, deliveries) = match parsed {
            Ok(parsed) => parsed,
            Err(error) if error.is_cancelled() => return Err(NotStored::Abandoned),
            // Whatever the object handed over is still delivered; the
            // object fails like any other, and its message stays.
            Err(error) => {
                return Err(ObjectFailure {
                    reason: FailureReason::Panic,
                    detail: format!("parsing panicked: {}", panic_message(&*error.into_panic())),
                }
                .into());
            }
        };
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
                    let reason = match error {
                        SinkError::Panicked { .. } => FailureReason::Panic,
                        _ => FailureReason::Sink,
                    };
                    return Err(ObjectFailure {
                        reason,
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
            let mut request = self
                .s3
                .get_object()
                .bucket(&object.bucket)
                .key(key)
                .set_expected_bucket_owner(self.expected_bucket_owner.clone());
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

    /// Why GetObject failed. With `expected_bucket_owner` set, 403
    /// AccessDenied is how S3 refuses a bucket another account owns; it
    /// says no more, and a role that may not read the bucket gets the same
    /// answer, so the detail names both.
    fn get_object_failure(
        &self,
        object: &ObjectRef,
        error: &SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
    ) -> ObjectFailure {
        let detail = format!("GetObject failed: {}", error_chain(error));
        let access_denied = error
            .as_service_error()
            .and_then(ProvideErrorMetadata::code)
            == Some("AccessDenied");
        match &self.expected_bucket_owner {
            Some(owner) if access_denied => ObjectFailure {
                reason: FailureReason::BucketOwnerMismatch,
                detail: format!(
                    "bucket {:?} refused with objects.expected_bucket_owner = {owner}: another account owns it (or s3logd may not read it); {detail}",
                    object.bucket
                ),
            },
            _ => ObjectFailure {
                reason: FailureReason::Read,
                detail,
            },
        }
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

/// Fails every read once `abandon` fired: the parser then stops at its
/// next batch instead of reading the rest of an object nobody waits for.
struct Abandonable<R> {
    inner: R,
    abandon: CancellationToken,
}

impl<R: Read> Read for Abandonable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.abandon.is_cancelled() {
            return Err(io::Error::other("the object was abandoned"));
        }
        self.inner.read(buf)
    }
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
/// goes to, and hands full buffers to the sinks; gathers the lines that
/// gave no record for the dead-letter output.
struct SinkVisitor<'a> {
    processor: &'a ObjectProcessor,
    object: &'a ObjectRef,
    origin: Arc<Origin>,
    runtime: Handle,
    /// Shared with the object's line buffers.
    account: &'a RefCell<Account>,
    /// Where the object's records go.
    sinks: Vec<&'a Sink>,
    /// One per sink, created once the parser is known: its name is a field
    /// of every record.
    targets: Vec<Target<'a>>,
    /// Records seen so far.
    records: u64,
    /// The parser reading the object, named in the letters of its lines.
    parser: String,
    /// Lines that gave no record, not yet handed over.
    failed_lines: Option<Letters>,
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
        self.hand_over_failed_lines();
    }

    /// Writes the lines gathered so far to the dead-letter output as one
    /// more delivery of the object: its message is deleted only once they
    /// are there too.
    fn hand_over_failed_lines(&mut self) {
        let Some(letters) = self.failed_lines.take() else {
            return;
        };
        let reservation = self.reserve(letters.encoded_bytes());
        let sinks = self.processor.sinks.clone();
        self.deliveries.push(self.runtime.spawn(async move {
            let written = sinks.dead_letter_lines(letters).await;
            drop(reservation);
            written
        }));
    }

    fn hand_over(&mut self, at: usize) {
        let target = &mut self.targets[at];
        let Some(records) = target.buffer.take() else {
            return;
        };
        let sink = target.sink;
        let reservation = self.reserve(records.len());
        let delivery = sink.handle.blocking_send(records);
        self.deliveries.push(self.runtime.spawn(async move {
            let delivered = delivery.await;
            drop(reservation);
            delivered
        }));
    }

    /// Waits for room in the budget for `bytes` handed to the sinks,
    /// beside what the object's line buffers hold.
    fn reserve(&self, bytes: usize) -> Reservation {
        self.runtime
            .block_on(self.account.borrow_mut().reserve(bytes))
    }
}

/// Counts an object's line buffers in its account, waiting on its parsing
/// thread for room.
struct CountedLines<'a> {
    account: &'a RefCell<Account>,
    runtime: &'a Handle,
}

impl LineMemory for CountedLines<'_> {
    fn hold(&mut self, bytes: usize) {
        self.runtime.block_on(self.account.borrow_mut().hold(bytes));
    }
}

impl RecordVisitor for SinkVisitor<'_> {
    fn parser_chosen(&mut self, parser: &str) {
        self.parser = parser.to_owned();
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

    fn line_error(&mut self, line: u64, text: &str, reason: &str) {
        // Counted in the summary and kept in the dead-letter output; the
        // log is for debugging.
        tracing::debug!(bucket = %self.object.bucket, key = %self.object.key, line, reason, "line not parsed");
        let kept = text.floor_char_boundary(self.processor.limits.failed_line_bytes);
        let letters = self
            .failed_lines
            .get_or_insert_with(|| Letters::new("lines"));
        letters.push_line(&LineLetter {
            parser: &self.parser,
            origin: &self.origin,
            line,
            reason,
            text: &text[..kept],
        });
        if letters.encoded_bytes() >= SEND_BUFFER_BYTES {
            self.hand_over_failed_lines();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_config::BehaviorVersion;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::parse::{Limits, Runtime};
    use crate::sink::dead_letter::DeadLetter;

    /// Panics on its first read, as a bug on the parsing thread would.
    struct PanickingReader;

    impl Read for PanickingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("a bug on the parsing thread");
        }
    }

    fn processor(dead_letters: &std::path::Path) -> Arc<ObjectProcessor> {
        let parsers = Parsers::load(Arc::new(Runtime::new(Limits::default()).unwrap()), &[])
            .expect("the bundled parsers");
        let sinks = Sinks::start(
            &BTreeMap::new(),
            &crate::sink::Context {
                stream_fields: Vec::new(),
                aws: aws_config::SdkConfig::builder().build(),
                dead_letter: DeadLetter::file(dead_letters),
                cancel: CancellationToken::new(),
            },
        )
        .unwrap();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
        );
        Arc::new(ObjectProcessor {
            s3,
            parsers: Arc::new(parsers),
            router: Router::new(&[], |_| None, |_| None).unwrap(),
            enricher: Enricher::new(None),
            allowed_buckets: Vec::new(),
            expected_bucket_owner: None,
            limits: BatchLimits::default(),
            sinks: Arc::new(sinks),
            budget: Arc::new(ByteBudget::new(1 << 20, 1)),
            metrics: Arc::new(Metrics::default()),
        })
    }

    #[tokio::test]
    async fn a_panic_on_the_parsing_thread_fails_the_object_with_reason_panic() {
        let dir = tempfile::tempdir().unwrap();
        let processor = processor(&dir.path().join("dead-letter.ndjson"));
        let object = ObjectRef {
            bucket: "logs".into(),
            key: "broken.log".into(),
            raw_key: "broken.log".into(),
            size: None,
            version_id: None,
            region: None,
            event_time: None,
            event_name: None,
            sequencer: None,
        };
        let outcome = processor
            .process_body(&object, Arc::new(Origin::default()), PanickingReader)
            .await;
        let Err(NotStored::Failed(failure)) = outcome else {
            panic!("not a failure: {outcome:?}");
        };
        assert_eq!(failure.reason, FailureReason::Panic);
        assert!(
            failure.detail.contains("a bug on the parsing thread"),
            "{}",
            failure.detail
        );
    }
}
