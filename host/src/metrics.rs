//! The collector's counters and gauges, and the HTTP endpoint that shows them:
//! Prometheus text on `/metrics`, liveness on `/healthz`, readiness on
//! `/readyz`.
//!
//! Plain atomics: every value is a `u64` bumped on the data path, and
//! rendering the few dozen lines by hand costs less than a metrics library.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why an object failed, as the `reason` label of
/// `s3logd_objects_failed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Read,
    NoParser,
    Trap,
    Timeout,
    OutOfMemory,
    BadOutput,
    ParserUnavailable,
    Refused,
    Sink,
    BucketNotAllowed,
    /// S3 refused to read the bucket for `objects.expected_bucket_owner`.
    BucketOwnerMismatch,
    /// A bug in s3logd panicked while the object was worked on.
    Panic,
}

impl FailureReason {
    const ALL: [FailureReason; 12] = [
        FailureReason::Read,
        FailureReason::NoParser,
        FailureReason::Trap,
        FailureReason::Timeout,
        FailureReason::OutOfMemory,
        FailureReason::BadOutput,
        FailureReason::ParserUnavailable,
        FailureReason::Refused,
        FailureReason::Sink,
        FailureReason::BucketNotAllowed,
        FailureReason::BucketOwnerMismatch,
        FailureReason::Panic,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureReason::Read => "read",
            FailureReason::NoParser => "no_parser",
            FailureReason::Trap => "trap",
            FailureReason::Timeout => "timeout",
            FailureReason::OutOfMemory => "out_of_memory",
            FailureReason::BadOutput => "bad_output",
            FailureReason::ParserUnavailable => "parser_unavailable",
            FailureReason::Refused => "refused",
            FailureReason::Sink => "sink",
            FailureReason::BucketNotAllowed => "bucket_not_allowed",
            FailureReason::BucketOwnerMismatch => "bucket_owner_mismatch",
            FailureReason::Panic => "panic",
        }
    }

    /// The reason for a pipeline error kind (`ObjectError::kind`).
    pub fn from_kind(kind: &str) -> FailureReason {
        FailureReason::ALL
            .into_iter()
            .find(|reason| reason.label() == kind)
            .unwrap_or(FailureReason::Read)
    }
}

/// A counter or gauge.
#[derive(Default)]
pub struct Value(AtomicU64);

impl Value {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds, in seconds, of `s3logd_object_delay_seconds`' buckets:
/// from objects stored soon after S3 announced them to hours behind. Event
/// times have whole seconds, so nothing finer is told apart.
const DELAY_BUCKETS: [u64; 12] = [5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600];

/// How long after S3 announced them objects were stored, as a Prometheus
/// histogram.
#[derive(Default)]
pub struct DelayHistogram {
    /// Observations per bucket, not cumulative; the last is above every bound.
    buckets: [Value; DELAY_BUCKETS.len() + 1],
    sum_millis: Value,
}

impl DelayHistogram {
    pub fn observe(&self, delay: std::time::Duration) {
        let seconds = delay.as_secs();
        let bucket = DELAY_BUCKETS
            .iter()
            .position(|bound| seconds < *bound || (seconds == *bound && delay.subsec_nanos() == 0))
            .unwrap_or(DELAY_BUCKETS.len());
        self.buckets[bucket].inc();
        self.sum_millis
            .add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    }

    fn render(&self, out: &mut String) {
        let name = "s3logd_object_delay_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from an object's S3 event to its last record stored."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut count = 0;
        for (bucket, bound) in self
            .buckets
            .iter()
            .zip(DELAY_BUCKETS.iter().map(Some).chain([None]))
        {
            count += bucket.get();
            match bound {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
                }
            }
        }
        let sum = self.sum_millis.get();
        let _ = writeln!(out, "{name}_sum {}.{:03}", sum / 1000, sum % 1000);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Counters of one sink, read when `/metrics` is rendered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounters {
    pub requests: u64,
    pub retries: u64,
    pub failures: u64,
    pub records: u64,
    pub dead_lettered: u64,
    pub bytes: u64,
    /// An S3 archive sink's spool and uploads.
    pub archive: Option<ArchiveCounters>,
}

/// The spool and uploads of an S3 archive sink.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveCounters {
    pub spool_bytes: u64,
    pub spool_files: u64,
    pub uploads: u64,
    pub upload_failures: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub messages_received: Value,
    pub messages_deleted: Value,
    pub messages_unrecognized: Value,
    pub messages_released: Value,
    pub messages_given_up: Value,
    pub events_ignored: Value,
    pub test_events: Value,
    pub objects_processed: Value,
    pub object_delay: DelayHistogram,
    objects_failed: [Value; FailureReason::ALL.len()],
    pub bytes_read: Value,
    pub lines: Value,
    pub records: Value,
    pub parse_errors: Value,
    pub heartbeats: Value,
    /// Failed SQS calls, each retried or left to the visibility timeout.
    pub receive_failures: Value,
    pub delete_failures: Value,
    pub heartbeat_failures: Value,
    pub release_failures: Value,
    pub messages_in_flight: Value,
    pub objects_in_flight: Value,
    /// Set once parsers are loaded and the queue answered a receive.
    ready: AtomicBool,
    shutting_down: AtomicBool,
}

impl Metrics {
    pub fn object_failed(&self, reason: FailureReason) {
        let index = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.objects_failed[index].inc();
    }

