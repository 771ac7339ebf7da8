use s3logd_parser_sdk::testing::{Owned, parse, parse_batched, parse_one, read_sample};

use super::*;

const KEY: &str = "AWSLogs/111122223333/WAFLogs/eu-west-3/RateBasedTestACL/2023/05/06/06/35/111122223333_waflogs_eu-west-3_RateBasedTestACL_20230506T0635Z_1a2b3c4d.log.gz";

fn sample(name: &str) -> String {
    read_sample(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), name)
}

#[test]
fn documented_rate_based_block_record() {
    let text = sample("rate-based-block.log.gz");
    let line = text.trim_end();
    let record = parse_one::<Waf>(KEY, line);
    assert_eq!(record.time, Some(1_683_355_579_981_000_000));
    assert!(!record.has("timestamp"), "the record time is not repeated");
    assert_eq!(record.msg.as_deref(), Some(line));
    assert_eq!(record.int("formatVersion"), Some(1));
    assert_eq!(record.str("action"), Some("BLOCK"));
    assert_eq!(record.str("terminatingRuleType"), Some("RATE_BASED"));
    assert_eq!(record.str("httpRequest.clientIp"), Some("52.46.82.45"));
    assert_eq!(
        record.str("httpRequest.requestId"),
        Some("Ed0AiHF_CGYF-DA=")
    );
    assert_eq!(record.str("httpRequest.args"), Some(""));
    assert_eq!(
        record.str("httpRequest.headers.host"),
        Some("rjvegx5guh.execute-api.eu-west-3.amazonaws.com")
    );
    assert_eq!(record.str("httpRequest.headers.dogname"), Some("ella"));
    assert_eq!(
        record.str("httpRequest.headers.x-forwarded-port"),
        Some("443")
    );
    assert!(
        !record.has("httpRequest.headers"),
        "headers are split by name, not kept as a list"
    );
    let rules = record.str("rateBasedRuleList").unwrap();
    assert!(
        rules.starts_with(r#"[{"rateBasedRuleId":"#)
            && rules.contains(r#""evaluationWindowSec":"120""#)
    );
    assert!(!record.has("requestHeadersInserted"), "null is absent");
    assert!(!record.has("ruleGroupList"), "an empty list is absent");
}

#[test]
fn dash_placeholders_are_absent_and_nested_lists_stay_json() {
    let text = sample("sqli-block.log.gz");
    let record = parse_one::<Waf>(KEY, text.trim_end());
    assert_eq!(record.time, Some(1_576_280_412_771_000_000));
    assert!(!record.has("httpSourceName") && !record.has("httpSourceId"));
    assert_eq!(
        record.str("terminatingRuleMatchDetails"),
        Some(
            r#"[{"conditionType":"SQL_INJECTION","sensitivityLevel":"HIGH","location":"HEADER","matchedData":["10","AND","1"]}]"#
        )
    );
    assert_eq!(record.str("labels"), Some(r#"[{"name":"value"}]"#));
    assert_eq!(
        record.str("httpRequest.headers.x-stm-test"),
        Some("10 AND 1=1")
    );
}

#[test]
fn repeated_headers_join_case_insensitively_and_cookies_with_semicolons() {
    let line = r#"{"timestamp":1700000000123,"httpRequest":{"clientIp":"2001:db8::7","country":"-","headers":[{"name":"cookie","value":"a=1"},{"name":"Accept","value":"text/html"},{"name":"Cookie","value":"b=2"},{"name":"accept","value":"*/*"},{"name":"X-Q","value":"say \"hi\""}]}}"#;
    let parsed = parse::<Waf>(KEY, &[], line).unwrap();
    let record = &parsed.records[0];
    assert_eq!(record.str("httpRequest.headers.cookie"), Some("a=1; b=2"));
    assert_eq!(
        record.str("httpRequest.headers.accept"),
        Some("text/html, */*")
    );
    assert_eq!(record.str("httpRequest.headers.x-q"), Some("say \"hi\""));
    assert_eq!(record.str("httpRequest.clientIp"), Some("2001:db8::7"));
    assert!(!record.has("httpRequest.country"));
    let header_fields = parsed
        .fields
        .iter()
        .filter(|(n, _)| n.starts_with("httpRequest.headers."))
        .count();
    assert_eq!(header_fields, 3);
}

#[test]
fn headers_in_an_unexpected_shape_are_kept_as_json() {
    let line = r#"{"timestamp":1,"httpRequest":{"headers":[{"key":"Host"}]}}"#;
    let record = parse_one::<Waf>(KEY, line);
    assert_eq!(
        record.str("httpRequest.headers"),
        Some(r#"[{"key":"Host"}]"#)
    );
}

#[test]
fn broken_lines_and_bad_timestamps_are_errors_that_keep_the_next_lines() {
    let input = concat!(
        "{\"timestamp\":1700000000123,\"action\":\"ALLOW\"}\n",
        "{\"timestamp\":1700000000123,\"action\":\n",
        "{\"action\":\"ALLOW\"}\n",
        "{\"timestamp\":\"yesterday\"}\n",
        "{\"timestamp\":1700000000124,\"action\":\"BLOCK\"}\n",
    );
    let parsed = parse_batched::<Waf>(KEY, &[], input, 1).unwrap();
    let actions: Vec<&str> = parsed
        .records
        .iter()
        .map(|r| r.str("action").unwrap())
        .collect();
    assert_eq!(actions, ["ALLOW", "BLOCK"]);
    let errors = parsed.error_reasons();
    assert_eq!(errors[0].0, 2);
    assert!(
        errors[0].1.starts_with("not a WAF JSON record: EOF"),
        "{errors:?}"
    );
    assert_eq!(errors[1], (3, "no timestamp"));
    assert_eq!(
        errors[2],
        (4, "timestamp \"yesterday\" is not epoch milliseconds")
    );
    assert_eq!(parsed.records[1].time, Some(1_700_000_000_124_000_000));
}

#[test]
fn fields_are_declared_as_any_once_across_batches() {
    let text = sample("mixed-with-broken-line.log.gz");
    let parsed = parse_batched::<Waf>(KEY, &[], &text, 1).unwrap();
    let mut names = parsed.field_names();
    let declared = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), declared);
    assert!(
        parsed
            .fields
            .iter()
            .all(|(_, ty)| *ty == s3logd_parser_sdk::FieldType::Any)
    );
    assert_eq!(
        parsed.records[0].fields.get("httpRequest.headers.cookie"),
        Some(&Owned::Str("a=1; b=2".into()))
    );
}
