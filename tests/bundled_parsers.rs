//! Every bundled parser, as the component the binary embeds: each sample
//! object of each parser crate (listed in `guest-parsers/*/samples/keys.tsv`)
//! is detected from its key and first line and parses to the listed counts;
//! and the ALB component agrees with the same parser run natively.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use s3logd::decode::BatchLimits;
use s3logd::parse::{Limits, Parsers, Record, RecordVisitor, Runtime};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};
use s3logd_parser_sdk::testing::{self, Owned};
use s3logd_rows::Value;

fn parsers() -> &'static Parsers {
    static PARSERS: OnceLock<Parsers> = OnceLock::new();
    PARSERS.get_or_init(|| {
        let runtime = Arc::new(Runtime::new(Limits::default()).unwrap());
        Parsers::load(runtime, &[]).unwrap()
    })
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Sample {
    parser: String,
    file: PathBuf,
    key: String,
    records: u64,
    errors: u64,
}

fn samples() -> Vec<Sample> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(workspace().join("guest-parsers")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(index) = std::fs::read_to_string(dir.join("samples/keys.tsv")) else {
            continue;
        };
        let parser = dir.file_name().unwrap().to_string_lossy().to_string();
        for line in index.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{parser}/samples/keys.tsv: {line:?}");
            samples.push(Sample {
                parser: parser.clone(),
                file: dir.join("samples").join(cols[0]),
                key: cols[1].to_string(),
                records: cols[2].parse().unwrap(),
                errors: cols[3].parse().unwrap(),
            });
        }
    }
    assert!(samples.len() >= 20, "only {} samples found", samples.len());
    samples
}

#[derive(Default)]
struct Counting {
    records: u64,
    errors: Vec<(u64, String)>,
}

impl RecordVisitor for Counting {
    fn record(&mut self, _record: &Record<'_>) {
        self.records += 1;
    }
    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        self.errors.push((line, reason.to_string()));
    }
}

