//! CloudFront standard log objects, legacy W3C and v2 W3C/JSON, through the
//! real row encoding.

use s3logd_parser_cloudfront::CloudFront;
use s3logd_parser_sdk::FieldType;
use s3logd_parser_sdk::testing::{
    Owned, Parsed, matches_first_line, matches_key, parse, parse_batched,
};
use s3logd_parser_sdk::time::parse_iso8601;

const KEY: &str = "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz";
const VERSION: &str = "#Version: 1.0";
const FIELDS: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
const USER_AGENT: &str = "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36";

/// The example line of AWS's CloudFront standard log documentation, with
/// its tabs.
fn documented_line() -> String {
    format!(
        "2019-12-04 21:02:31 LAX1 392 192.0.2.100 GET d111111abcdef8.cloudfront.net /index.html 200 - {USER_AGENT} - - Hit SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ== d111111abcdef8.cloudfront.net https 23 0.001 - TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 Hit HTTP/2.0 - - 11040 0.001 Hit text/html 78 - -"
    )
    .replace(' ', "\t")
}

fn parse_ok(input: &str) -> Parsed {
    let parsed = parse::<CloudFront>(KEY, &[], input).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed
}

#[test]
fn documented_legacy_object() {
    let line = documented_line();
    let parsed = parse_ok(&format!("{VERSION}\n{FIELDS}\n{line}\n"));
    assert_eq!(parsed.counters.skipped, 2, "the two header lines");
    let record = &parsed.records[0];
    assert_eq!(record.time, parse_iso8601("2019-12-04T21:02:31Z"));
    assert_eq!(record.msg.as_deref(), Some(line.as_str()));
    assert_eq!(record.str("x_edge_location"), Some("LAX1"));
    assert_eq!(record.int("sc_bytes"), Some(392));
    assert_eq!(record.str("c_ip"), Some("192.0.2.100"));
    assert_eq!(record.str("cs_method"), Some("GET"));
    assert_eq!(record.str("cs_host"), Some("d111111abcdef8.cloudfront.net"));
    assert_eq!(record.str("cs_uri_stem"), Some("/index.html"));
    assert_eq!(record.int("sc_status"), Some(200));
    assert_eq!(
        record.str("cs_user_agent"),
        Some(USER_AGENT),
        "not URL-decoded"
    );
    assert_eq!(record.str("x_edge_result_type"), Some("Hit"));
    assert_eq!(
        record.str("x_edge_request_id"),
        Some("SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
    );
    assert_eq!(
        record.str("x_host_header"),
        Some("d111111abcdef8.cloudfront.net")
    );
    assert_eq!(record.str("cs_protocol"), Some("https"));
    assert_eq!(record.int("cs_bytes"), Some(23));
    assert_eq!(record.float("time_taken"), Some(0.001));
    assert_eq!(record.str("ssl_protocol"), Some("TLSv1.2"));
    assert_eq!(
        record.str("ssl_cipher"),
        Some("ECDHE-RSA-AES128-GCM-SHA256")
    );
    assert_eq!(record.str("x_edge_response_result_type"), Some("Hit"));
    assert_eq!(record.str("cs_protocol_version"), Some("HTTP/2.0"));
    assert_eq!(record.int("c_port"), Some(11040));
    assert_eq!(record.float("time_to_first_byte"), Some(0.001));
    assert_eq!(record.str("x_edge_detailed_result_type"), Some("Hit"));
    assert_eq!(record.str("sc_content_type"), Some("text/html"));
    assert_eq!(record.int("sc_content_len"), Some(78));
    for absent in [
        "cs_referer",
        "cs_uri_query",
        "cs_cookie",
        "x_forwarded_for",
        "fle_status",
        "fle_encrypted_fields",
        "sc_range_start",
        "sc_range_end",
    ] {
        assert!(!record.has(absent), "{absent}");
    }
    assert_eq!(record.fields.len(), 23);

    let names = parsed.field_names();
    assert_eq!(names.len(), 31, "33 columns less date and time: {names:?}");
    assert_eq!(names[0], "x_edge_location");
    assert!(!names.contains(&"date") && !names.contains(&"time"));
}

#[test]
fn status_000_ipv6_double_encoding_and_a_trailing_tab() {
    let line = documented_line()
        .replace("\t200\t", "\t000\t")
        .replace("192.0.2.100", "2001:db8::1")
        .replace("\t-\tTLSv1.2", "\t2001:db8::2,%20198.51.100.7\tTLSv1.2")
        .replace("/index.html\t", "/a%2520b.html\t");
    let parsed = parse_ok(&format!("{VERSION}\n{FIELDS}\n{line}\t\n"));
    let record = &parsed.records[0];
    assert_eq!(record.int("sc_status"), Some(0));
    assert_eq!(record.str("c_ip"), Some("2001:db8::1"));
    assert_eq!(
        record.str("x_forwarded_for"),
        Some("2001:db8::2,%20198.51.100.7")
    );
    assert_eq!(record.str("cs_uri_stem"), Some("/a%2520b.html"));
    assert!(
        !record.has("extra_1"),
        "the trailing empty column is no field"
    );
    assert_eq!(parsed.counters.rows_with_extra, 0);
}

#[test]
fn columns_follow_the_header_whatever_its_order() {
    let input = "#Version: 1.0\n\
                 #Fields: cs-uri-stem sc-status time c-ip date x-new-column time-taken\n\
                 /img.png\t304\t01:02:03\t198.51.100.9\t2024-02-29\tvalue\t0.250\n";
    let record = &parse_ok(input).records[0];
    assert_eq!(record.time, parse_iso8601("2024-02-29T01:02:03Z"));
    assert_eq!(record.str("cs_uri_stem"), Some("/img.png"));
    assert_eq!(record.int("sc_status"), Some(304));
    assert_eq!(record.str("c_ip"), Some("198.51.100.9"));
    assert_eq!(
        record.str("x_new_column"),
        Some("value"),
        "unknown columns are text"
    );
    assert_eq!(record.float("time_taken"), Some(0.25));
}

#[test]
fn headers_and_records_in_separate_batches() {
    let line = documented_line();
    let input = format!("{VERSION}\n{FIELDS}\n{line}\n{line}\n");
    let parsed = parse_batched::<CloudFront>(KEY, &[], &input, 1).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].int("c_port"), Some(11040));
    assert_eq!(parsed.fields.len(), 31);
}

