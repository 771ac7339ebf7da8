//! Single-thread throughput of the parse path over generated ALB lines:
//! the native ALB parser, the same parser through its component, and
//! gunzip → line batches → component → VictoriaLogs JSON; then one row per
//! bundled format through its component, over its samples repeated.
//!
//! `cargo bench -p s3logd --bench parse_path` (env `BENCH_LINES`, default
//! 300000; `BENCH_ONLY=native,component,gunzip,native-json,json,formats`
//! picks rows, e.g. to profile one path). Prints a Markdown table; each figure is the median of
//! 3 runs.
//!
//! `BENCH_COMPARE=A.wasm,B.wasm` instead compares two builds of an ALB
//! parser component on the same lines: every batch goes through each in
//! turn, for `BENCH_ROUNDS` (default 10) rounds, and each side scores the
//! sum of its per-batch minimums. Separate runs of a shared VM differ by
//! more than the few per cent a change to a parser is worth; alternating
//! batch by batch in one process cancels most of that drift.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use s3logd::decode::{BatchLimits, Chunk, LineBatcher, decompress};
use s3logd::parse::{Limits, LoadedParser, OutputAllowance, Parsers, Runtime, visit_rows};
use s3logd_parser_sdk::BatchParser;
use s3logd_rows::{Decoder, Entry};
use s3logd_test_support::env_number;

mod common;
use common::{Count, Json, parse_to_json};

const BATCH: usize = 256 << 10;

struct Row {
    name: String,
    lines: u64,
    bytes: u64,
    time: Duration,
}

impl Row {
    fn print(&self) {
        let secs = self.time.as_secs_f64();
        println!(
            "| {} | {:.0}k | {:.0} | {:.0} |",
            self.name,
            self.lines as f64 / secs / 1e3,
            self.bytes as f64 / secs / 1e6,
            secs * 1e9 / self.lines as f64
        );
    }
}

fn median_of_3(mut run: impl FnMut() -> u64) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut produced = 0;
    for _ in 0..3 {
        let start = Instant::now();
        produced = std::hint::black_box(run());
        times.push(start.elapsed());
    }
    times.sort();
    (times[1], produced)
}

/// Batches of whole lines, as the host cuts them.
fn batches(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(BATCH);
        if end < rest.len() {
            end = rest[..end].rfind('\n').map_or(rest.len(), |i| i + 1);
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// Runs `batches` through a new session of `parser`.
fn count_records(parser: &LoadedParser, batches: &[&str]) -> u64 {
    let mut session = parser.open("bench", &[]).unwrap();
    let mut count = Count(0);
    for batch in batches {
        session.parse(batch, &mut count).unwrap();
    }
    count.0
}

/// Whether `BENCH_ONLY` (comma-separated) selects the rows called `group`.
fn wanted(group: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|g| g.trim() == group))
}