    pub fn objects_failed(&self, reason: FailureReason) -> u64 {
        let index = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.objects_failed[index].get()
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.shutting_down.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric; `sinks` are the
    /// counters of each sink by name.
    pub fn render(&self, bytes_in_flight: u64, sinks: &[(&str, SinkCounters)]) -> String {
        let mut out = String::with_capacity(4096);
        let counters = [
            (
                "messages_received",
                "SQS messages received.",
                self.messages_received.get(),
            ),
            (
                "messages_deleted",
                "SQS messages deleted after every object was stored.",
                self.messages_deleted.get(),
            ),
            (
                "messages_unrecognized",
                "SQS messages whose body is no known notification, left to the redrive policy.",
                self.messages_unrecognized.get(),
            ),
            (
                "messages_released",
                "Unfinished SQS messages made visible again at shutdown.",
                self.messages_released.get(),
            ),
            (
                "messages_given_up",
                "SQS messages received more than queue.max_receive_count times, left to the redrive policy.",
                self.messages_given_up.get(),
            ),
            (
                "events_ignored",
                "Notification events that announce no new object.",
                self.events_ignored.get(),
            ),
            (
                "test_events",
                "s3:TestEvent messages deleted.",
                self.test_events.get(),
            ),
            (
                "objects_processed",
                "Objects whose every record was stored.",
                self.objects_processed.get(),
            ),
            (
                "bytes_read",
                "Object bytes read from S3, as stored (before decompression).",
                self.bytes_read.get(),
            ),
            ("lines", "Lines read from objects.", self.lines.get()),
            ("records", "Records parsed.", self.records.get()),
            (
                "parse_errors",
                "Lines that failed to parse or were too long.",
                self.parse_errors.get(),
            ),
            (
                "heartbeats",
                "Visibility extensions of messages in progress.",
                self.heartbeats.get(),
            ),
            (
                "receive_failures",
                "SQS receives that failed; the next waits longer, up to 30 s.",
                self.receive_failures.get(),
            ),
            (
                "delete_failures",
                "SQS deletes that failed; the message is received again after its visibility timeout.",
                self.delete_failures.get(),
            ),
            (
                "heartbeat_failures",
                "Visibility extensions that failed; the next tick tries again.",
                self.heartbeat_failures.get(),
            ),
            (
                "release_failures",
                "Releases of unfinished messages that failed; they return after their visibility timeout.",
                self.release_failures.get(),
            ),
        ];
        for (name, help, value) in &counters {
            metric(&mut out, name, "counter", help, value);
        }
        type Read = fn(&SinkCounters) -> u64;
        let per_sink: [(&str, &str, Read); 6] = [
            (
                "sink_requests",
                "Requests sent to the sink, retries included.",
                |c| c.requests,
            ),
            (
                "sink_retries",
                "Sink requests that failed and were retried.",
                |c| c.retries,
            ),
            (
                "sink_failures",
                "Records the sink failed for good (their objects fail).",
                |c| c.failures,
            ),
            ("sink_records", "Records the sink accepted.", |c| c.records),
            (
                "sink_dead_lettered",
                "Records the sink refused for good, written to the dead-letter output.",
                |c| c.dead_lettered,
            ),
            (
                "sink_bytes",
                "Bytes of records the sink accepted, as encoded for it before compression.",
                |c| c.bytes,
            ),
        ];
        for (name, help, read) in per_sink {
            let name = format!("s3logd_{name}_total");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (sink, counters) in sinks {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {}", read(counters));
            }
        }
        type ReadArchive = fn(&ArchiveCounters) -> u64;
        let per_archive: [(&str, &str, &str, ReadArchive); 4] = [
            (
                "sink_spool_bytes",
                "gauge",
                "Bytes in an S3 archive sink's spool, waiting for upload or being written.",
                |c| c.spool_bytes,
            ),
            (
                "sink_spool_files",
                "gauge",
                "Files in an S3 archive sink's spool.",
                |c| c.spool_files,
            ),
            (
                "sink_uploads_total",
                "counter",
                "Files an S3 archive sink uploaded.",
                |c| c.uploads,
            ),
            (
                "sink_upload_failures_total",
                "counter",
                "Uploads of an S3 archive sink that failed (the file stays and is tried again).",
                |c| c.upload_failures,
            ),
        ];
        if sinks.iter().any(|(_, counters)| counters.archive.is_some()) {
            for (name, kind, help, read) in per_archive {
                let name = format!("s3logd_{name}");
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for (sink, counters) in sinks {
                    if let Some(archive) = &counters.archive {
                        let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {}", read(archive));
                    }
                }
            }
        }
        let name = "s3logd_objects_failed_total";
        let _ = writeln!(out, "# HELP {name} Objects that failed, by reason.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for reason in FailureReason::ALL {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                reason.label(),
                self.objects_failed(reason)
            );
        }
        self.object_delay.render(&mut out);
        let gauges = [
            (
                "messages_in_flight",
                "Messages being processed.",
                self.messages_in_flight.get(),
            ),
            (
                "objects_in_flight",
                "Objects being processed.",
                self.objects_in_flight.get(),
            ),
            (
                "bytes_in_flight",
                "Bytes of objects.in_flight_bytes in use: encoded records not yet acknowledged and long lines in work.",
                bytes_in_flight,
            ),
        ];
        for (name, help, value) in &gauges {
            metric(&mut out, name, "gauge", help, value);
        }
        out
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: &u64) {
    let suffix = if kind == "counter" { "_total" } else { "" };
    let _ = writeln!(out, "# HELP s3logd_{name}{suffix} {help}");
    let _ = writeln!(out, "# TYPE s3logd_{name}{suffix} {kind}");
    let _ = writeln!(out, "s3logd_{name}{suffix} {value}");
}

/// The async runtime's own gauges, read on the runtime that serves
/// `/metrics`: a task count that keeps growing is a leak that none of the
/// collector's counters would show.
fn runtime_gauges(out: &mut String) {
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks() as u64;
    metric(
        out,
        "runtime_alive_tasks",
        "gauge",
        "Tasks alive in the async runtime.",
        &tasks,
    );
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `stop` fires.
/// `render` produces the `/metrics` body.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    render: impl Fn() -> String + Send + Sync + 'static,
    stop: CancellationToken,
) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening for metrics on {listen}"))?;
    tracing::info!(%listen, "serving /metrics, /healthz and /readyz");
    let render = Arc::new(render);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a metrics connection failed");
                    continue;
                }
            },
            () = stop.cancelled() => return Ok(()),
        };
        let metrics = metrics.clone();
        let render = render.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &metrics, &*render);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that hangs up early is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    metrics: &Metrics,
    render: &dyn Fn() -> String,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut body = render();
            runtime_gauges(&mut body);
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        (&Method::GET, "/readyz") if metrics.is_ready() => {
            (StatusCode::OK, "text/plain", "ready\n".to_owned())
        }
        (&Method::GET, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn render_shows_counters_failures_by_reason_and_gauges() {
        let metrics = Metrics::default();
        metrics.messages_received.add(3);
        metrics.object_failed(FailureReason::Trap);
        metrics.object_failed(FailureReason::Trap);
        metrics.object_failed(FailureReason::from_kind("bucket_not_allowed"));
        metrics.objects_in_flight.add(2);
        metrics.objects_in_flight.sub(1);
        let sink = SinkCounters {
            requests: 7,
            retries: 2,
            failures: 1,
            records: 40,
            dead_lettered: 3,
            bytes: 4000,
            archive: None,
        };
        let text = metrics.render(1234, &[("vl", sink), ("es-main", SinkCounters::default())]);
        assert_eq!(sample(&text, "s3logd_messages_received_total"), Some(3));
        assert_eq!(
            sample(&text, "s3logd_objects_failed_total{reason=\"trap\"}"),
            Some(2)
        );
        assert_eq!(
            sample(
                &text,
                "s3logd_objects_failed_total{reason=\"bucket_not_allowed\"}"
            ),
            Some(1)
        );
        assert_eq!(
            sample(&text, "s3logd_objects_failed_total{reason=\"sink\"}"),
            Some(0)
        );
        assert_eq!(sample(&text, "s3logd_objects_in_flight"), Some(1));
        assert_eq!(sample(&text, "s3logd_bytes_in_flight"), Some(1234));
        assert_eq!(
            sample(&text, "s3logd_sink_retries_total{sink=\"vl\"}"),
            Some(2)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_records_total{sink=\"vl\"}"),
            Some(40)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_dead_lettered_total{sink=\"vl\"}"),
            Some(3)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_records_total{sink=\"es-main\"}"),
            Some(0)
        );
        assert!(text.contains("# TYPE s3logd_bytes_in_flight gauge"));
        assert!(text.contains("# TYPE s3logd_heartbeats_total counter"));
    }

    #[test]
    fn archive_sinks_show_their_spool_and_uploads() {
        let archive = SinkCounters {
            archive: Some(ArchiveCounters {
                spool_bytes: 2048,
                spool_files: 2,
                uploads: 5,
                upload_failures: 1,
            }),
            ..SinkCounters::default()
        };
        let text =
            Metrics::default().render(0, &[("vl", SinkCounters::default()), ("s3", archive)]);
        assert_eq!(
            sample(&text, "s3logd_sink_spool_bytes{sink=\"s3\"}"),
            Some(2048)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_spool_files{sink=\"s3\"}"),
            Some(2)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_uploads_total{sink=\"s3\"}"),
            Some(5)
        );
        assert_eq!(
            sample(&text, "s3logd_sink_upload_failures_total{sink=\"s3\"}"),
            Some(1)
        );
        assert!(text.contains("# TYPE s3logd_sink_spool_bytes gauge"));
        assert!(!text.contains("s3logd_sink_spool_bytes{sink=\"vl\"}"));
        let readme = include_str!("../../README.md");
        for name in [
            "s3logd_sink_spool_bytes",
            "s3logd_sink_spool_files",
            "s3logd_sink_uploads_total",
            "s3logd_sink_upload_failures_total",
        ] {
            assert!(
                readme.contains(&format!("`{name}")),
                "README.md does not list {name}"
            );
        }
    }

    #[test]
    fn object_delays_are_a_cumulative_histogram_in_seconds() {
        let metrics = Metrics::default();
        for millis in [0, 5_000, 5_500, 42_000, 7 * 3_600_000] {
            metrics
                .object_delay
                .observe(std::time::Duration::from_millis(millis));
        }
        let text = metrics.render(0, &[]);
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("s3logd_object_delay_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        // A bound includes what equals it.
        assert_eq!(bucket("5"), Some(2));
        assert_eq!(bucket("10"), Some(3));
        assert_eq!(bucket("60"), Some(4));
        assert_eq!(bucket("21600"), Some(4));
        assert_eq!(bucket("+Inf"), Some(5));
        assert_eq!(sample(&text, "s3logd_object_delay_seconds_count"), Some(5));
        assert!(
            text.contains("\ns3logd_object_delay_seconds_sum 25252.500\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE s3logd_object_delay_seconds histogram\n"));
    }

    #[test]
    fn the_readme_lists_every_metric() {
        let readme = include_str!("../../README.md");
        let text = Metrics::default().render(0, &[]);
        let missing: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
            .filter(|name| !readme.contains(&format!("`{name}")))
            .collect();
        assert!(missing.is_empty(), "README.md does not list {missing:?}");
    }

    #[test]
    fn every_pipeline_error_kind_has_its_own_reason() {
        for kind in [
            "read",
            "no_parser",
            "trap",
            "timeout",
            "out_of_memory",
            "bad_output",
            "refused",
        ] {
            assert_eq!(FailureReason::from_kind(kind).label(), kind);
        }
    }

    #[tokio::test]
    async fn runtime_gauges_count_the_tasks_alive() {
        let (_keep_open, closed) = tokio::sync::oneshot::channel::<()>();
        let waiting = tokio::spawn(closed);
        let mut text = String::new();
        runtime_gauges(&mut text);
        assert!(text.contains("# TYPE s3logd_runtime_alive_tasks gauge"));
        assert_eq!(sample(&text, "s3logd_runtime_alive_tasks"), Some(1));
        waiting.abort();
    }

    #[test]
    fn ready_only_between_first_poll_and_shutdown() {
        let metrics = Metrics::default();
        assert!(!metrics.is_ready());
        metrics.set_ready();
        assert!(metrics.is_ready());
        metrics.set_shutting_down();
        assert!(!metrics.is_ready());
    }
}
