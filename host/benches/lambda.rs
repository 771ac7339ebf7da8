//! `s3logd` as a Lambda function, run as Lambda runs it against the
//! Runtime API emulator of the test support, with moto's S3 and a
//! receiver that only counts lines. Reported: cold start (process start to
//! the first invocation answered, an SQS batch holding S3's test event,
//! which needs no object) with the parsers compiled at start and shipped
//! compiled in `parser-cache/` as `deploy/lambda/build.sh` packs them, the time to handle one S3 event naming a large
//! gzipped ALB object (from the function taking the event to its answer,
//! every record stored by then) and the function's peak RSS (VmHWM).
//!
//!     cargo bench -p s3logd --bench lambda
//!
//! `S3LOGD_BENCH_OBJECT_MB` (uncompressed MB, default 100) and
//! `S3LOGD_BENCH_COLD_STARTS` (default 5) change the load.

#[path = "common/mod.rs"]
mod paths;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paths::process::proc_status_kib;
use s3logd_test_support::env_number;
use s3logd_test_support::lambda_runtime::{Outcome, RuntimeApi};
use s3logd_test_support::moto::{self, MotoServer};
use s3logd_test_support::victorialogs::VictoriaLogs;
use serde_json::{Value, json};

const BUCKET: &str = "alb-logs";
const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/\
                   123456789012_elasticloadbalancing_us-east-2_app.web-prod.50dc6c495c0c9188_20240301T1205Z_10.0.1.1_5x4k2m1.log.gz";
const TIMEOUT: Duration = Duration::from_secs(900);

fn main() {
    let object_mb = env_number("S3LOGD_BENCH_OBJECT_MB", 100);
    let cold_starts = env_number("S3LOGD_BENCH_COLD_STARTS", 5);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench(object_mb, cold_starts));
}

async fn bench(object_mb: usize, cold_starts: usize) {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start_counting();
    let (gzipped, lines, bytes) = paths::alb_object(1, object_mb * 1_000_000);
    let gzipped_mb = gzipped.len() as f64 / 1e6;
    moto.put_object(BUCKET, KEY, gzipped).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n\
         [sink.victorialogs]\nurl = \"{}\"\n\n\
         [dead_letter]\npath = \"{}/dead-letter.ndjson\"\n\n[log]\nlevel = \"warn\"\n",
        moto.endpoint(),
        receiver.url(),
        dir.path().display()
    );
    std::fs::write(dir.path().join("s3logd.toml"), config).unwrap();

    // As a package without parser-cache/ starts, then as build.sh packs it.
    let uncached = cold_start_ms(dir.path(), cold_starts).await;
    let cache = dir.path().join("parser-cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let compiled = Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .arg("parsers")
        .env("S3LOGD_CACHE_DIR", &cache)
        .stdout(Stdio::null())
        .status()
        .expect("cannot run s3logd parsers");
    assert!(compiled.success());
    let cached = cold_start_ms(dir.path(), cold_starts).await;

    let api = RuntimeApi::start();
    let mut function = spawn(&api, dir.path());
    let warm = api
        .invoke(test_event_batch(), TIMEOUT)
        .answered(TIMEOUT)
        .await;
    assert!(matches!(warm.outcome, Outcome::Response(_)));
    let rss_before = proc_status_kib(function.id(), "VmHWM");
    let answered = api.invoke(s3_event(), TIMEOUT).answered(TIMEOUT).await;
    assert_eq!(answered.outcome, Outcome::Response(json!({"stored": 1})));
    let handled = answered.answered_at.duration_since(answered.taken_at);
    let peak_rss = proc_status_kib(function.id(), "VmHWM");
    assert_eq!(receiver.counters().rows_stored, lines as u64);
    function.kill().unwrap();
    function.wait().unwrap();

    let mib = |kib: u64| kib as f64 / 1024.0;
    let spread = |starts: &[f64]| {
        format!(
            "median {:.0} ms, min {:.0} ms, max {:.0} ms",
            starts[starts.len() / 2],
            starts[0],
            starts[starts.len() - 1]
        )
    };
    println!(
        "lambda: cold start to the first invocation answered, {cold_starts} starts each:\n  \
         parsers compiled at start:        {}\n  \
         parsers shipped compiled (cache): {}\n\
         one S3 event, {:.0} MB ALB object ({gzipped_mb:.1} MB gzipped, {lines} lines): \
         {:.2} s, {:.1} MB/s\n\
         peak RSS {:.1} MiB (after start-up {:.1} MiB)",
        spread(&uncached),
        spread(&cached),
        bytes as f64 / 1e6,
        handled.as_secs_f64(),
        bytes as f64 / 1e6 / handled.as_secs_f64(),
        mib(peak_rss),
        mib(rss_before),
    );
}

/// Milliseconds from starting the function in `task_root` to its first
/// invocation answered, `count` times, sorted.
async fn cold_start_ms(task_root: &std::path::Path, count: usize) -> Vec<f64> {
    let mut starts = Vec::new();
    for _ in 0..count {
        let api = RuntimeApi::start();
        let started = Instant::now();
        let mut function = spawn(&api, task_root);
        let answered = api
            .invoke(test_event_batch(), TIMEOUT)
            .answered(TIMEOUT)
            .await;
        assert_eq!(
            answered.outcome,
            Outcome::Response(json!({"batchItemFailures": []}))
        );
        starts.push(answered.answered_at.duration_since(started).as_secs_f64() * 1e3);
        function.kill().unwrap();
        function.wait().unwrap();
    }
    starts.sort_by(f64::total_cmp);
    starts
}

/// The function as Lambda starts it: `bootstrap` without arguments, its
/// configuration bundled in the task root.
fn spawn(api: &RuntimeApi, task_root: &std::path::Path) -> Child {
    moto::aws_env(&mut Command::new(env!("CARGO_BIN_EXE_s3logd")))
        .envs(api.function_env(1024))
        .env("LAMBDA_TASK_ROOT", task_root)
        .env_remove("S3LOGD_CACHE_DIR")
        .current_dir(task_root)
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start s3logd")
}

fn test_event_batch() -> Value {
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET});
    json!({"Records": [{
        "messageId": "test-event",
        "receiptHandle": "receipt",
        "body": test_event.to_string(),
        "eventSource": "aws:sqs",
    }]})
}

fn s3_event() -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": KEY}},
    }]})
}
