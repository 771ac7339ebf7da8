//! A peer for s3logd's parse-path bench: Vector's VRL `parse_aws_alb_log`
//! over the same generated ALB lines (`s3logd_test_support::alb::lines`,
//! seed 42, as `host/benches/parse_path.rs` uses them), on one thread.
//!
//! Each line becomes an event `{"message": line}` and goes through a
//! compiled VRL program the way Vector's `remap` transform runs one:
//! `Runtime::resolve` on the event, then `Runtime::clear`. The function's
//! implementation is private to the vrl crate (only its `Function` value,
//! `vrl::stdlib::ParseAwsAlbLog`, is public), so a program is the only way
//! to call it; that is also what a Vector user pays. Rows:
//!
//! - `parse`: `. = parse_aws_alb_log!(.message, strict_mode: false)`, the
//!   event built from the line in memory and dropped after;
//! - `parse + JSON`: the same, then the resulting object written as one JSON
//!   line with serde_json (vrl's `Serialize` for `Value`), as s3logd's
//!   parse-path JSON rows write each record;
//! - `gunzip → lines → parse → JSON`: the same from the lines gzipped at
//!   level 6, inflated in 256 KiB reads with zlib-rs, as s3logd's
//!   "gunzip → batches → parser → JSON" rows;
//! - `merge + JSON`: `. |= parse_aws_alb_log!(...)`, which keeps `message`
//!   (the raw line) beside the fields, as s3logd's record keeps `_msg`.
//!
//! `strict_mode: false` is needed: in vrl 0.38 the function knows 30 of the
//! current format's 33 fields and, strictly, rejects a line that has the
//! last three (the bench checks that and prints how many lines failed).
//!
//! Env: `PEER_LINES` (default 100000), `PEER_ROUNDS` (default 5). Each row
//! reports the best and the median of its rounds, wall clock and thread CPU
//! time.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use vrl::compiler::runtime::Runtime;
use vrl::compiler::{Program, TargetValue, TimeZone, compile};
use vrl::value::{ObjectMap, Secrets, Value};

const SEED: u64 = 42;
const READ: usize = 256 << 10;
/// Output is flushed (cleared) past this, as a sink batch would be.
const OUT_BATCH: usize = 1 << 20;

const PARSE: &str = ". = parse_aws_alb_log!(.message, strict_mode: false)";
const PARSE_STRICT: &str = ". = parse_aws_alb_log!(.message)";
const MERGE: &str = ". |= parse_aws_alb_log!(.message, strict_mode: false)";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
        .unwrap_or(default)
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn program(source: &str) -> Program {
    let fns = vrl::stdlib::all();
    match compile(source, &fns) {
        Ok(result) => result.program,
        Err(diagnostics) => panic!("{source}: {diagnostics:?}"),
    }
}

/// A Vector log event as a source hands it to `remap`: `{"message": line}`.
fn event(line: &str) -> TargetValue {
    let mut fields = ObjectMap::new();
    fields.insert("message".into(), Value::from(line));
    TargetValue {
        value: Value::Object(fields),
        metadata: Value::Object(ObjectMap::new()),
        secrets: Secrets::new(),
    }
}

/// Runs `program` over one event; returns the event's value, or `None` when
/// the program failed (Vector would drop or reroute the event).
fn remap(runtime: &mut Runtime, program: &Program, tz: &TimeZone, line: &str) -> Option<Value> {
    let mut target = event(line);
    let result = runtime.resolve(&mut target, program, tz);
    runtime.clear();
    result.ok().map(|_| target.value)
}

