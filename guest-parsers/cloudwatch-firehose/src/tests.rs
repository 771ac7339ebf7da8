use s3logd_parser_sdk::testing::{Owned, parse, parse_batched, read_sample};

use super::*;

const KEY: &str = "firehose/2018/12/10/03/ecs-task-logs-1-2018-12-10-03-57-44-a188030a-62d2-49e6-b7c2-b11f1a7ba250";

fn sample(name: &str) -> String {
    read_sample(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), name)
}

fn strings(items: &[&str]) -> Owned {
    Owned::List(items.iter().map(|s| Owned::Str(s.to_string())).collect())
}

#[test]
fn concatenated_records_give_one_row_per_log_event() {
    let text = sample("concatenated-records");
    assert_eq!(text.lines().count(), 1, "the sample has no newlines");
    let parsed = parse::<CloudWatchFirehose>(KEY, &[], &text).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.records.len(), 5, "the control message is dropped");

    let first = &parsed.records[0];
    assert_eq!(first.time, Some(1_544_414_264_183_000_000));
    assert!(
        first
            .msg
            .as_deref()
            .unwrap()
            .starts_with(r#"{"level":"info","ts":"2018-12-10T12:57:44.183+0900""#)
    );
    assert_eq!(first.str("owner"), Some("123456789012"));
    assert_eq!(first.str("logGroup"), Some("/ecs-task"));
    assert_eq!(
        first.str("logStream"),
        Some("/ecs-task/3f1e0d2c-4c18-4ab5-b1d6-7f8bff82a23d")
    );
    assert_eq!(
        first.fields.get("subscriptionFilters"),
        Some(&strings(&["/ecs-task"]))
    );
    assert_eq!(
        first.str("id"),
        Some("34459543095346548234532472891034522377038117339458437120")
    );
    assert!(
        !first.has("message.level"),
        "JSON messages stay text unless asked"
    );

    let lambda = &parsed.records[3];
    assert_eq!(lambda.time, Some(1_714_521_600_001_000_000));
    assert_eq!(
        lambda.msg.as_deref(),
        Some(
            "2024-05-01T00:00:00.001Z\t8f5e2a41-0c1d-4b6e-9f3a-2d7c8b9e0a1f\tINFO\tprocessing order 42 → ok"
        )
    );
    assert_eq!(
        lambda.str("logStream"),
        Some("2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        lambda.fields.get("subscriptionFilters"),
        Some(&strings(&["to-firehose", "audit"]))
    );
}

#[test]
fn newline_separated_records_read_the_same() {
    let text = sample("newline-separated-records");
    let parsed = parse_batched::<CloudWatchFirehose>(KEY, &[], &text, 1).unwrap();
    assert_eq!(parsed.counters.lines, 3);
    assert_eq!(parsed.counters.skipped, 1, "the control-message line");
    let times: Vec<i64> = parsed
        .records
        .iter()
        .map(|r| r.time.unwrap() / 1_000_000)
        .collect();
    assert_eq!(
        times,
        [
            1544414264183,
            1544414336184,
            1714521600000,
            1714521600001,
            1714521600003
        ]
    );
}

#[test]
fn json_messages_add_prefixed_fields_when_asked() {
    let text = sample("concatenated-records");
    let parsed =
        parse::<CloudWatchFirehose>(KEY, &[("parse_json_messages", "true")], &text).unwrap();
    let first = &parsed.records[0];
    assert_eq!(first.str("message.level"), Some("info"));
    assert_eq!(
        first.str("message.ts"),
        Some("2018-12-10T12:57:44.183+0900")
    );
    assert_eq!(
        first.str("message.log.request.path"),
        Some("/v1/xxx/xxx-xxx")
    );
    assert_eq!(first.int("message.log.response.status"), Some(200));
    assert_eq!(
        parsed.records[1].int("message.log.response.status"),
        Some(400)
    );
    assert!(
        first.msg.as_deref().unwrap().starts_with("{\"level\""),
        "_msg stays the message"
    );
    let lambda = &parsed.records[2];
    assert!(
        lambda
            .fields
            .keys()
            .all(|name| !name.starts_with("message."))
    );
    assert!(parsed.errors.is_empty());
}

#[test]
fn messages_that_only_look_like_json_stay_text() {
    let line = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":"{not json"},{"id":"2","timestamp":2,"message":"{\"a\":1}"}]}"#;
    let parsed =
        parse::<CloudWatchFirehose>(KEY, &[("parse_json_messages", "true")], line).unwrap();
    assert!(parsed.errors.is_empty());
    assert_eq!(parsed.records[0].msg.as_deref(), Some("{not json"));
    assert!(!parsed.records[0].has("message.a"));
    assert_eq!(parsed.records[1].int("message.a"), Some(1));
}

#[test]
fn a_broken_record_keeps_the_rows_before_it_and_the_next_lines() {
    let good = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":1000,"message":"one"}]}"#;
    let input = format!(
        "{good}{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{{\"id\"\n{good}\n{{\"messageType\":\"OTHER\"}}\n"
    );
    let parsed = parse_batched::<CloudWatchFirehose>(KEY, &[], &input, 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert!(
        parsed
            .records
            .iter()
            .all(|r| r.msg.as_deref() == Some("one") && r.time == Some(1_000_000_000))
    );
    assert!(
        !parsed.records[0].has("subscriptionFilters"),
        "an empty list is absent"
    );
    assert_eq!(parsed.errors.len(), 2);
    assert_eq!(parsed.errors[0].0, 1);
    assert!(
        parsed.errors[0]
            .1
            .starts_with("not a CloudWatch Logs record: EOF"),
        "{:?}",
        parsed.errors
    );
    assert_eq!(
        parsed.errors[1],
        (3, r#"unknown messageType "OTHER""#.to_string())
    );
}

#[test]
fn option_values_are_checked() {
    let err = parse::<CloudWatchFirehose>(KEY, &[("parse_json_messages", "yes")], "").unwrap_err();
    assert_eq!(
        err,
        r#"parse_json_messages must be true or false, not "yes""#
    );
}
