//! What the sinks cost per line on top of parsing: each store's encoder
//! (VictoriaLogs' JSON lines, Elasticsearch's bulk lines, Loki's entries),
//! two of them at once as a fan-out does (one parse, two encodings), then
//! compressing batches of JSON lines with each `compression` setting,
//! over realistic ALB lines parsed by the bundled parser.
//!
//! cargo bench -p s3logd --bench sink_encoding --profile dev \
//!     --config 'profile.dev.package.s3logd.opt-level=3'
//!
//! (dev keeps wasmtime's already-optimised build; the override optimises
//! s3logd's own code, JsonLineWriter included). `SINK_BENCH_LINES` sets the
//! number of lines (default 50 000). Times are the bench thread's CPU time;
//! the parse figures leave out wasmtime's epoch ticker thread.

use std::sync::Arc;
use std::time::Duration;

use s3logd::config::Compression;
use s3logd::decode::BatchLimits;
use s3logd::parse::{Limits, Parsers, Record, RecordVisitor, Runtime};

mod common;
use common::Count;
use s3logd::config::{ElasticsearchOptions, LokiLine};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};
use s3logd::sink::delivery::{Encoded, Origin};
use s3logd::sink::elasticsearch::BulkEncoding;
use s3logd::sink::http::compress;
use s3logd::sink::json::{JsonLineWriter, JsonLines as JsonLinesEncoding};
use s3logd::sink::loki::LokiEncoding;
use s3logd::sink::{Encoding, ObjectContext, RecordEncoder};

const ROUNDS: usize = 3;
const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/06/123456789012_elasticloadbalancing_eu-west-1_app.web.1_20240506T0705Z_10.0.0.1_abc.log";

/// Writes every record as a JSON line.
struct JsonLines {
    writer: JsonLineWriter,
    out: Vec<u8>,
}

impl RecordVisitor for JsonLines {
    fn record(&mut self, record: &Record<'_>) {
        self.writer.write(record, &mut self.out);
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        panic!("line {line} of generated ALB lines failed: {reason}");
    }
}

/// Encodes every record with each sink's encoder, as the collector does.
struct Encode {
    sinks: Vec<(Box<dyn RecordEncoder>, Encoded)>,
    index: u64,
}

impl RecordVisitor for Encode {
    fn record(&mut self, record: &Record<'_>) {
        for (encoder, out) in &mut self.sinks {
            encoder.encode(record, self.index, out);
        }
        self.index += 1;
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        panic!("line {line} of generated ALB lines failed: {reason}");
    }
}

/// Time this thread spent on a CPU (Linux): on a machine shared with other
/// builds, wall time measures the neighbours as much as the work.
fn parse(parsers: &Parsers, choice: &ParserChoice, raw: &str, visitor: &mut impl RecordVisitor) {
    let summary = &mut ObjectSummary::default();
    parse_object(
        parsers,
        choice,
        KEY,
        raw.as_bytes(),
        BatchLimits::default(),
        visitor,
        summary,
    )
    .expect("parses");
}

fn thread_cpu_time() -> Duration {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (Linux) is readable");
    let nanos = schedstat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .expect("schedstat starts with nanoseconds on CPU");
    Duration::from_nanos(nanos)
}

/// The least CPU time of ROUNDS runs of `work`.
fn best_of(mut work: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = thread_cpu_time();
            work();
            thread_cpu_time() - start
        })
        .min()
        .expect("at least one round")
}

fn micros_per_line(elapsed: Duration, lines: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / lines as f64
}

/// Cuts JSON lines into batches of about `batch_bytes`, at line ends.
fn batches(json: &[u8], batch_bytes: usize) -> Vec<Vec<u8>> {
    let mut batches = Vec::new();
    let mut rest = json;
    while !rest.is_empty() {
        let end = if rest.len() <= batch_bytes {
            rest.len()
        } else {
            batch_bytes
                + memchr::memchr(b'\n', &rest[batch_bytes..])
                    .map_or(rest.len() - batch_bytes, |i| i + 1)
        };
        batches.push(rest[..end].to_vec());
        rest = &rest[end..];
    }
    batches
}

