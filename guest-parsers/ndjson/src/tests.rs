use s3logd_parser_sdk::testing::{Owned, parse, parse_batched, read_sample};

use super::*;

const KEY: &str = "dt=2018-02-09/20180209T213803_df718a7818e53243.json.gz";

fn sample(name: &str) -> String {
    read_sample(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), name)
}

fn one(options: &[(&str, &str)], line: &str) -> s3logd_parser_sdk::testing::Record {
    let parsed = parse::<NdJson>(KEY, options, line).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.records.into_iter().next().unwrap()
}

#[test]
fn s3logger_lines_flatten_with_the_time_taken_out() {
    let text = sample("app-events.json.gz");
    let parsed = parse::<NdJson>(KEY, &[], &text).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let [api, worker, queue] = &parsed.records[..] else {
        panic!("{:?}", parsed.records)
    };
    assert_eq!(api.time, parse_iso8601("2018-02-09T21:38:03.512Z"));
    assert_eq!(api.msg.as_deref(), text.lines().next());
    assert!(!api.has("time"));
    assert_eq!(
        api.str("msg"),
        Some("request served"),
        "an app's own msg key is just a field"
    );
    assert_eq!(api.str("http.method"), Some("GET"));
    assert_eq!(api.int("http.status"), Some(200));
    assert_eq!(api.float("duration_ms"), Some(12.5));
    assert_eq!(
        api.list("tags"),
        Some(&[Owned::Str("a".into()), Owned::Str("b".into())][..])
    );
    assert_eq!(
        worker.time,
        Some(1_518_208_684_001_000_000),
        "+01:00 is an hour ahead of UTC"
    );
    assert!(!worker.has("user_id"));
    assert_eq!(
        queue.time,
        Some(1_518_212_284_250_000_000),
        "ts in Unix seconds, read by auto"
    );
    assert!(!queue.has("ts"));
    assert_eq!(queue.int("queue.depth"), Some(10000));
}

