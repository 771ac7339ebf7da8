//! What the benchmarks share: a visitor that only counts records, the
//! single-thread parse path end to end (gunzip → line batches → parser
//! component → VictoriaLogs JSON), which the full-path benchmark is
//! measured against, and large gzipped ALB objects.

// Each benchmark uses a part of it.
#![allow(dead_code)]

pub mod process;

use std::io::Write;
use std::sync::Arc;

use s3logd::decode::BatchLimits;
use s3logd::parse::{LoadedParser, Parsers, Record, RecordVisitor};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};
use s3logd::sink::json::JsonLineWriter;

/// Counts records, for parse time without any output.
pub struct Count(pub u64);

impl RecordVisitor for Count {
    fn record(&mut self, _: &Record<'_>) {
        self.0 += 1;
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        bad_line(line, reason)
    }
}

/// Benchmark input has no bad lines, so a line error is a bug.
fn bad_line(line: u64, reason: &str) -> ! {
    panic!("line {line} of the benchmark input failed: {reason}");
}

/// Writes the VictoriaLogs body of every record, as the sink would, into
/// one buffer that is cleared each MiB.
pub struct Json {
    writer: JsonLineWriter,
    body: Vec<u8>,
    pub records: u64,
    bytes: u64,
}

impl Json {
    pub fn new() -> Json {
        Json {
            writer: JsonLineWriter::new(&[]),
            body: Vec::with_capacity(2 << 20),
            records: 0,
            bytes: 0,
        }
    }

    /// JSON written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes + self.body.len() as u64
    }
}

impl RecordVisitor for Json {
    fn record(&mut self, record: &Record<'_>) {
        self.writer.write(record, &mut self.body);
        self.records += 1;
        if self.body.len() > 1 << 20 {
            self.bytes += self.body.len() as u64;
            self.body.clear();
        }
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        bad_line(line, reason)
    }
}

/// What one run of [`parse_to_json`] made.
pub struct ParsePathRun {
    pub records: u64,
    pub json_bytes: u64,
}

/// Runs a gzipped object through `parser` on this thread, as the collector
/// does on each of its parsing threads, minus S3 and the sink.
pub fn parse_to_json(parsers: &Parsers, parser: &Arc<LoadedParser>, gz: &[u8]) -> ParsePathRun {
    let mut json = Json::new();
    let mut summary = ObjectSummary::default();
    let choice = ParserChoice::Named(parser.clone(), Vec::new());
    parse_object(
        parsers,
        &choice,
        "bench",
        gz,
        BatchLimits::default(),
        &mut json,
        &mut summary,
    )
    .expect("benchmark objects parse");
    ParsePathRun {
        records: json.records,
        json_bytes: json.bytes(),
    }
}

/// A gzipped ALB object of about `target_bytes` uncompressed: its bytes,
/// line count and uncompressed size.
pub fn alb_object(seed: u64, target_bytes: usize) -> (Vec<u8>, usize, usize) {
    let sample = s3logd_test_support::alb::lines(seed, 1_000);
    let lines = target_bytes * 1_000 / sample.len();
    let mut counted = CountingWriter {
        inner: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6)),
        bytes: 0,
    };
    s3logd_test_support::alb::write_lines(seed, lines, &mut counted).expect("gzip into memory");
    let gzipped = counted.inner.finish().expect("gzip into memory");
    (gzipped, lines, counted.bytes)
}

struct CountingWriter<W> {
    inner: W,
    bytes: usize,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