#[test]
fn a_repeated_header_does_not_declare_fields_twice() {
    let line = documented_line();
    let parsed = parse_ok(&format!(
        "{VERSION}\n{FIELDS}\n{line}\n{VERSION}\n{FIELDS}\n{line}\n"
    ));
    assert_eq!(parsed.fields.len(), 31);
    assert_eq!(parsed.records[0].fields, parsed.records[1].fields);
}

#[test]
fn bad_lines_are_errors_and_do_not_stop_the_next_ones() {
    let line = documented_line();
    let input = format!(
        "{line}\n{VERSION}\n{FIELDS}\n{}\n{}\n{}\n{line}\textra\n",
        line.replace("\t392\t", "\tmany\t"),
        line.replace('\t', " "),
        line.replace("2019-12-04", "2019-13-04"),
    );
    let parsed = parse_batched::<CloudFront>(KEY, &[], &input, 2).unwrap();
    assert_eq!(parsed.errors.len(), 4, "{:?}", parsed.errors);
    assert_eq!(
        parsed.errors[0],
        (1, "record before any #Fields header".to_string())
    );
    assert_eq!(
        parsed.errors[1],
        (4, "sc_bytes `many` is not an integer".to_string())
    );
    assert_eq!(parsed.errors[2].0, 5, "spaces instead of tabs");
    assert!(
        parsed.errors[3].1.contains("2019-13-04"),
        "{}",
        parsed.errors[3].1
    );
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].str("extra_1"), Some("extra"));
    assert_eq!(parsed.counters.rows_with_extra, 1);
}