#[test]
fn every_sample_is_detected_by_key_and_parses_to_its_listed_counts() {
    let mut failures = Vec::new();
    for sample in samples() {
        let bytes = std::fs::read(&sample.file).unwrap();
        let mut counting = Counting::default();
        let mut summary = ObjectSummary::default();
        let result = parse_object(
            parsers(),
            &ParserChoice::Auto,
            &sample.key,
            bytes.as_slice(),
            BatchLimits::default(),
            &mut counting,
            &mut summary,
        );
        let got = (
            summary.parser.as_str(),
            counting.records,
            counting.errors.len() as u64,
        );
        let want = (sample.parser.as_str(), sample.records, sample.errors);
        if result.is_err() || got != want {
            failures.push(format!(
                "{}: got {got:?} ({result:?}, errors {:?}), want {want:?}",
                sample.file.display(),
                counting.errors
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Parses a sample with `parsers`, detecting its parser; returns the
/// parser's name and the counts.
fn parse_sample(parsers: &Parsers, sample: &Sample) -> (String, u64, u64) {
    let bytes = std::fs::read(&sample.file).unwrap();
    let mut counting = Counting::default();
    let mut summary = ObjectSummary::default();
    parse_object(
        parsers,
        &ParserChoice::Auto,
        &sample.key,
        bytes.as_slice(),
        BatchLimits::default(),
        &mut counting,
        &mut summary,
    )
    .unwrap();
    (
        summary.parser,
        counting.records,
        counting.errors.len() as u64,
    )
}

#[test]
fn a_cached_bundled_parser_is_prepared_on_its_first_object() {
    let cache = tempfile::tempdir().unwrap();
    let load = || {
        let runtime = Runtime::new(Limits::default())
            .unwrap()
            .with_cache_dir(Some(cache.path().into()));
        Parsers::load(Arc::new(runtime), &[]).unwrap()
    };
    let cold = load();
    assert!(cold.iter().all(|p| p.is_prepared()), "nothing cached yet");

    let warm = load();
    assert!(
        warm.iter().all(|p| !p.is_prepared()),
        "every description cached"
    );
    assert_eq!(warm.names(), cold.names());
    for (warm, cold) in warm.iter().zip(cold.iter()) {
        assert_eq!(format!("{:?}", warm.info), format!("{:?}", cold.info));
    }

    let sample = samples().into_iter().find(|s| s.parser == "alb").unwrap();
    let want = (sample.parser.clone(), sample.records, sample.errors);
    assert_eq!(parse_sample(&warm, &sample), want);
    assert_eq!(parse_sample(&cold, &sample), want);
    let prepared: Vec<&str> = warm
        .iter()
        .filter(|p| p.is_prepared())
        .map(|p| p.info.name.as_str())
        .collect();
    assert_eq!(prepared, ["alb"]);
}

#[test]
fn the_start_of_an_object_alone_picks_the_parser_that_declares_it() {
    let mut failures = Vec::new();
    for sample in samples() {
        let parser = parsers().get(&sample.parser).unwrap();
        if parser.info.first_line_patterns.is_empty() {
            continue;
        }
        let mut text = String::new();
        let (_, mut reader) =
            s3logd::decode::decompress(std::fs::File::open(&sample.file).unwrap()).unwrap();
        std::io::Read::read_to_string(&mut reader, &mut text).unwrap();
        let detected = parsers()
            .detect("no/recognisable/key", &text)
            .map(|p| p.info.name.as_str());
        if detected != Some(sample.parser.as_str()) {
            failures.push(format!("{}: detected {detected:?}", sample.file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A record in a shape both the native and the component path can produce.
type Comparable = (Option<i64>, Option<String>, Vec<(String, String)>);

fn show_owned(value: &Owned) -> String {
    match value {
        Owned::Str(s) => s.clone(),
        Owned::Int(v) | Owned::Timestamp(v) => v.to_string(),
        Owned::Float(v) => v.to_string(),
        Owned::Bool(v) => v.to_string(),
        Owned::List(items) => items.iter().map(show_owned).collect::<Vec<_>>().join("|"),
    }
}

fn show_value(value: Value<'_>) -> String {
    match value {
        Value::Absent => String::new(),
        Value::Str(s) => s.to_string(),
        Value::Int(v) | Value::Timestamp(v) => v.to_string(),
        Value::Float(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::List(items) => items.iter().map(show_value).collect::<Vec<_>>().join("|"),
    }
}

#[derive(Default)]
struct Comparing(Vec<Comparable>);

impl RecordVisitor for Comparing {
    fn record(&mut self, record: &Record<'_>) {
        let mut fields: Vec<(String, String)> = record
            .present()
            .map(|(field, value)| (field.name.clone(), show_value(value)))
            .collect();
        fields.sort();
        self.0
            .push((record.time, record.msg.map(str::to_string), fields));
    }
    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        panic!("line {line}: {reason}");
    }
}

#[test]
fn the_alb_component_agrees_with_the_native_parser() {
    let input = s3logd_test_support::alb::lines(7, 3000);
    let native: Vec<Comparable> = testing::parse::<s3logd_parser_alb::Alb>("x", &[], &input)
        .unwrap()
        .records
        .into_iter()
        .map(|r| {
            let fields = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), show_owned(v)))
                .collect();
            (r.time, r.msg, fields)
        })
        .collect();

    let mut component = Comparing::default();
    let choice = ParserChoice::Named(parsers().get("alb").unwrap().clone(), Vec::new());
    let limits = BatchLimits {
        batch_bytes: 64 << 10,
        ..BatchLimits::default()
    };
    let mut summary = ObjectSummary::default();
    parse_object(
        parsers(),
        &choice,
        "x",
        input.as_bytes(),
        limits,
        &mut component,
        &mut summary,
    )
    .unwrap();
    assert!(summary.batches > 10, "several batches: {}", summary.batches);
    assert_eq!(native.len(), 3000);
    assert_eq!(component.0, native);
}

/// A CloudTrail document of `count` events on one line.
fn cloudtrail_document(count: usize) -> String {
    let event = |i: usize| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-05-01T12:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{}","userAgent":"aws-cli/2.15 Python/3.11","requestParameters":{{"bucketName":"logs","key":"object-{i}"}},"requestID":"REQ{i:08}","eventID":"{i:08}-0000-4000-8000-000000000000","recipientAccountId":"123456789012"}}"#,
            i / 60 % 60,
            i % 60,
            i % 250
        )
    };
    let records: Vec<String> = (0..count).map(event).collect();
    format!("{{\"Records\":[{}]}}", records.join(","))
}

#[test]
fn a_cloudtrail_file_of_several_megabytes_on_one_line_parses_through_the_component() {
    let count = 12_000;
    let document = cloudtrail_document(count);
    assert!(document.len() > 3 << 20, "{} bytes", document.len());
    let key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/123456789012_CloudTrail_us-east-1_20240501T1205Z_abcdefghijklmnop.json.gz";
    let mut counting = Counting::default();
    let mut summary = ObjectSummary::default();
    parse_object(
        parsers(),
        &ParserChoice::Auto,
        key,
        document.as_bytes(),
        BatchLimits::default(),
        &mut counting,
        &mut summary,
    )
    .unwrap();
    assert_eq!(summary.parser, "cloudtrail");
    assert_eq!((summary.outcome.lines, counting.records), (1, count as u64));
    assert!(counting.errors.is_empty(), "{:?}", counting.errors);
}

/// `document` as `jq .` lays it out: a line per key, indented by depth.
fn pretty_printed(document: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(document).unwrap();
    let mut pretty = serde_json::to_string_pretty(&value).unwrap();
    pretty.push('\n');
    pretty
}

#[test]
fn a_pretty_printed_cloudtrail_file_is_found_and_parses_as_its_one_line_form_does() {
    let one_line = {
        // Keys sorted as the pretty form has them, so that both compare.
        let value: serde_json::Value = serde_json::from_str(&cloudtrail_document(3000)).unwrap();
        serde_json::to_string(&value).unwrap()
    };
    let pretty = pretty_printed(&one_line);
    let parse = |text: &str| {
        let mut records = Comparing::default();
        let mut summary = ObjectSummary::default();
        parse_object(
            parsers(),
            &ParserChoice::Auto,
            "exports/trail.json",
            text.as_bytes(),
            BatchLimits {
                batch_bytes: 64 << 10,
                ..BatchLimits::default()
            },
            &mut records,
            &mut summary,
        )
        .unwrap();
        (records.0, summary)
    };
    let (expected, _) = parse(&one_line);
    let (records, summary) = parse(&pretty);
    assert_eq!(summary.parser, "cloudtrail");
    assert!(summary.batches > 10, "several batches: {}", summary.batches);
    assert_eq!(summary.outcome.lines, pretty.lines().count() as u64);
    assert_eq!(summary.outcome.line_errors, 0);
    assert_eq!(records.len(), 3000);
    assert_eq!(records, expected);
}