fn main() {
    let line_count = s3logd_test_support::env_number("SINK_BENCH_LINES", 50_000);
    let raw = s3logd_test_support::alb::lines(1, line_count);
    let runtime = Arc::new(Runtime::new(Limits::default()).expect("wasm runtime"));
    let parsers = Parsers::load(runtime, &[]).expect("bundled parsers");
    let alb = parsers.get("alb").expect("the bundled alb parser").clone();
    let choice = ParserChoice::Named(alb, Vec::new());

    let mut json = Vec::new();
    let with_json = best_of(|| {
        let mut visitor = JsonLines {
            writer: JsonLineWriter::new(&[("bucket".into(), "logs".into())]),
            out: Vec::with_capacity(raw.len() * 2),
        };
        parse(&parsers, &choice, &raw, &mut visitor);
        json = visitor.out;
    });
    let parse_only = best_of(|| {
        let mut visitor = Count(0);
        parse(&parsers, &choice, &raw, &mut visitor);
        assert_eq!(visitor.0 as usize, line_count);
    });
    println!(
        "{line_count} ALB lines, {:.0} B/line raw, {:.0} B/line as JSON",
        raw.len() as f64 / line_count as f64,
        json.len() as f64 / line_count as f64
    );
    println!(
        "parse only {:.2} µs/line, parse + JSON {:.2} µs/line: JSON encoding ≈ {:.2} µs/line",
        micros_per_line(parse_only, line_count),
        micros_per_line(with_json, line_count),
        micros_per_line(with_json.saturating_sub(parse_only), line_count)
    );

    let origin = Arc::new(Origin {
        bucket: "logs".into(),
        key: KEY.into(),
        version: "v1".into(),
    });
    let fields = [("bucket".to_owned(), "logs".to_owned())];
    let stream_fields = ["log_type", "elb"].map(String::from).to_vec();
    let victorialogs = || -> Box<dyn Encoding> { Box::new(JsonLinesEncoding) };
    let elasticsearch = || -> Box<dyn Encoding> {
        Box::new(BulkEncoding::new(&ElasticsearchOptions::default()).expect("valid"))
    };
    let loki = |line| -> Box<dyn Encoding> {
        Box::new(LokiEncoding::new(
            stream_fields.clone(),
            &Default::default(),
            line,
        ))
    };
    let encodings: [(&str, Vec<Box<dyn Encoding>>); 5] = [
        ("victorialogs", vec![victorialogs()]),
        ("elasticsearch", vec![elasticsearch()]),
        ("loki (json)", vec![loki(LokiLine::Json)]),
        ("loki (raw)", vec![loki(LokiLine::Raw)]),
        ("vl + es", vec![victorialogs(), elasticsearch()]),
    ];
    for (name, encodings) in &encodings {
        let mut bytes = 0;
        let elapsed = best_of(|| {
            let context = ObjectContext {
                origin: &origin,
                fields: &fields,
            };
            let mut visitor = Encode {
                sinks: encodings
                    .iter()
                    .map(|encoding| {
                        let out = Encoded::new(Vec::with_capacity(raw.len() * 3), origin.clone());
                        (encoding.encoder(&context), out)
                    })
                    .collect(),
                index: 0,
            };
            parse(&parsers, &choice, &raw, &mut visitor);
            bytes = visitor.sinks.iter().map(|(_, out)| out.len()).sum();
        });
        let encoding = elapsed.saturating_sub(parse_only);
        println!(
            "{name:>14}: parse + encode {:.2} µs/line, encoding ≈ {:.2} µs/line ({:.0} records/s), {:.0} B/line",
            micros_per_line(elapsed, line_count),
            micros_per_line(encoding, line_count),
            line_count as f64 / encoding.as_secs_f64(),
            bytes as f64 / line_count as f64
        );
    }

    for batch_bytes in [1 << 20, 8 << 20] {
        let batches = batches(&json, batch_bytes);
        for compression in [
            Compression::None,
            Compression::Snappy,
            Compression::Gzip,
            Compression::Zstd,
        ] {
            let mut sent = 0;
            let elapsed = best_of(|| {
                sent = batches
                    .iter()
                    .map(|batch| {
                        compress(compression, batch)
                            .expect("compresses")
                            .map_or(batch.len(), |(body, _)| body.len())
                    })
                    .sum();
            });
            println!(
                "batches of {:>2} MiB, {compression:>6}: {:.3} µs/line, ratio {:.1}:1 ({:.0} B/line sent)",
                batch_bytes >> 20,
                micros_per_line(elapsed, line_count),
                json.len() as f64 / sent as f64,
                sent as f64 / line_count as f64
            );
        }
    }
}
