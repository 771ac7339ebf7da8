//! One object must not take more memory than `objects.in_flight_bytes`
//! says. Gzipped objects of a few very long lines with invalid UTF-8, all
//! in work at once, would each grow a line buffer and its repaired copy to
//! tens of MiB; the heap, measured by a counting allocator that only this
//! test binary uses, must stay within the budget instead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use s3logd::budget::ByteBudget;
use s3logd::config::Config;
use s3logd::decode::BatchLimits;
use s3logd::metrics::Metrics;
use s3logd::notification::ObjectRef;
use s3logd::object::ObjectProcessor;
use s3logd::object::enrich::Enricher;
use s3logd::object::routing::Router;
use s3logd::parse::{Limits, Parsers, Runtime};
use s3logd::sink::dead_letter::DeadLetter;
use s3logd::sink::{self, Sinks};
use s3logd_test_support::moto::MotoServer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

struct Counting;

static HEAP_NOW: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

fn grown(bytes: usize) {
    let now = HEAP_NOW.fetch_add(bytes, Relaxed) + bytes;
    HEAP_PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            grown(layout.size());
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            grown(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        unsafe { System.dealloc(block, layout) };
        HEAP_NOW.fetch_sub(layout.size(), Relaxed);
    }

    // Counted as the change in size: glibc moves large blocks by remapping
    // them, without holding both.
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            if new_size > layout.size() {
                grown(new_size - layout.size());
            } else {
                HEAP_NOW.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        moved
    }
}

#[global_allocator]
static HEAP: Counting = Counting;

const MIB: usize = 1 << 20;
const BUCKET: &str = "logs";
const OBJECTS: u32 = 4;
const IN_FLIGHT_BYTES: usize = 64 * MIB;
const MAX_LINE_BYTES: usize = 16 * MIB;
/// What every object in work holds besides the budget: a batch buffer, a
/// send buffer, the decompressor's state, its S3 stream; and the runtime's
/// own small allocations.
const OUTSIDE_THE_BUDGET: usize = 24 * MIB;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Three lines of `abc` and an invalid byte over and over: 8 MiB each,
/// which UTF-8 repair makes 12 MiB.
fn crafted_object() -> Vec<u8> {
    let mut line = b"abc\xff".repeat(2 * MIB);
    line.push(b'\n');
    gzip(&line.repeat(3))
}

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: BUCKET.into(),
        key: key.into(),
        raw_key: key.into(),
        size: None,
        version_id: None,
        region: None,
        event_time: None,
        event_name: None,
        sequencer: None,
    }
}

/// The object processor `s3logd run` builds from `config`, reading from moto.
async fn processor(config: &Config, moto: &MotoServer) -> Arc<ObjectProcessor> {
    let limits = Limits {
        memory_bytes: (config.parsers.memory_limit_mib as usize) << 20,
        ..Limits::default()
    };
    let parsers = Arc::new(Parsers::load(Arc::new(Runtime::new(limits).unwrap()), &[]).unwrap());
    let sinks = Arc::new(
        Sinks::start(
            &config.sink,
            &sink::Context {
                stream_fields: Vec::new(),
                aws: moto.sdk_config().clone(),
                dead_letter: DeadLetter::file(&config.dead_letter.path),
                cancel: CancellationToken::new(),
            },
        )
        .unwrap(),
    );
    let router = Router::new(
        &config.routes,
        |name| parsers.get(name).cloned(),
        |name| sinks.position(name),
    )
    .unwrap();
    Arc::new(ObjectProcessor {
        s3: aws_sdk_s3::Client::from_conf(moto.s3_config().build()),
        parsers,
        router,
        enricher: Enricher::new(None),
        allowed_buckets: Vec::new(),
        expected_bucket_owner: None,
        limits: BatchLimits {
            max_line_bytes: config.objects.max_line_bytes as usize,
            ..BatchLimits::default()
        },
        sinks,
        budget: Arc::new(ByteBudget::new(
            config.objects.in_flight_bytes,
            config.queue.concurrency,
        )),
        metrics: Arc::new(Metrics::default()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_long_invalid_lines_in_work_at_once_stay_within_the_in_flight_budget() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let crafted = crafted_object();
    assert!(crafted.len() < 128 << 10, "{} bytes of gzip", crafted.len());
    for n in 0..OBJECTS {
        moto.put_object(BUCKET, &format!("long-{n}.log.gz"), crafted.clone())
            .await;
    }
    moto.put_object(BUCKET, "warm-up.log", b"{\"msg\":\"hello\"}\n".to_vec())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
concurrency = {OBJECTS}

[objects]
max_line_bytes = {MAX_LINE_BYTES}
in_flight_bytes = {IN_FLIGHT_BYTES}

[[routes]]
key_regex = '.*'
parser = "ndjson"

[sink.file]
path = {records:?}

[dead_letter]
path = {dead_letters:?}
"#,
        records = dir.path().join("records.ndjson"),
        dead_letters = dir.path().join("dead-letters.ndjson"),
    );
    let config = Config::parse(&text, std::iter::empty()).unwrap();
    let processor = processor(&config, &moto).await;
    // Compiles the parser component, which is no object's memory.
    processor.process(&object("warm-up.log")).await.unwrap();

    let before = HEAP_NOW.load(Relaxed);
    HEAP_PEAK.store(before, Relaxed);
    let mut objects = JoinSet::new();
    for n in 0..OBJECTS {
        let processor = processor.clone();
        objects.spawn(async move {
            processor
                .process(&object(&format!("long-{n}.log.gz")))
                .await
        });
    }
    while let Some(done) = objects.join_next().await {
        let summary = done.unwrap().expect("the object is stored");
        assert_eq!(summary.invalid_utf8_lines, 3, "{summary:?}");
    }
    let peak = HEAP_PEAK.load(Relaxed) - before;
    assert!(
        peak <= IN_FLIGHT_BYTES + OUTSIDE_THE_BUDGET,
        "{} MiB of heap at the peak, more than the {} MiB in flight and {} MiB besides",
        peak / MIB,
        IN_FLIGHT_BYTES / MIB,
        OUTSIDE_THE_BUDGET / MIB
    );
}