#[test]
fn only_the_first_present_default_time_field_is_used() {
    let record = one(
        &[],
        r#"{"ts":1518212284,"timestamp":"2018-02-09T21:38:03Z","time":"2018-02-09T21:38:05Z"}"#,
    );
    assert_eq!(record.time, parse_iso8601("2018-02-09T21:38:05Z"));
    assert_eq!(record.int("ts"), Some(1518212284));
    assert_eq!(record.str("timestamp"), Some("2018-02-09T21:38:03Z"));
    assert!(!record.has("time"));
    let untimed = one(&[], r#"{"level":"info"}"#);
    assert_eq!(untimed.time, None);
}

#[test]
fn time_formats_and_nested_time_fields() {
    let line = r#"{"log":{"at":"1518212284123"},"time":"kept"}"#;
    let record = one(
        &[("time_field", "log.at"), ("time_format", "unix_ms")],
        line,
    );
    assert_eq!(record.time, Some(1_518_212_284_123_000_000));
    assert_eq!(
        record.str("time"),
        Some("kept"),
        "not a candidate once time_field is given"
    );
    assert!(!record.has("log.at"));
    for (format, value) in [
        ("unix_s", "1518212284"),
        ("unix_us", "1518212284000000"),
        ("unix_ns", "1518212284000000000"),
        ("auto", "1518212284000"),
    ] {
        let record = one(
            &[("time_format", format)],
            &format!(r#"{{"time":{value}}}"#),
        );
        assert_eq!(record.time, Some(1_518_212_284_000_000_000), "{format}");
    }
}

#[test]
fn bad_times_are_errors_naming_the_field_and_format() {
    let input =
        "{\"time\":1518212284}\n{\"time\":\"yesterday\"}\n{\"time\":\"2018-02-09T21:38:03Z\"}\n";
    let parsed = parse_batched::<NdJson>(KEY, &[("time_format", "rfc3339")], input, 1).unwrap();
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(
        parsed.errors,
        [
            (1, "time 1518212284 is not a rfc3339 time".to_string()),
            (2, "time \"yesterday\" is not a rfc3339 time".to_string())
        ]
    );
    let err = parse::<NdJson>(KEY, &[("time_format", "%Y")], "").unwrap_err();
    assert_eq!(
        err,
        r#"time_format "%Y" is not one of rfc3339, unix_s, unix_ms, unix_us, unix_ns, auto"#
    );
}

#[test]
fn msg_field_replaces_the_raw_line() {
    let record = one(
        &[("msg_field", "message")],
        r#"{"message":"disk \"sda\" full","level":"error"}"#,
    );
    assert_eq!(record.msg.as_deref(), Some(r#"disk "sda" full"#));
    assert!(!record.has("message"));
    let structured = one(&[("msg_field", "message")], r#"{"message":{"a":1}}"#);
    assert_eq!(structured.msg.as_deref(), Some(r#"{"a":1}"#));
    let missing = one(&[("msg_field", "message")], r#"{"level":"info"}"#);
    assert_eq!(
        missing.msg.as_deref(),
        Some(r#"{"level":"info"}"#),
        "the raw line when the field is absent"
    );
}

#[test]
fn non_json_lines_are_errors_with_a_reason_and_the_rest_continues() {
    let text = sample("with-broken-line.json.gz");
    let parsed = parse_batched::<NdJson>(KEY, &[], &text, 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
    let errors = parsed.error_reasons();
    assert_eq!(errors[0].0, 2);
    assert!(
        errors[0]
            .1
            .starts_with("not a JSON object: EOF while parsing a string"),
        "{errors:?}"
    );
    assert_eq!(errors[1].0, 3);
    assert!(
        errors[1].1.starts_with("not a JSON object: expected ident"),
        "{errors:?}"
    );
    assert!(
        parse::<NdJson>(KEY, &[], "[1,2]").unwrap().errors[0]
            .1
            .contains("expected a JSON object")
    );
}

#[test]
fn pretty_printed_objects_give_the_records_of_their_one_line_form() {
    let text = sample("app-events.json.gz");
    let one_line = parse::<NdJson>(KEY, &[], &text).unwrap();
    // Each object as `jq .` prints it: one key per line, indented.
    let pretty: String = text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            serde_json::to_string_pretty(&value).unwrap() + "\n"
        })
        .collect();
    assert!(pretty.lines().count() > 3 * text.lines().count());
    for lines_per_batch in [1, 5, usize::MAX] {
        let parsed = parse_batched::<NdJson>(KEY, &[], &pretty, lines_per_batch).unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.records.len(), one_line.records.len());
        for (pretty, one_line) in parsed.records.iter().zip(&one_line.records) {
            assert_eq!(pretty.time, one_line.time);
            assert_eq!(pretty.fields, one_line.fields);
            // The message is the object compacted, its keys as jq left them.
            let msg = pretty.msg.as_deref().unwrap();
            assert!(!msg.contains('\n'), "{msg}");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(msg).unwrap(),
                serde_json::from_str::<serde_json::Value>(one_line.msg.as_deref().unwrap())
                    .unwrap()
            );
        }
    }
}

#[test]
fn a_line_s3logd_wrote_reads_back_as_the_record_it_was() {
    // As the file and s3_archive sinks write a record: its time and message
    // under s3logd's own keys, then its fields.
    let line = r#"{"_time":"2024-05-01T12:00:00.5Z","_msg":"{\"level\":\"info\",\"n\":1}","level":"info","n":1}"#;
    let record = one(&[], line);
    assert_eq!(record.time, parse_iso8601("2024-05-01T12:00:00.5Z"));
    assert_eq!(record.msg.as_deref(), Some(r#"{"level":"info","n":1}"#));
    assert!(!record.has("_time") && !record.has("_msg"));
    assert_eq!(record.str("level"), Some("info"));
    // A line without `_msg` is still its own message.
    let plain = one(&[], r#"{"time":"2024-05-01T12:00:00Z","level":"warn"}"#);
    assert_eq!(
        plain.msg.as_deref(),
        Some(r#"{"time":"2024-05-01T12:00:00Z","level":"warn"}"#)
    );
}