struct Stats {
    name: &'static str,
    lines: u64,
    failed: u64,
    out_bytes: u64,
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Stats {
    fn new(name: &'static str) -> Stats {
        Stats {
            name,
            lines: 0,
            failed: 0,
            out_bytes: 0,
            wall: Vec::new(),
            cpu: Vec::new(),
        }
    }

    fn round(&mut self, mut run: impl FnMut() -> (u64, u64, u64)) {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let (lines, failed, out_bytes) = black_box(run());
        self.cpu.push(thread_cpu() - cpu);
        self.wall.push(wall.elapsed());
        (self.lines, self.failed, self.out_bytes) = (lines, failed, out_bytes);
    }

    fn print(&self) {
        let rate = |d: Duration| self.lines as f64 / d.as_secs_f64();
        let ns = |d: Duration| d.as_secs_f64() * 1e9 / self.lines as f64;
        let best_median = |times: &[Duration]| {
            let mut sorted = times.to_vec();
            sorted.sort();
            (sorted[0], sorted[sorted.len() / 2])
        };
        let (wall_best, wall_median) = best_median(&self.wall);
        let (cpu_best, cpu_median) = best_median(&self.cpu);
        let per_round: Vec<String> = self
            .wall
            .iter()
            .map(|d| format!("{:.0}k", rate(*d) / 1e3))
            .collect();
        println!(
            "| {} | {:.0}k ({:.0} ns) | {:.0}k | {:.0}k ({:.0} ns) | {:.0}k | {} | {} | {} |",
            self.name,
            rate(wall_best) / 1e3,
            ns(wall_best),
            rate(wall_median) / 1e3,
            rate(cpu_best) / 1e3,
            ns(cpu_best),
            rate(cpu_median) / 1e3,
            if self.out_bytes == 0 {
                "—".to_string()
            } else {
                format!("{:.0}", self.out_bytes as f64 / self.lines as f64)
            },
            self.failed,
            per_round.join(", "),
        );
    }
}

/// One event through `program` and, if `json`, out as a JSON line.
fn one(
    runtime: &mut Runtime,
    program: &Program,
    tz: &TimeZone,
    line: &str,
    json: Option<&mut Vec<u8>>,
    counts: &mut (u64, u64, u64),
) {
    counts.0 += 1;
    let Some(value) = remap(runtime, program, tz, line) else {
        counts.1 += 1;
        return;
    };
    match json {
        Some(out) => {
            let before = out.len();
            serde_json::to_writer(&mut *out, &value).expect("writing to a Vec cannot fail");
            out.push(b'\n');
            counts.2 += (out.len() - before) as u64;
            if out.len() > OUT_BATCH {
                black_box(&out[..]);
                out.clear();
            }
        }
        None => {
            black_box(&value);
        }
    }
}

fn in_memory(program: &Program, lines: &[&str], json: bool) -> (u64, u64, u64) {
    let tz = TimeZone::default();
    let mut runtime = Runtime::default();
    let mut out = Vec::with_capacity(OUT_BATCH + (64 << 10));
    let mut counts = (0, 0, 0);
    for line in lines {
        let sink = json.then_some(&mut out);
        one(&mut runtime, program, &tz, line, sink, &mut counts);
    }
    counts
}

fn from_gzip(program: &Program, gz: &[u8]) -> (u64, u64, u64) {
    let tz = TimeZone::default();
    let mut runtime = Runtime::default();
    let mut out = Vec::with_capacity(OUT_BATCH + (64 << 10));
    let mut counts = (0, 0, 0);
    let mut decoder = GzDecoder::new(gz);
    let mut buf = vec![0u8; READ];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = decoder.read(&mut buf).expect("gunzip");
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if !carry.is_empty() {
            let Some(nl) = chunk.iter().position(|&b| b == b'\n') else {
                carry.extend_from_slice(chunk);
                continue;
            };
            carry.extend_from_slice(&chunk[..nl]);
            let line = std::str::from_utf8(&carry).expect("utf-8");
            one(&mut runtime, program, &tz, line, Some(&mut out), &mut counts);
            carry.clear();
            chunk = &chunk[nl + 1..];
        }
        let whole = match chunk.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                carry.extend_from_slice(&chunk[last + 1..]);
                &chunk[..last]
            }
            None => {
                carry.extend_from_slice(chunk);
                continue;
            }
        };
        let text = std::str::from_utf8(whole).expect("utf-8");
        for line in text.split('\n') {
            one(&mut runtime, program, &tz, line, Some(&mut out), &mut counts);
        }
    }
    if !carry.is_empty() {
        let line = std::str::from_utf8(&carry).expect("utf-8");
        one(&mut runtime, program, &tz, line, Some(&mut out), &mut counts);
    }
    counts
}

fn main() {
    let count = env_number("PEER_LINES", 100_000);
    let rounds = env_number("PEER_ROUNDS", 5).max(1);

    let text = s3logd_test_support::alb::lines(SEED, count);
    let lines: Vec<&str> = text.lines().collect();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(text.as_bytes()).unwrap();
    let gz = encoder.finish().unwrap();

    let parse = program(PARSE);
    let strict = program(PARSE_STRICT);
    let merge = program(MERGE);

    // What the function makes of the lines: strictly, and one record.
    let (_, strict_failed, _) = in_memory(&strict, &lines, false);
    let tz = TimeZone::default();
    let first = remap(&mut Runtime::default(), &parse, &tz, lines[0]).expect("first line parses");
    let fields = first.as_object().map_or(0, |o| o.len());

    println!(
        "vrl 0.38.0 parse_aws_alb_log, {} lines (seed {SEED}), {:.1} MB ({:.0} B/line), {:.1} MB gzipped (level 6); best and median of {rounds} rounds, one thread",
        lines.len(),
        text.len() as f64 / 1e6,
        text.len() as f64 / lines.len() as f64,
        gz.len() as f64 / 1e6,
    );
    println!(
        "strict mode (`{PARSE_STRICT}`) rejects {strict_failed} of {} lines; the rows use strict_mode: false, giving {fields} fields a line",
        lines.len()
    );
    println!(
        "first record: {}",
        serde_json::to_string(&first).unwrap()
    );
    println!();
    println!(
        "| path (one thread) | wall best | wall median | CPU best | CPU median | JSON B/line | failed | wall per round |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    let mut rows = [
        Stats::new("VRL program, parse"),
        Stats::new("VRL program, parse + JSON"),
        Stats::new("gunzip → lines → VRL program → JSON"),
        Stats::new("VRL program with `. |=` (keeps message) + JSON"),
    ];
    // Rounds alternate between rows so that drift on a shared machine
    // spreads over all of them.
    for _ in 0..rounds {
        rows[0].round(|| in_memory(&parse, &lines, false));
        rows[1].round(|| in_memory(&parse, &lines, true));
        rows[2].round(|| from_gzip(&parse, &gz));
        rows[3].round(|| in_memory(&merge, &lines, true));
    }
    for row in &rows {
        row.print();
    }
}