#[test]
fn v2_json_records_keep_names_and_types() {
    let input = r#"{"date":"2024-11-14","time":"20:15:01","x-edge-location":"SEA19-C1","sc-bytes":"1024","sc-status":200,"c-ip":"2001:db8::7","cs-uri-query":"-","time-taken":0.102,"x-forwarded-for":null,"DistributionId":"EMLARXS9EXAMPLE"}
{"timestamp":"1731615301.123","x-edge-request-id":"abc==","sc-status":"000"}
{"timestamp":1731615301123,"c-ip":"192.0.2.1"}
"#;
    let parsed = parse_ok(input);
    let first = &parsed.records[0];
    assert_eq!(first.time, parse_iso8601("2024-11-14T20:15:01Z"));
    assert_eq!(
        first.fields.get("x-edge-location"),
        Some(&Owned::Str("SEA19-C1".into()))
    );
    assert_eq!(
        first.fields.get("sc-bytes"),
        Some(&Owned::Str("1024".into())),
        "as given"
    );
    assert_eq!(first.fields.get("sc-status"), Some(&Owned::Int(200)));
    assert_eq!(first.fields.get("time-taken"), Some(&Owned::Float(0.102)));
    assert_eq!(
        first.fields.get("c-ip"),
        Some(&Owned::Str("2001:db8::7".into()))
    );
    assert_eq!(
        first.fields.get("DistributionId"),
        Some(&Owned::Str("EMLARXS9EXAMPLE".into()))
    );
    for absent in ["cs-uri-query", "x-forwarded-for", "date", "time"] {
        assert!(!first.has(absent), "{absent}");
    }
    assert_eq!(parsed.records[1].time, Some(1_731_615_301_123_000_000));
    assert!(!parsed.records[1].has("timestamp"));
    assert_eq!(parsed.records[2].time, Some(1_731_615_301_123_000_000));
    assert!(parsed.fields.iter().all(|(_, ty)| *ty == FieldType::Any));
    assert_eq!(
        parsed
            .fields
            .iter()
            .filter(|(name, _)| name == "sc-status")
            .count(),
        1
    );
}

#[test]
fn v2_json_errors() {
    let input = "{\"date\":\"2024-11-14\",\"time\":\"25:00:00\"}\n{\"c-ip\":\n[1,2]\n{\"c-ip\":\"192.0.2.1\"}\n";
    let parsed = parse::<CloudFront>(KEY, &[], input).unwrap();
    let lines: Vec<u64> = parsed.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [1, 2, 3], "{:?}", parsed.errors);
    assert!(
        parsed.errors[1].1.starts_with("not a JSON object"),
        "{}",
        parsed.errors[1].1
    );
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].time, None);
}

#[test]
fn v2_w3c_with_a_timestamp_instead_of_date_and_time() {
    let input = "#Fields: timestamp DistributionId c-ip sc-status\n1731615301.5\tEMLARXS9EXAMPLE\t192.0.2.1\t206\n";
    let record = &parse_ok(input).records[0];
    assert_eq!(record.time, Some(1_731_615_301_500_000_000));
    assert_eq!(record.str("distributionid"), Some("EMLARXS9EXAMPLE"));
    assert_eq!(record.int("sc_status"), Some(206));
}

#[test]
fn detection_patterns() {
    assert!(matches_key::<CloudFront>(KEY));
    assert!(matches_key::<CloudFront>(
        "E2QWRUHAPOMQZL.2024-01-02-03.a1b2c3d4.gz"
    ));
    for other in [
        "logs/2019-02-06-00-00-38-E568B2907131C0C0",
        "AWSLogs/123456789010/vpcflowlogs/us-east-1/2014/12/14/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20141214T0420Z_fe123456.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/01/02/123456789012_elasticloadbalancing_us-east-1_app.my-lb.1234_20240102T0000Z_10.0.0.1_abc.log.gz",
    ] {
        assert!(!matches_key::<CloudFront>(other), "{other}");
    }
    assert!(matches_first_line::<CloudFront>(VERSION));
    assert!(matches_first_line::<CloudFront>(FIELDS));
    assert!(matches_first_line::<CloudFront>(
        r#"{"date":"2024-11-14","x-edge-location":"SEA19-C1"}"#
    ));
    assert!(!matches_first_line::<CloudFront>(
        r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn"}"#
    ));
}
