//! Soak of `s3logd run` (issue 16): objects of four formats arrive in moto's
//! S3 at a steady rate for a long time, announced by S3's own notifications
//! on the queue, and the collector streams them into a receiver that only
//! counts lines. Every few seconds the bench samples the collector's RSS,
//! open file descriptors, threads and async tasks (its
//! `s3logd_runtime_alive_tasks`), the records delivered and the queue's
//! depth. At the end it prints the samples a minute apart and, for each
//! resource after the warm-up, its range and least-squares slope with a
//! verdict: flat, or growing. A resource that grows without bound under
//! steady load is a leak, whatever its size after a short run.
//!
//!     cargo bench -p s3logd --bench soak
//!
//! `S3LOGD_SOAK_SECS` (default 1800), `S3LOGD_SOAK_WARMUP_SECS` (default a
//! sixth of the run), `S3LOGD_SOAK_OBJECTS_PER_SEC` (default 2) and
//! `S3LOGD_SOAK_LINES` (lines per object, default 1000) change the load.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use common::formats::Format;
use common::{BUCKET, Collector, Harness, Notify};
use process::{open_fds, proc_status_count, proc_status_kib};
use s3logd_test_support::env_number;
use s3logd_test_support::moto::QueueCounts;
use s3logd_test_support::victorialogs::VictoriaLogs;
use tokio::time::MissedTickBehavior;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples shown in the printed table: one a minute.
const TABLE_EVERY: usize = 12;
/// Longest the collector may take to catch up once the load stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

fn main() {
    let seconds = env_number("S3LOGD_SOAK_SECS", 1800);
    let load = Load {
        duration: Duration::from_secs(seconds as u64),
        warm_up: Duration::from_secs(env_number("S3LOGD_SOAK_WARMUP_SECS", seconds / 6) as u64),
        objects_per_second: env_number("S3LOGD_SOAK_OBJECTS_PER_SEC", 2).max(1),
        lines_per_object: env_number("S3LOGD_SOAK_LINES", 1000).max(1),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(soak(load));
}

struct Load {
    duration: Duration,
    warm_up: Duration,
    objects_per_second: usize,
    lines_per_object: usize,
}

/// One reading of the collector and its queue.
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    tasks: u64,
    records_delivered: u64,
    queue: QueueCounts,
}