fn main() {
    let lines = env_number("BENCH_LINES", 300_000);
    let text = s3logd_test_support::alb::lines(42, lines);
    let runtime = Arc::new(Runtime::new(Limits::default()).unwrap());
    let batches = batches(&text);
    if let Ok(pair) = std::env::var("BENCH_COMPARE") {
        let paths: Vec<&str> = pair.split(',').collect();
        assert_eq!(paths.len(), 2, "BENCH_COMPARE={pair:?}: give A.wasm,B.wasm");
        compare(&runtime, [paths[0], paths[1]], &batches, lines as u64);
        return;
    }
    // Compressing takes longer than any row, so only for rows that read it.
    let gz = if ["gunzip", "native-json", "json"].into_iter().any(wanted) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    } else {
        Vec::new()
    };
    let parsers = Parsers::load(runtime, &[]).unwrap();
    let alb = parsers.get("alb").unwrap().clone();
    let n = lines as u64;
    let bytes = text.len() as u64;

    println!(
        "ALB input: {lines} lines, {:.1} MB ({:.0} B/line), gzip -6 {:.1} MB\n",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        gz.len() as f64 / 1e6
    );
    println!("| path (one thread) | lines/s | MB/s | ns/line |\n|---|---|---|---|");
    let alb_row = |name: &str, time| {
        Row {
            name: name.into(),
            lines: n,
            bytes,
            time,
        }
        .print()
    };

    if wanted("native") {
        // Like for like with the component row: the same rows, decoded on
        // the host; only the wasm boundary is missing.
        let (time, records) = median_of_3(|| {
            let mut parser =
                BatchParser::<s3logd_parser_alb::Alb>::open("bench", Vec::new()).unwrap();
            let mut records = 0;
            for batch in &batches {
                let encoded = parser.parse(batch);
                let mut values = Vec::new();
                let mut decoder = Decoder::new(&encoded, batch).unwrap();
                while let Some(entry) = decoder.next_entry(&mut values).unwrap() {
                    records += u64::from(matches!(entry, Entry::Row(_)));
                }
            }
            records
        });
        assert_eq!(records, n);
        alb_row(
            "native ALB parser (rows encoded, decoded on the host)",
            time,
        );
    }

    if wanted("component") {
        let (time, records) = median_of_3(|| count_records(&alb, &batches));
        assert_eq!(records, n);
        alb_row("ALB component (rows decoded on the host)", time);
    }

    if wanted("gunzip") {
        let (time, _) = median_of_3(|| {
            let (_, mut reader) = decompress(gz.as_slice()).unwrap();
            let mut buf = vec![0; BATCH];
            let mut total = 0;
            loop {
                match reader.read(&mut buf).unwrap() {
                    0 => break total,
                    n => total += n as u64,
                }
            }
        });
        alb_row("gunzip only (256 KiB reads)", time);
    }

    if wanted("native-json") {
        // The native path end to end: what the component path is compared with.
        let (time, _) = median_of_3(|| {
            let mut json = Json::new();
            let (_, reader) = decompress(gz.as_slice()).unwrap();
            let mut batcher = LineBatcher::new(reader, BatchLimits::default());
            let mut parser =
                BatchParser::<s3logd_parser_alb::Alb>::open("bench", Vec::new()).unwrap();
            let mut fields = alb.info.fields.clone();
            let mut allowance = OutputAllowance::new(&fields).unwrap();
            while let Some(Chunk::Lines(batch)) = batcher.next_chunk().unwrap() {
                let encoded = parser.parse(batch);
                visit_rows(&encoded, batch, &mut fields, &mut allowance, 0, &mut json).unwrap();
            }
            assert_eq!(json.records, n);
            json.bytes()
        });
        alb_row("gunzip → batches → native ALB parser → JSON", time);
    }

    if wanted("json") {
        let (time, json_bytes) = median_of_3(|| {
            let run = parse_to_json(&parsers, &alb, &gz);
            assert_eq!(run.records, n);
            run.json_bytes
        });
        alb_row("gunzip → batches → ALB component → JSON", time);
        println!("\nJSON body: {:.0} B/line\n", json_bytes as f64 / n as f64);
    }

    if !wanted("formats") {
        return;
    }
    println!("| format (component, one thread) | lines/s | MB/s | ns/line |\n|---|---|---|---|");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for parser in parsers.iter() {
        let name = &parser.info.name;
        let Some(sample) = clean_sample(&root.join("guest-parsers").join(name).join("samples"))
        else {
            println!("| {name} | (no sample without errors) | | |");
            continue;
        };
        let repeats = (20 << 20) / sample.len().max(1) + 1;
        let input = sample.repeat(repeats);
        let input_lines = input.lines().count() as u64;
        let batches = self::batches(&input);
        let (time, _) = median_of_3(|| count_records(parser, &batches));
        Row {
            name: name.clone(),
            lines: input_lines,
            bytes: input.len() as u64,
            time,
        }
        .print();
    }
}

/// `BENCH_COMPARE`: two components, batch by batch, alternating which goes
/// first; a side's time is the sum of its per-batch minimums.
fn compare(runtime: &Arc<Runtime>, paths: [&str; 2], batches: &[&str], lines: u64) {
    let rounds = env_number("BENCH_ROUNDS", 10);
    let parsers = paths.map(|path| {
        let loaded = Parsers::load(runtime.clone(), &[PathBuf::from(path)]).unwrap();
        // Custom components come first.
        loaded.iter().next().unwrap().clone()
    });
    let mut sessions = parsers.each_ref().map(|p| p.open("bench", &[]).unwrap());
    let mut best = vec![[Duration::MAX; 2]; batches.len()];
    let mut records = [0; 2];
    for round in 0..rounds {
        for (i, batch) in batches.iter().enumerate() {
            for turn in 0..2 {
                let side = (turn + round + i) % 2;
                let mut count = Count(0);
                let start = Instant::now();
                sessions[side].parse(batch, &mut count).unwrap();
                best[i][side] = best[i][side].min(start.elapsed());
                if round == 0 {
                    records[side] += count.0;
                }
            }
        }
    }
    assert_eq!(
        records[0], records[1],
        "the two parsers made different numbers of records"
    );
    let total = |side: usize| best.iter().map(|b| b[side]).sum::<Duration>();
    println!(
        "| component ({lines} ALB lines, best of {rounds} alternated rounds per batch) | ns/line |\n|---|---|"
    );
    for (side, path) in paths.iter().enumerate() {
        println!(
            "| {path} | {:.0} |",
            total(side).as_secs_f64() * 1e9 / lines as f64
        );
    }
    println!(
        "\nB/A: {:.3}",
        total(1).as_secs_f64() / total(0).as_secs_f64()
    );
}

/// The largest sample object of a parser that has no line errors.
fn clean_sample(dir: &Path) -> Option<String> {
    let index = std::fs::read_to_string(dir.join("keys.tsv")).ok()?;
    index
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.get(3) == Some(&"0")).then(|| cols[0])
        })
        .map(|file| {
            let (_, mut reader) = decompress(std::fs::File::open(dir.join(file)).unwrap()).unwrap();
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        })
        .max_by_key(String::len)
}
