//! The sandbox holds against deliberately broken parser components: each
//! fails only the object it was parsing, with a clear error, and the next
//! object parses normally. Rows that would expand their input into
//! gigabytes fail their object before more than the bound reaches the
//! host; rows that break their declared schema lose only their lines.
//! Components that ask for more than a parser may have, or implement
//! another contract version, are refused at load.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use s3logd::decode::BatchLimits;
use s3logd::parse::{
    Limits, OutputAllowance, ParserFailure, Parsers, Record, RecordVisitor, Runtime,
};
use s3logd::pipeline::{ObjectError, ObjectSummary, ParserChoice, parse_object};
use s3logd_test_support::components;

fn runtime(limits: Limits) -> Arc<Runtime> {
    Arc::new(Runtime::new(limits).unwrap())
}

fn load(limits: Limits, component: &str) -> anyhow::Result<Parsers> {
    Parsers::load(runtime(limits), &[PathBuf::from(component)])
}

#[derive(Default)]
struct Collected {
    lines: Vec<String>,
    errors: Vec<(u64, String)>,
}

impl RecordVisitor for Collected {
    fn record(&mut self, record: &Record<'_>) {
        self.lines.push(record.msg.unwrap_or_default().to_string());
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        self.errors.push((line, reason.to_string()));
    }
}

fn parse(parsers: &Parsers, name: &str, input: &str) -> (Result<(), ObjectError>, Collected) {
    let (result, collected, _) = parse_counted(parsers, name, input);
    (result, collected)
}

/// [`parse`], also giving the object's counters.
fn parse_counted(
    parsers: &Parsers,
    name: &str,
    input: &str,
) -> (Result<(), ObjectError>, Collected, ObjectSummary) {
    let choice = ParserChoice::Named(parsers.get(name).unwrap().clone(), Vec::new());
    let mut collected = Collected::default();
    let mut summary = ObjectSummary::default();
    let result = parse_object(
        parsers,
        &choice,
        "object.log",
        input.as_bytes(),
        BatchLimits::default(),
        &mut collected,
        &mut summary,
    );
    (result, collected, summary)
}

fn failure(result: Result<(), ObjectError>) -> ParserFailure {
    match result {
        Err(ObjectError::Parser { failure, .. }) => failure,
        other => panic!("expected a parser failure, got {other:?}"),
    }
}

fn next_object_still_parses(parsers: &Parsers, name: &str) {
    let (result, collected) = parse(parsers, name, "fine\nalso fine\n");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(collected.lines, ["fine", "also fine"]);
}

#[test]
fn a_trap_fails_its_object_with_the_panic_message_and_nothing_else() {
    let parsers = load(Limits::default(), components::TRAP_PARSER).unwrap();
    let (result, _) = parse(&parsers, "trap", "one\nplease TRAP\nthree\n");
    let ParserFailure::Trap(message) = failure(result) else {
        panic!("expected a trap")
    };
    assert!(
        message.contains("trap-parser was asked to trap"),
        "{message}"
    );
    next_object_still_parses(&parsers, "trap");
}

#[test]
fn an_endless_loop_is_interrupted_at_the_call_deadline() {
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let parsers = load(limits, components::SPIN_PARSER).unwrap();
    let started = Instant::now();
    let (result, _) = parse(&parsers, "spin", "one\nSPIN\n");
    assert_eq!(
        failure(result),
        ParserFailure::Timeout(Duration::from_millis(300))
    );
    // Generous: only shows the loop was cut off, not how precisely.
    assert!(started.elapsed() < Duration::from_secs(30));
    next_object_still_parses(&parsers, "spin");
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let parsers = load(limits, components::MEMORY_BOMB_PARSER).unwrap();
    let (result, _) = parse(&parsers, "memory-bomb", "one\nBOMB\n");
    assert_eq!(
        failure(result),
        ParserFailure::OutOfMemory { limit_mib: 64 }
    );
    next_object_still_parses(&parsers, "memory-bomb");
}

#[test]
fn invalid_row_encodings_are_rejected_by_the_host() {
    let parsers = load(Limits::default(), components::GARBAGE_PARSER).unwrap();
    for trigger in ["BAD_SPAN", "TRUNCATE"] {
        let (result, _) = parse(&parsers, "garbage", &format!("one\n{trigger}\n"));
        let ParserFailure::BadOutput(reason) = failure(result) else {
            panic!("expected bad output for {trigger}")
        };
        assert!(reason.contains("invalid row encoding"), "{reason}");
    }
    next_object_still_parses(&parsers, "garbage");
}

