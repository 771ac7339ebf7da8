//! Full-path benchmark of `s3logd run` (issue 3 item 9): large gzipped ALB
//! objects in moto's S3, announced on its SQS queue all at once, streamed
//! through the collector into a receiver that only counts lines.
//!
//! moto's SQS manages about 90 messages/s, so the object path is measured
//! with few objects of many lines. Reported: lines/s per busy core (the
//! collector's own user+system CPU time), wall-clock lines/s, idle RSS and
//! peak RSS (VmHWM) of the collector process.
//!
//! The target is a ratio to the single-thread parse path (the parse_path
//! bench's `json` row). A shared VM's speed drifts by more than the margin
//! between separate runs, so the bench also runs that path over the first
//! object in its own process, just before and just after the collector,
//! and reports the ratio to the faster of the two (the parse_path bench
//! reports its quiet runs, so the slower one would flatter the collector).
//!
//!     cargo bench -p s3logd --bench collector
//!
//! `S3LOGD_BENCH_OBJECTS` (default 4) and `S3LOGD_BENCH_OBJECT_MB`
//! (uncompressed MB per object, default 100) change the load.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "common/mod.rs"]
mod paths;

use paths::process::{cpu_seconds, proc_status_kib};

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BUCKET, Harness, Notify, alb_key};
use s3logd::parse::{Limits, Parsers, Runtime};
use s3logd_test_support::env_number;
use s3logd_test_support::victorialogs::VictoriaLogs;

/// How long the collector sits on an empty queue before its idle RSS is read.
const IDLE: Duration = Duration::from_secs(5);
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

fn main() {
    let objects = env_number("S3LOGD_BENCH_OBJECTS", 4);
    let object_mb = env_number("S3LOGD_BENCH_OBJECT_MB", 100);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench(objects, object_mb));
}

async fn bench(objects: usize, object_mb: usize) {
    let harness = Harness::start_with_receiver(
        Notify::Nothing,
        Duration::from_secs(300),
        VictoriaLogs::start_counting(),
    )
    .await;

    let mut events = Vec::new();
    let mut total_lines = 0;
    let mut total_bytes = 0;
    let mut first_object = None;
    for n in 0..objects {
        let key = alb_key(n as u32 + 1);
        let (gzipped, lines, bytes) = paths::alb_object(n as u64, object_mb * 1_000_000);
        events.push(s3_event(&key, gzipped.len()));
        first_object.get_or_insert_with(|| (gzipped.clone(), lines));
        harness.moto.put_object(BUCKET, &key, gzipped).await;
        total_lines += lines;
        total_bytes += bytes;
    }
    let (first_gz, first_lines) = first_object.expect("S3LOGD_BENCH_OBJECTS is at least 1");
    let parse_path = ParsePath::new(first_gz, first_lines);
    let parse_before = parse_path.lines_per_second();
    eprintln!(
        "uploaded {objects} objects: {total_lines} lines, {:.0} MB uncompressed",
        total_bytes as f64 / 1e6
    );

    let mut settings = harness.settings();
    settings.log_level = "info".to_owned();
    settings.concurrency = objects as u32;
    let collector = harness.run(&settings).await;
    let pid = collector.pid();
    tokio::time::sleep(IDLE).await;
    let idle_rss = proc_status_kib(pid, "VmRSS");

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    send_all_at_once(&harness, &events).await;
    let deadline = started + RUN_TIMEOUT;
    while harness.receiver.counters().rows_stored < total_lines as u64 {
        assert!(
            Instant::now() < deadline,
            "only {:?} after {RUN_TIMEOUT:?}",
            harness.receiver.counters()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let peak_rss = proc_status_kib(pid, "VmHWM");
    harness.wait_for_empty_queue().await;
    let metrics = collector.metrics().await;
    assert_eq!(
        metrics.value("s3logd_records_total"),
        total_lines as f64,
        "records counted by the collector"
    );
    let parse_after = parse_path.lines_per_second();
    let per_busy_core = total_lines as f64 / cpu;
    let parse_best = parse_before.max(parse_after);

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "collector full path: {objects} objects x {object_mb} MB, {total_lines} lines\n\
         wall {wall:.2} s, collector CPU {cpu:.2} s ({:.2} busy cores)\n\
         {per_busy_core:.0} lines/s per busy core, {:.0} lines/s wall, {:.1} MB/s per busy core\n\
         single-thread parse path alongside: {parse_before:.0} lines/s before, {parse_after:.0} after; \
         per busy core / the faster: {:.2}\n\
         RSS idle {:.1} MiB, peak {:.1} MiB",
        cpu / wall,
        total_lines as f64 / wall,
        total_bytes as f64 / 1e6 / cpu,
        per_busy_core / parse_best,
        mib(idle_rss),
        mib(peak_rss),
    );
}

/// The parse_path bench's end-to-end row over one of the uploaded objects.
struct ParsePath {
    parsers: Parsers,
    gz: Vec<u8>,
    lines: usize,
}

impl ParsePath {
    fn new(gz: Vec<u8>, lines: usize) -> ParsePath {
        let runtime = Arc::new(Runtime::new(Limits::default()).expect("wasm runtime"));
        let parsers = Parsers::load(runtime, &[]).expect("bundled parsers load");
        ParsePath { parsers, gz, lines }
    }

    /// One thread, wall clock; blocks the caller, which is fine while the
    /// collector is idle.
    fn lines_per_second(&self) -> f64 {
        let alb = self.parsers.get("alb").expect("the ALB parser is bundled");
        let started = Instant::now();
        let run = paths::parse_to_json(&self.parsers, alb, &self.gz);
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(run.records, self.lines as u64, "records of the parse path");
        self.lines as f64 / elapsed
    }
}

/// The S3 event notification for one new object, shaped as S3 sends it.
fn s3_event(key: &str, size: usize) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-03-01T12:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": key, "size": size, "sequencer": "0055AED6DCD90281E5"}
        }
    }]})
    .to_string()
}

/// One SendMessageBatch, so a single receive can take every object at once.
async fn send_all_at_once(harness: &Harness, bodies: &[String]) {
    let mut batch = harness
        .moto
        .sqs()
        .send_message_batch()
        .queue_url(&harness.queue.url);
    for (index, body) in bodies.iter().enumerate() {
        let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(body)
            .build()
            .expect("batch entry has its required fields");
        batch = batch.entries(entry);
    }
    batch.send().await.expect("SendMessageBatch to moto");
}
