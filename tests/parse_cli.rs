//! `s3logd parse` and `s3logd parsers` as a user runs them: the built
//! binary, local files and stdin, exit codes, and a custom parser component
//! loaded without rebuilding s3logd.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flate2::Compression;
use flate2::write::GzEncoder;

fn s3logd(args: &[&str], stdin: Option<&[u8]>) -> Output {
    s3logd_with_pid(args, stdin).1
}

/// [`s3logd`], also giving the process id the run had.
fn s3logd_with_pid(args: &[&str], stdin: Option<&[u8]>) -> (u32, Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    (pid, child.wait_with_output().unwrap())
}

fn records(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

const ALB_KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/123456789012_elasticloadbalancing_us-east-2_app.web.50dc6c495c0c9188_20240301T0005Z_10.0.0.1_abcd1234.log.gz";

const ALB_SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-parsers/alb/samples");
const ALB_SAMPLE: &str = "123456789012_elasticloadbalancing_us-east-2_app.web-prod.50dc6c495c0c9188_20240301T1205Z_10.0.1.17_3k9x2m1q.log.gz";

#[test]
fn plain_gzip_multi_member_and_stdin_give_the_same_records() {
    let lines = s3logd_test_support::alb::lines(3, 50);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.log");
    std::fs::write(&plain, &lines).unwrap();
    let (first, second) = lines.split_at(lines.find('\n').unwrap() * 10 + 1);
    let mut members = gzip(first.as_bytes());
    members.extend(gzip(second.as_bytes()));
    let zipped = dir.path().join("members.gz");
    std::fs::write(&zipped, members).unwrap();

    let by_file = s3logd(&["parse", "--key", ALB_KEY, plain.to_str().unwrap()], None);
    assert!(by_file.status.success(), "{}", stderr(&by_file));
    let expected = records(&by_file);
    assert_eq!(expected.len(), 50);
    assert_eq!(expected[0]["_msg"], lines.lines().next().unwrap());
    assert!(expected[0]["_time"].as_str().unwrap().ends_with('Z'));
    assert!(stderr(&by_file).contains("(alb, plain): 50 lines, 50 records, 0 line errors"));

    let by_gzip = s3logd(&["parse", "--key", ALB_KEY, zipped.to_str().unwrap()], None);
    assert_eq!(records(&by_gzip), expected);
    assert!(
        stderr(&by_gzip).contains("(alb, gzip)"),
        "{}",
        stderr(&by_gzip)
    );

    let by_stdin = s3logd(&["parse", "--format", "alb", "-"], Some(lines.as_bytes()));
    assert_eq!(records(&by_stdin), expected);
}

#[test]
fn bad_lines_are_reported_with_numbers_and_fail_only_when_asked() {
    let good = s3logd_test_support::alb::lines(4, 3);
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(1, "h2 not-a-time app/x");
    let input = lines.join("\n");

    let lenient = s3logd(&["parse", "--format", "alb", "-"], Some(input.as_bytes()));
    assert!(lenient.status.success());
    assert_eq!(records(&lenient).len(), 3);
    assert!(stderr(&lenient).contains("-:2: "), "{}", stderr(&lenient));
    assert!(stderr(&lenient).contains("4 lines, 3 records, 1 line errors"));

    let strict = s3logd(
        &["parse", "--strict", "--format", "alb", "-"],
        Some(input.as_bytes()),
    );
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(records(&strict).len(), 3, "records are still printed");

    let nothing = s3logd(
        &["parse", "--format", "alb", "-"],
        Some(b"garbage\nmore garbage\n"),
    );
    assert_eq!(nothing.status.code(), Some(1), "nothing could be parsed");
}

#[test]
fn a_truncated_gzip_shows_the_records_before_the_cut_then_the_error() {
    let text = s3logd_parser_sdk::testing::read_sample(ALB_SAMPLES, ALB_SAMPLE);
    let zipped = std::fs::read(Path::new(ALB_SAMPLES).join(ALB_SAMPLE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join(ALB_SAMPLE);
    std::fs::write(&cut, &zipped[..zipped.len() / 2]).unwrap();
    let name = cut.to_str().unwrap();

    for args in [vec!["parse", "--format", "alb", name], vec!["parse", name]] {
        let output = s3logd(&args, None);
        let printed = records(&output);
        let total = text.lines().count();
        assert!(
            (1..total).contains(&printed.len()),
            "{args:?}: {} of {total} records; {}",
            printed.len(),
            stderr(&output)
        );
        for (record, line) in printed.iter().zip(text.lines()) {
            assert_eq!(record["_msg"], line, "{args:?}");
        }
        let errors = stderr(&output);
        assert!(
            errors.contains(&format!("{name}: reading the object failed: ")),
            "{args:?}: {errors}"
        );
        let n = printed.len();
        assert!(
            errors.contains(&format!(
                "{name}: FAILED (alb, gzip): {n} lines, {n} records, 0 line errors"
            )),
            "{args:?}: {errors}"
        );
    }
}

#[test]
fn a_gzip_cut_before_its_first_line_still_names_the_parser_asked_for() {
    let zipped = std::fs::read(Path::new(ALB_SAMPLES).join(ALB_SAMPLE)).unwrap();
    let output = s3logd(&["parse", "--format", "alb", "-"], Some(&zipped[..12]));
    assert!(records(&output).is_empty());
    assert!(
        stderr(&output).contains("-: FAILED (alb, gzip): 0 lines, 0 records"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_format_names_the_available_parsers() {
    let output = s3logd(&["parse", "--format", "nope", "-"], Some(b""));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no parser named \"nope\""),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("alb"), "{}", stderr(&output));
}

#[test]
fn a_custom_parser_component_is_loaded_by_the_built_binary() {
    let example = s3logd_test_support::components::EXAMPLE_LOGFMT_PARSER;
    assert!(Path::new(example).is_file());
    let listed = s3logd(&["parsers", "--parser", example], None);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&format!("logfmt 0.1.0 ({example})")),
        "{listing}"
    );

    let input = "ts=2024-05-01T12:00:00Z level=info msg=\"hello world\" duration_ms=12\n";
    let output = s3logd(
        &["parse", "--parser", example, "--format", "logfmt", "-"],
        Some(input.as_bytes()),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let parsed = records(&output);
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0]["_time"], "2024-05-01T12:00:00Z");
    assert_eq!(parsed[0]["msg"], "hello world");
    assert_eq!(parsed[0]["duration_ms"], 12);
    assert_eq!(parsed[0]["_msg"], input.trim_end());
}

#[test]
fn the_parsers_listing_shows_every_bundled_format_and_its_schema() {
    let output = s3logd(&["parsers"], None);
    let listing = String::from_utf8_lossy(&output.stdout);
    for name in [
        "alb",
        "clb",
        "nlb",
        "alb-connection",
        "cloudfront",
        "vpc-flow",
        "waf",
        "cloudtrail",
        "s3-access",
        "cloudwatch-firehose",
        "ndjson",
        "regex",
    ] {
        assert!(
            listing.contains(&format!("\n{name} ")),
            "{name} missing from:\n{listing}"
        );
    }
    assert!(listing.contains("client_ip"), "ALB schema shown");
}

#[test]
fn a_perf_map_names_the_parser_functions_without_changing_the_records() {
    let lines = s3logd_test_support::alb::lines(5, 20);
    let args = ["parse", "--format", "alb", "--key", ALB_KEY, "-"];
    // perf reads its maps from /tmp whatever TMPDIR says.
    let map_of = |pid: u32| Path::new("/tmp").join(format!("perf-{pid}.map"));
    let (pid, plain) = s3logd_with_pid(&args, Some(lines.as_bytes()));
    assert!(!map_of(pid).exists(), "a map written without --perf-map");

    let (pid, profiled) = s3logd_with_pid(
        &[&["parse", "--perf-map"], &args[1..]].concat(),
        Some(lines.as_bytes()),
    );
    assert!(profiled.status.success(), "{}", stderr(&profiled));
    assert_eq!(records(&profiled), records(&plain));

    let map = map_of(pid);
    let symbols =
        std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    std::fs::remove_file(&map).unwrap();
    // perf's map format: start and size in hex, then the name. Bundled
    // components are stripped, so theirs are wasmtime's index names; an
    // author's unstripped build shows the Rust names.
    let entries: Vec<(&str, &str, &str)> = symbols
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            Some((fields.next()?, fields.next()?, fields.next()?))
        })
        .filter(|(_, _, name)| name.starts_with("wasm[0]::function["))
        .collect();
    assert!(entries.len() > 20, "{symbols}");
    for (start, size, _) in entries {
        let start = start.strip_prefix("0x").unwrap_or(start);
        assert!(u64::from_str_radix(start, 16).unwrap() > 0);
        assert!(u64::from_str_radix(size, 16).unwrap() > 0);
    }
}