/// Counts what a visitor was handed without keeping it, so that measuring
/// an amplified object never risks the memory it measures.
#[derive(Default)]
struct Measured {
    records: u64,
    content_bytes: u64,
}

impl RecordVisitor for Measured {
    fn record(&mut self, record: &Record<'_>) {
        self.records += 1;
        self.content_bytes += record.content_bytes();
    }

    fn line_error(&mut self, _line: u64, _text: &str, _reason: &str) {}
}

#[test]
fn output_expanding_its_input_fails_the_object_before_the_visitor_sees_more_than_the_bound() {
    let parsers = load(Limits::default(), components::AMPLIFYING_PARSER).unwrap();
    let input = format!("AMPLIFY\n{}\n", "x".repeat(64 << 10));
    let choice = ParserChoice::Named(parsers.get("amplifying").unwrap().clone(), Vec::new());
    let mut measured = Measured::default();
    let result = parse_object(
        &parsers,
        &choice,
        "object.log",
        input.as_bytes(),
        BatchLimits::default(),
        &mut measured,
        &mut ObjectSummary::default(),
    );
    let failure = failure(result);
    assert_eq!(failure.kind(), "bad_output");
    assert!(
        failure
            .to_string()
            .contains("more content than its input allows"),
        "{failure}"
    );
    let bound = OutputAllowance::CONTENT_PER_INPUT_BYTE * input.len() as u64
        + OutputAllowance::BASE_CONTENT_BYTES;
    assert!(
        measured.content_bytes <= bound,
        "the visitor saw {} bytes in {} records, more than the {bound} allowed",
        measured.content_bytes,
        measured.records
    );
    next_object_still_parses(&parsers, "amplifying");
}

#[test]
fn a_flood_of_declared_fields_fails_the_object() {
    let parsers = load(Limits::default(), components::AMPLIFYING_PARSER).unwrap();
    let (result, _) = parse(&parsers, "amplifying", "one\nMANY_FIELDS\n");
    let failure = failure(result);
    assert_eq!(failure.kind(), "bad_output");
    let message = failure.to_string();
    assert!(
        message.contains(&format!("at most {} fields", OutputAllowance::MAX_FIELDS)),
        "{message}"
    );
    next_object_still_parses(&parsers, "amplifying");
}

#[test]
fn values_that_break_the_declared_schema_are_counted_line_errors_naming_the_field() {
    let parsers = load(Limits::default(), components::WRONG_TYPE_PARSER).unwrap();
    let input = "good one\nSTRING_IN_INTEGER\ngood two\nINTEGER_IN_STRING_LIST\nINTEGER_IN_FLOAT\n";
    let (result, collected, summary) = parse_counted(&parsers, "wrong-type", input);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        collected.lines,
        ["good one", "good two", "INTEGER_IN_FLOAT"],
        "the good rows arrive, an integer in a float field among them"
    );
    assert_eq!(
        collected.errors,
        [
            (
                2,
                "field \"status\" is declared integer but holds a string".to_string()
            ),
            (
                4,
                "field \"tags\" is declared string-list but tags[0] is an integer".to_string()
            ),
        ]
    );
    assert_eq!(
        (
            summary.outcome.lines,
            summary.outcome.records,
            summary.outcome.line_errors
        ),
        (5, 3, 2)
    );
}

#[test]
fn a_component_importing_the_filesystem_is_refused_at_load() {
    let err = load(Limits::default(), components::FILESYSTEM_PARSER)
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("wasi:filesystem"), "{message}");
    assert!(message.contains("does not grant"), "{message}");
}

#[test]
fn another_contract_version_is_refused_naming_the_one_needed() {
    let err = load(Limits::default(), components::FUTURE_CONTRACT_PARSER)
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("s3logd:parser@0.2.0"), "{message}");
    assert!(message.contains(s3logd::parse::CONTRACT), "{message}");
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("module.wasm");
    // A valid core module, not a component.
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, b"hello").unwrap();
    let rt = runtime(Limits::default());
    let err = Parsers::load(rt.clone(), &[module]).err().expect("refused");
    assert!(
        format!("{err:#}").contains("not a valid WebAssembly component"),
        "{err:#}"
    );
    let err = Parsers::load(rt, &[text]).err().expect("refused");
    assert!(
        format!("{err:#}").contains("not a WebAssembly file"),
        "{err:#}"
    );
}

#[test]
fn custom_parsers_come_before_bundled_ones() {
    let parsers = load(Limits::default(), components::TRAP_PARSER).unwrap();
    let names = parsers.names();
    assert_eq!(names[0], "trap", "custom parsers come first");
    assert!(
        names.contains(&"alb"),
        "bundled parsers are loaded too: {names:?}"
    );
}
