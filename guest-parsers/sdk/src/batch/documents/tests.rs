use super::MAX_CARRIED_BYTES;
use crate::testing::{Parsed, parse_batched};
use crate::{Description, Field, FieldType, Options, Output, Parser};

/// Hands back what it is given: one row per document, its text in `text`
/// with the line breaks made visible, and an error for text that does not
/// end in a closing bracket (a document cut short, or a stray line).
struct Echo;

impl Parser for Echo {
    fn describe() -> Description {
        Description::new("echo", "0.0.0", "test parser")
            .json_documents()
            .field(Field::new("text", FieldType::String, ""))
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Echo)
    }

    fn parse_line(&mut self, text: &str, out: &mut Output) -> Result<(), String> {
        if !text.trim_end().ends_with(['}', ']']) {
            return Err(format!("incomplete: {}", visible(text)));
        }
        out.row().str(0, &visible(text));
        Ok(())
    }
}

fn visible(text: &str) -> String {
    text.replace('\n', "⏎")
}

fn texts(parsed: &Parsed) -> Vec<&str> {
    parsed
        .records
        .iter()
        .map(|record| record.str("text").unwrap())
        .collect()
}

/// Every batch size from one line to the whole input.
fn every_batching(input: &str) -> impl Iterator<Item = Parsed> + '_ {
    (1..=input.lines().count()).map(|lines| parse_batched::<Echo>("k", &[], input, lines).unwrap())
}

const PRETTY: &str = r#"{
  "Records": [
    {"a": "}{]["},
    {"b": "quote \" and \\"}
  ]
}

[1,
 2]
{"one": "line"}
"#;

#[test]
fn documents_come_whole_however_the_lines_are_batched() {
    for parsed in every_batching(PRETTY) {
        assert_eq!(
            texts(&parsed),
            [
                r#"{"Records":[{"a":"}{]["},{"b":"quote \" and \\"}]}"#,
                "[1,2]",
                r#"{"one": "line"}"#,
            ]
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.counters.lines, 10);
        // The blank line between documents.
        assert_eq!(parsed.counters.skipped, 1);
    }
}

#[test]
fn a_line_outside_any_document_is_handed_over_alone() {
    let input = "{\"a\": 1}\nnot json\n] x\n{\"b\":\n 2}\n";
    for parsed in every_batching(input) {
        assert_eq!(texts(&parsed), ["{\"a\": 1}", "{\"b\":2}"]);
        let lines: Vec<u64> = parsed.errors.iter().map(|(line, _)| *line).collect();
        let reasons: Vec<&str> = parsed
            .errors
            .iter()
            .map(|(_, reason)| reason.as_str())
            .collect();
        assert_eq!(reasons, ["incomplete: not json", "incomplete: ] x"]);
        assert_eq!(lines[1], lines[0] + 1, "{:?}", parsed.errors);
    }
}

#[test]
fn a_line_cut_inside_a_string_does_not_swallow_the_lines_after_it() {
    // JSON strings cannot span lines: the document ends where the line does.
    let input = "{\"a\": \"cut\n{\"b\": 2}\n";
    for parsed in every_batching(input) {
        assert_eq!(texts(&parsed), ["{\"b\": 2}"]);
        assert_eq!(
            parsed.error_reasons(),
            [(first_line_number(), "incomplete: {\"a\": \"cut")]
        );
    }
}

#[test]
fn an_ndjson_line_cut_between_tokens_ends_where_the_next_object_starts() {
    let input = "{\"a\": {\"b\": 1\n{\"c\": 2}\n{\"d\": [1\n[3]\n";
    for parsed in every_batching(input) {
        assert_eq!(texts(&parsed), ["{\"c\": 2}", "[3]"]);
        let reasons: Vec<&str> = parsed.errors.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            ["incomplete: {\"a\":{\"b\":1", "incomplete: {\"d\":[1"]
        );
    }
}

#[test]
fn unindented_elements_after_a_separator_stay_in_their_document() {
    let input = "[\n{\"a\": 1},\n{\"b\":\n{\"c\": 2}}\n]\n";
    for parsed in every_batching(input) {
        assert_eq!(texts(&parsed), ["[{\"a\":1},{\"b\":{\"c\":2}}]"]);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }
}

#[test]
fn a_document_cut_off_by_the_end_of_the_object_is_handed_over_and_reported_on_the_last_line() {
    let input = "{\"a\": 1}\n{\"Records\": [\n  {\"b\": 2},\n";
    for parsed in every_batching(input) {
        assert_eq!(texts(&parsed), ["{\"a\": 1}"]);
        assert_eq!(
            parsed.error_reasons(),
            [(
                parsed.counters.lines as u64 - 1 + first_line_number(),
                "incomplete: {\"Records\":[{\"b\":2},"
            )]
        );
    }
}

/// The number the testing harness gives the first line of an object.
fn first_line_number() -> u64 {
    let parsed = parse_batched::<Echo>("k", &[], "x\n", 1).unwrap();
    parsed.errors[0].0
}

#[test]
fn errors_of_a_document_within_one_batch_are_on_its_first_line() {
    let input = "{\"a\": 1}\n[1,\n 2\n";
    let parsed = parse_batched::<Echo>("k", &[], input, 10).unwrap();
    let last = parsed.counters.lines as u64 - 1 + first_line_number();
    assert_eq!(parsed.errors.len(), 1);
    // Cut by the end of the object, reported on the last line ...
    assert_eq!(parsed.errors[0].0, last);
    // ... but a bad document closed within the batch is on its first.
    let parsed = parse_batched::<Echo>("k", &[], "{\"a\": 1}\n[1,\n 2] x\n", 10).unwrap();
    assert_eq!(
        parsed.error_reasons(),
        [(first_line_number() + 1, "incomplete: [1,2]x")]
    );
}

#[test]
fn a_document_larger_than_the_carry_bound_is_one_error_and_the_next_one_parses() {
    let filler = format!("  \"{}\",\n", "x".repeat(1 << 20));
    // Batches of eight lines: the bound is crossed well before the end.
    let count = MAX_CARRIED_BYTES / filler.len() + 16;
    let input = format!(
        "[\n{}  \"end\"\n]\n{{\"after\": 1}}\n",
        filler.repeat(count)
    );
    let parsed = parse_batched::<Echo>("k", &[], &input, 8).unwrap();
    // Texts are megabytes: compare lengths before anything gets printed.
    let lengths: Vec<usize> = texts(&parsed).iter().map(|text| text.len()).collect();
    assert_eq!(lengths, ["{\"after\": 1}".len()]);
    assert_eq!(texts(&parsed), ["{\"after\": 1}"]);
    let reasons: Vec<&str> = parsed
        .errors
        .iter()
        .map(|(_, r)| &r[..r.len().min(200)])
        .collect();
    assert_eq!(reasons, ["a JSON document of more than 64 MiB"]);
}

#[test]
fn a_line_parser_still_gets_lines_one_by_one() {
    struct Lines;
    impl Parser for Lines {
        fn describe() -> Description {
            Description::new("lines", "0.0.0", "test parser").field(Field::new(
                "text",
                FieldType::String,
                "",
            ))
        }
        fn open(_key: &str, _options: &Options) -> Result<Self, String> {
            Ok(Lines)
        }
        fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
            out.row().str(0, line);
            Ok(())
        }
    }
    let parsed = parse_batched::<Lines>("k", &[], "{\n}\n", 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
}
