use s3logd_parser_sdk::FieldType;
use s3logd_parser_sdk::testing::{parse, parse_batched};

use crate::RegexSession;

const COMBINED: &str = r#"^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$"#;
const SAMPLE: &str = include_str!("../../samples/nginx-combined.log");
/// 10/Oct/2000:13:55:36 -0700, the sample's first time.
const FIRST_TIME: i64 = 971_211_336_000_000_000;

fn combined_options() -> Vec<(&'static str, &'static str)> {
    vec![
        ("pattern", COMBINED),
        ("time_field", "time_local"),
        ("time_format", "%d/%b/%Y:%H:%M:%S %z"),
    ]
}

#[test]
fn named_groups_become_string_fields_declared_once() {
    let parsed =
        parse_batched::<RegexSession>("access.log", &combined_options(), SAMPLE, 1).unwrap();
    let fields: Vec<(&str, FieldType)> = parsed
        .fields
        .iter()
        .map(|(n, t)| (n.as_str(), *t))
        .collect();
    let expected: Vec<(&str, FieldType)> = [
        "remote_addr",
        "remote_user",
        "request",
        "status",
        "body_bytes_sent",
        "http_referer",
        "http_user_agent",
    ]
    .into_iter()
    .map(|name| (name, FieldType::String))
    .collect();
    assert_eq!(fields, expected, "time_local is _time, not a field");

    assert_eq!(parsed.records.len(), 3);
    let first = &parsed.records[0];
    assert_eq!(first.time, Some(FIRST_TIME));
    assert_eq!(first.msg.as_deref(), SAMPLE.lines().next());
    assert_eq!(first.str("remote_addr"), Some("203.0.113.9"));
    assert!(!first.has("remote_user"), "`-` is absent");
    assert_eq!(first.str("request"), Some("GET /apache_pb.gif HTTP/1.0"));
    assert_eq!(first.str("status"), Some("200"));
    assert_eq!(
        first.str("http_user_agent"),
        Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
    );

    let second = &parsed.records[1];
    assert_eq!(second.time, Some(FIRST_TIME + 1_000_000_000));
    assert_eq!(second.str("remote_addr"), Some("2001:db8::42"));
    assert_eq!(second.str("remote_user"), Some("frank"));
    assert!(!second.has("body_bytes_sent") && !second.has("http_referer"));

    assert_eq!(
        parsed.errors,
        [(3, "line does not match the `pattern` option".to_string())]
    );
    assert_eq!(
        parsed.records[2].str("http_user_agent"),
        Some("ELB-HealthChecker/2.0")
    );
}

#[test]
fn msg_field_replaces_the_line_and_optional_groups_may_be_absent() {
    let options = [
        (
            "pattern",
            r"^(?P<ts>\d+) (?P<level>[A-Z]+)(?: \[(?P<thread>[^\]]+)\])? (?P<message>.*)$",
        ),
        ("time_field", "ts"),
        ("time_format", "unix_ms"),
        ("msg_field", "message"),
    ];
    let input = "971211336250 INFO [main] started\n971211336251 WARN disk almost full\n";
    let parsed = parse::<RegexSession>("app.log", &options, input).unwrap();
    let names = parsed.field_names();
    assert_eq!(names, ["level", "thread"]);
    let [started, warning] = &parsed.records[..] else {
        panic!("{:?}", parsed.records)
    };
    assert_eq!(started.time, Some(FIRST_TIME + 250_000_000));
    assert_eq!(started.msg.as_deref(), Some("started"));
    assert_eq!(started.str("thread"), Some("main"));
    assert!(!started.has("message"));
    assert_eq!(warning.msg.as_deref(), Some("disk almost full"));
    assert_eq!(warning.str("level"), Some("WARN"));
    assert!(!warning.has("thread"));
}

#[test]
fn times_that_do_not_fit_are_errors_naming_the_field() {
    let options = [
        ("pattern", r"^(?P<at>\S+)(?: (?P<rest>.*))?$"),
        ("time_field", "at"),
    ];
    let input = "2000-10-10T20:55:36Z ok\n10/10/2000 not rfc3339\n2000-10-10T20:55:37Z\n";
    let parsed = parse::<RegexSession>("x.log", &options, input).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].time, Some(FIRST_TIME + 1_000_000_000));
    assert_eq!(
        parsed.errors,
        [(
            2,
            "time_field `at` value \"10/10/2000\" is not a time in the format rfc3339".to_string()
        )]
    );

    let optional_time = [
        ("pattern", r"^(?:\[(?P<at>[^\]]+)\] )?(?P<text>.*)$"),
        ("time_field", "at"),
    ];
    let parsed = parse::<RegexSession>("x.log", &optional_time, "no time here").unwrap();
    assert_eq!(
        parsed.errors,
        [(
            1,
            "time_field group `at` did not take part in the match".to_string()
        )]
    );
}

#[test]
fn unusable_options_fail_at_open_with_a_reason() {
    let open = |options: &[(&str, &str)]| parse::<RegexSession>("x.log", options, "").unwrap_err();
    assert!(open(&[]).contains("needs the `pattern` option"));
    assert!(
        open(&[("pattern", "(?P<a>unclosed")]).starts_with("option `pattern` does not compile: ")
    );
    assert_eq!(
        open(&[("pattern", "(?P<a>.*)"), ("time_field", "t")]),
        "option `time_field`: the pattern has no group named `t`"
    );
    assert_eq!(
        open(&[("pattern", "(?P<a>.*)"), ("msg_field", "m")]),
        "option `msg_field`: the pattern has no group named `m`"
    );
    assert_eq!(
        open(&[("pattern", "(?P<a>.*)"), ("time_format", "unix_s")]),
        "option `time_format` needs `time_field`"
    );
    assert!(
        open(&[
            ("pattern", "(?P<a>.*)"),
            ("time_field", "a"),
            ("time_format", "%H:%M")
        ])
        .contains("needs %Y")
    );
    assert!(open(&[("pattern", "(?P<_msg>.*)")]).starts_with("group `_msg`"));
}