async fn soak(load: Load) {
    let harness = Harness::start_with_receiver(
        Notify::Queue,
        Duration::from_secs(300),
        VictoriaLogs::start_counting(),
    )
    .await;
    let mut settings = harness.settings();
    settings.log_level = "info".to_owned();
    settings.routes = Format::routes();
    let collector = harness.run(&settings).await;
    eprintln!(
        "soak: {} objects/s of {} lines, four formats in turn, for {:?} (warm-up {:?})",
        load.objects_per_second, load.lines_per_object, load.duration, load.warm_up
    );

    let mut uploads =
        tokio::time::interval(Duration::from_secs(1) / load.objects_per_second as u32);
    // A slow upload delays the ones after it rather than bunching them up.
    uploads.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sampling = tokio::time::interval(SAMPLE_EVERY);
    let started = Instant::now();
    let mut samples = Vec::new();
    let (mut objects, mut lines) = (0u64, 0u64);
    while started.elapsed() < load.duration {
        tokio::select! {
            _ = uploads.tick() => {
                let (object, body) = Format::nth(objects).object(objects, load.lines_per_object);
                harness.moto.put_object(BUCKET, &object.key, body).await;
                objects += 1;
                lines += object.lines.len() as u64;
            }
            _ = sampling.tick() => {
                let sample = take_sample(&harness, &collector, started).await;
                print_progress(&sample, lines);
                samples.push(sample);
            }
        }
    }
    eprintln!("soak: load stopped after {objects} objects, {lines} lines; draining");

    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while harness.receiver.counters().rows_stored < lines {
        assert!(
            Instant::now() < deadline,
            "{} of {lines} lines stored {DRAIN_TIMEOUT:?} after the load stopped",
            harness.receiver.counters().rows_stored
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    harness.wait_for_empty_queue().await;
    let records = collector.metrics().await.value("s3logd_records_total");
    assert_eq!(
        records, lines as f64,
        "records counted by the collector after the drain"
    );
    samples.push(take_sample(&harness, &collector, started).await);

    print_table(&samples);
    println!(
        "\ndelivered {lines} lines of {objects} objects ({} objects/s x {} lines, four formats); queue empty",
        load.objects_per_second, load.lines_per_object
    );
    print_verdict(&samples, load.warm_up, load.duration);
}

async fn take_sample(harness: &Harness, collector: &Collector, started: Instant) -> Sample {
    let pid = collector.pid();
    let metrics = collector.metrics().await;
    Sample {
        at: started.elapsed(),
        rss_kib: proc_status_kib(pid, "VmRSS"),
        fds: open_fds(pid),
        threads: proc_status_count(pid, "Threads"),
        tasks: metrics.value("s3logd_runtime_alive_tasks") as u64,
        records_delivered: harness.receiver.counters().rows_stored,
        queue: harness.queue_counts().await,
    }
}

fn print_progress(sample: &Sample, lines_uploaded: u64) {
    eprintln!(
        "{:>6.0} s  RSS {:>6.1} MiB  fds {:>3}  threads {:>3}  tasks {:>3}  delivered {:>9} of {:>9}  queue {}+{}",
        sample.at.as_secs_f64(),
        sample.rss_kib as f64 / 1024.0,
        sample.fds,
        sample.threads,
        sample.tasks,
        sample.records_delivered,
        lines_uploaded,
        sample.queue.visible,
        sample.queue.not_visible,
    );
}

fn print_table(samples: &[Sample]) {
    println!(
        "\n| time | RSS MiB | open fds | threads | tasks | records delivered | queue visible + in flight |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let last = samples.len() - 1;
    for (index, sample) in samples.iter().enumerate() {
        if index % TABLE_EVERY == 0 || index == last {
            println!(
                "| {:.0} s | {:.1} | {} | {} | {} | {} | {} + {} |",
                sample.at.as_secs_f64(),
                sample.rss_kib as f64 / 1024.0,
                sample.fds,
                sample.threads,
                sample.tasks,
                sample.records_delivered,
                sample.queue.visible,
                sample.queue.not_visible,
            );
        }
    }
}

/// How far a resource may drift over the measured window and still count
/// as flat: the larger of an absolute allowance (the noise of one busy
/// moment: a connection, a task per object in work) and a share of its mean.
struct Allowance {
    name: &'static str,
    unit: &'static str,
    absolute: f64,
    read: fn(&Sample) -> f64,
}

const SHARE_OF_MEAN: f64 = 0.05;

const RESOURCES: [Allowance; 4] = [
    Allowance {
        name: "RSS",
        unit: "MiB",
        absolute: 4.0,
        read: |s| s.rss_kib as f64 / 1024.0,
    },
    Allowance {
        name: "open fds",
        unit: "",
        absolute: 4.0,
        read: |s| s.fds as f64,
    },
    Allowance {
        name: "threads",
        unit: "",
        absolute: 2.0,
        read: |s| s.threads as f64,
    },
    Allowance {
        name: "tasks",
        unit: "",
        absolute: 8.0,
        read: |s| s.tasks as f64,
    },
];

/// Range and trend of each resource over the samples after the warm-up and
/// before the drain (the final sample is of an idle collector).
fn print_verdict(samples: &[Sample], warm_up: Duration, duration: Duration) {
    let measured: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= warm_up && s.at <= duration)
        .collect();
    assert!(
        measured.len() >= 3,
        "too few samples after the warm-up to fit a trend; run longer"
    );
    let window = measured[measured.len() - 1].at - measured[0].at;
    println!(
        "after the warm-up ({:.0} s to {:.0} s, {} samples):",
        measured[0].at.as_secs_f64(),
        measured[measured.len() - 1].at.as_secs_f64(),
        measured.len()
    );
    let mut all_flat = true;
    for resource in &RESOURCES {
        let points: Vec<(f64, f64)> = measured
            .iter()
            .map(|s| (s.at.as_secs_f64(), (resource.read)(s)))
            .collect();
        let values = points.iter().map(|&(_, v)| v);
        let min = values.clone().fold(f64::INFINITY, f64::min);
        let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
        let mean = values.sum::<f64>() / points.len() as f64;
        let slope = least_squares_slope(&points);
        let drift = slope * window.as_secs_f64();
        let allowed = resource.absolute.max(SHARE_OF_MEAN * mean);
        let flat = drift <= allowed;
        all_flat &= flat;
        println!(
            "  {:<8} min {min:.1} max {max:.1} (max-min {:.1}) {unit}; slope {:+.2} {unit}/h, \
             fitted drift over the window {drift:+.1} (allowed {allowed:.1}): {}",
            resource.name,
            max - min,
            slope * 3600.0,
            if flat { "flat" } else { "GROWING" },
            unit = resource.unit,
        );
    }
    println!(
        "verdict: {}",
        if all_flat {
            "flat after warm-up"
        } else {
            "a resource grows under steady load"
        }
    );
}

/// The slope of the least-squares line through `points`.
fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    covariance / variance
}
