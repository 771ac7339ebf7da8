//! The parser deadline (`parsers.call_timeout_ms`) is wall-clock time per
//! call: it runs on while the parser's thread waits for a core. The default
//! must therefore leave room for a well-behaved parser that shares the
//! machine: the longest call the default limits allow (one CloudTrail file,
//! which is a single line, of `max_line_bytes`; every other bundled format
//! is cut into batches of 256 KiB) must finish within the default deadline
//! divided by [`CONTENTION`].

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use s3logd::decode::BatchLimits;
use s3logd::parse::{Limits, Parsers, Record, RecordVisitor, Runtime};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};

/// The share of a core the call may get: 16 busy threads on 2 cores (four
/// times the default `queue.concurrency`, with compression and delivery
/// competing besides).
const CONTENTION: u32 = 8;

#[derive(Default)]
struct Counting {
    records: u64,
    errors: u64,
}

impl RecordVisitor for Counting {
    fn record(&mut self, _record: &Record<'_>) {
        self.records += 1;
    }
    fn line_error(&mut self, _line: u64, _text: &str, _reason: &str) {
        self.errors += 1;
    }
}

/// A CloudTrail file of the sample's events over and over, as long as fits
/// in `max_bytes`, and how many events it holds.
fn cloudtrail_file(max_bytes: usize) -> (Vec<u8>, u64) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-parsers/cloudtrail/samples/three-events.json.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(sample).expect("the CloudTrail sample"))
        .read_to_string(&mut text)
        .expect("the sample is gzip");
    let document: serde_json::Value = serde_json::from_str(&text).expect("the sample is JSON");
    let events: Vec<String> = document["Records"]
        .as_array()
        .expect("a Records array")
        .iter()
        .map(|event| event.to_string())
        .collect();
    let mut file = br#"{"Records":["#.to_vec();
    let mut count = 0;
    for event in events.iter().cycle() {
        if file.len() + event.len() + 3 > max_bytes {
            break;
        }
        if count > 0 {
            file.push(b',');
        }
        file.extend_from_slice(event.as_bytes());
        count += 1;
    }
    file.extend_from_slice(b"]}");
    (file, count)
}

#[test]
fn the_longest_default_call_of_the_bundled_parsers_fits_the_deadline_on_a_shared_core() {
    let batch_limits = BatchLimits::default();
    let (file, events) = cloudtrail_file(batch_limits.max_line_bytes);
    let limits = Limits {
        call_timeout: Limits::default().call_timeout / CONTENTION,
        ..Limits::default()
    };
    let parsers = Parsers::load(Arc::new(Runtime::new(limits).unwrap()), &[]).unwrap();
    let cloudtrail = parsers
        .get("cloudtrail")
        .expect("the bundled CloudTrail parser");
    let mut counting = Counting::default();
    let mut summary = ObjectSummary::default();
    let started = std::time::Instant::now();
    let parsed = parse_object(
        &parsers,
        &ParserChoice::Named(cloudtrail.clone(), Vec::new()),
        "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/big.json",
        file.as_slice(),
        batch_limits,
        &mut counting,
        &mut summary,
    );
    let took = started.elapsed();
    assert!(
        parsed.is_ok(),
        "{parsed:?} after {took:?} ({} MiB in one call)",
        file.len() >> 20
    );
    assert_eq!((counting.records, counting.errors), (events, 0));
    assert_eq!(summary.batches, 1, "the file is one call");
}
