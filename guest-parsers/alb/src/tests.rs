//! The parser run natively over the documented example lines and the edge
//! cases of AWS's ALB access log documentation, decoded through the real row encoding.

use s3logd_parser_sdk::Parser;
use s3logd_parser_sdk::testing::{
    Owned, matches_first_line, matches_key, parse, parse_batched, parse_one,
};

use crate::Alb;

const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz";

/// The current access-log page's example, joined to one line (33 fields).
const CURRENT_EXAMPLE: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-""#;

/// The archived page's failed Lambda request (29 fields, lists `"-"`).
const LAMBDA_FAILURE_EXAMPLE: &str = r#"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-""#;

/// The archived page's HTTPS example, its lists printed without quotes.
const ARCHIVED_HTTPS_EXAMPLE: &str = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" 10.0.0.1:80 200 "-" "-""#;

/// The archived page's HTTP/2 example, with a redirect.
const ARCHIVED_H2_REDIRECT_EXAMPLE: &str = r#"h2 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "GET https://10.0.2.105:773/ HTTP/2.0" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337327-72bd00b0343d75b906739c42" "-" "-" 1 2018-07-02T22:22:48.364000Z "redirect" "https://example.com:80/" "-" 10.0.0.66:9000 200 "-" "-""#;

const CONTROL_LINE: &str =
    "Enable AccessLog for ELB: app/elb-name/abc123456 at 2025-05-30T16:47:00.781Z";

fn strings(items: &[Owned]) -> Vec<&str> {
    items
        .iter()
        .map(|item| match item {
            Owned::Str(s) => s.as_str(),
            other => panic!("{other:?} is not a string"),
        })
        .collect()
}

fn ints(items: &[Owned]) -> Vec<i64> {
    items
        .iter()
        .map(|item| match item {
            Owned::Int(n) => *n,
            other => panic!("{other:?} is not an integer"),
        })
        .collect()
}

/// The current example with tokens replaced, by 0-based position.
fn current_with(replacements: &[(usize, &str)]) -> String {
    let mut tokens = tokens_of(CURRENT_EXAMPLE);
    for &(position, token) in replacements {
        tokens[position] = token.to_string();
    }
    tokens.join(" ")
}

/// The raw tokens of a line, quotes kept, so a test can rebuild it.
fn tokens_of(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let end = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find("\" ").map_or(rest.len(), |at| at + 2)
        } else {
            rest.find(' ').unwrap_or(rest.len())
        };
        tokens.push(rest[..end].to_string());
        rest = rest.get(end + 1..).unwrap_or("");
    }
    tokens
}

fn error_of(line: &str) -> String {
    let parsed = parse::<Alb>(KEY, &[], line).unwrap();
    assert!(parsed.records.is_empty(), "{:?}", parsed.records);
    assert_eq!(parsed.errors.len(), 1);
    parsed.errors[0].1.clone()
}

#[test]
fn current_page_example_gives_every_field() {
    let r = parse_one::<Alb>(KEY, CURRENT_EXAMPLE);
    assert_eq!(r.time, Some(1_530_570_180_186_641_000));
    assert_eq!(r.msg.as_deref(), Some(CURRENT_EXAMPLE));
    assert!(!r.has("time"));
    assert_eq!(r.str("type"), Some("http"));
    assert_eq!(r.str("elb"), Some("app/my-loadbalancer/50dc6c495c0c9188"));
    assert_eq!(r.str("client_ip"), Some("192.168.131.39"));
    assert_eq!(r.int("client_port"), Some(2817));
    assert_eq!(r.str("target_ip"), Some("10.0.0.1"));
    assert_eq!(r.int("target_port"), Some(80));
    assert_eq!(r.float("request_processing_time"), Some(0.0));
    assert_eq!(r.float("target_processing_time"), Some(0.001));
    assert_eq!(r.float("response_processing_time"), Some(0.0));
    assert_eq!(r.int("elb_status_code"), Some(200));
    assert_eq!(r.int("target_status_code"), Some(200));
    assert_eq!(r.int("received_bytes"), Some(34));
    assert_eq!(r.int("sent_bytes"), Some(366));
    assert_eq!(
        r.str("request"),
        Some("GET http://www.example.com:80/ HTTP/1.1")
    );
    assert_eq!(r.str("request_method"), Some("GET"));
    assert_eq!(r.str("request_url"), Some("http://www.example.com:80/"));
    assert_eq!(r.str("request_protocol"), Some("HTTP/1.1"));
    assert_eq!(r.str("user_agent"), Some("curl/7.46.0"));
    assert!(!r.has("ssl_cipher"));
    assert!(!r.has("ssl_protocol"));
    assert_eq!(
        r.str("target_group_arn"),
        Some(
            "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"
        )
    );
    assert_eq!(
        r.str("trace_id"),
        Some("Root=1-58337262-36d228ad5d99923122bbe354")
    );
    assert!(!r.has("domain_name"));
    assert!(!r.has("chosen_cert_arn"));
    assert_eq!(r.int("matched_rule_priority"), Some(0));
    assert_eq!(
        r.timestamp("request_creation_time"),
        Some(1_530_570_168_364_000_000)
    );
    assert_eq!(strings(r.list("actions_executed").unwrap()), ["forward"]);
    assert!(!r.has("redirect_url"));
    assert!(!r.has("error_reason"));
    assert_eq!(
        strings(r.list("target_port_list").unwrap()),
        ["10.0.0.1:80"]
    );
    assert_eq!(ints(r.list("target_status_code_list").unwrap()), [200]);
    assert!(!r.has("classification"));
    assert!(!r.has("classification_reason"));
    assert_eq!(r.str("conn_trace_id"), Some("TID_1234abcd5678ef90"));
    assert!(!r.has("transformed_host"));
    assert!(!r.has("transformed_uri"));
    assert!(!r.has("request_transform_status"));
    // 26 of the 37 fields are present; every other one was `-`.
    assert_eq!(r.fields.len(), 26);
}

#[test]
fn lambda_failure_has_no_target_and_keeps_the_error_reason() {
    let parsed = parse::<Alb>(KEY, &[], LAMBDA_FAILURE_EXAMPLE).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.counters.rows_with_extra, 0);
    let r = &parsed.records[0];
    assert_eq!(r.time, Some(1_543_616_580_186_641_000));
    assert!(!r.has("target_ip"));
    assert!(!r.has("target_port"));
    assert_eq!(r.int("elb_status_code"), Some(502));
    assert!(!r.has("target_status_code"));
    assert_eq!(r.str("error_reason"), Some("LambdaInvalidResponse"));
    assert_eq!(
        r.timestamp("request_creation_time"),
        Some(1_543_616_568_364_000_000)
    );
    for absent in [
        "target_port_list",
        "target_status_code_list",
        "classification",
        "classification_reason",
        // Fields 30–33 postdate this 29-field line.
        "conn_trace_id",
        "transformed_host",
        "transformed_uri",
        "request_transform_status",
    ] {
        assert!(!r.has(absent), "{absent} should be absent");
    }
}

#[test]
fn archived_unquoted_lists_and_tls_fields() {
    let r = parse_one::<Alb>(KEY, ARCHIVED_HTTPS_EXAMPLE);
    assert_eq!(r.str("type"), Some("https"));
    assert_eq!(r.float("request_processing_time"), Some(0.086));
    assert_eq!(r.float("target_processing_time"), Some(0.048));
    assert_eq!(r.float("response_processing_time"), Some(0.037));
    assert_eq!(r.str("ssl_cipher"), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    assert_eq!(r.str("ssl_protocol"), Some("TLSv1.2"));
    assert_eq!(r.str("domain_name"), Some("www.example.com"));
    assert_eq!(
        r.str("chosen_cert_arn"),
        Some("arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012")
    );
    assert_eq!(r.int("matched_rule_priority"), Some(1));
    assert_eq!(
        strings(r.list("actions_executed").unwrap()),
        ["authenticate", "forward"]
    );
    assert_eq!(
        strings(r.list("target_port_list").unwrap()),
        ["10.0.0.1:80"]
    );
    assert_eq!(ints(r.list("target_status_code_list").unwrap()), [200]);
    assert!(!r.has("conn_trace_id"));

    let redirect = parse_one::<Alb>(KEY, ARCHIVED_H2_REDIRECT_EXAMPLE);
    assert_eq!(redirect.str("type"), Some("h2"));
    assert_eq!(redirect.str("request_protocol"), Some("HTTP/2.0"));
    assert_eq!(
        strings(redirect.list("actions_executed").unwrap()),
        ["redirect"]
    );
    assert_eq!(
        redirect.str("redirect_url"),
        Some("https://example.com:80/")
    );
    assert_eq!(
        strings(redirect.list("target_port_list").unwrap()),
        ["10.0.0.66:9000"]
    );
}

#[test]
fn multi_target_lists_split_on_single_spaces() {
    let line = current_with(&[(25, r#""10.0.0.1:80 10.0.0.2:8080""#), (26, r#""200 503""#)]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(
        strings(r.list("target_port_list").unwrap()),
        ["10.0.0.1:80", "10.0.0.2:8080"]
    );
    assert_eq!(ints(r.list("target_status_code_list").unwrap()), [200, 503]);
}

#[test]
fn ipv6_clients_and_targets_split_at_the_last_colon() {
    let line = current_with(&[
        (3, "2a02:a33c:8000:2a00:f4d1:1f37:3c28:f215:50718"),
        (4, "[2001:db8::2]:8080"),
    ]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(
        r.str("client_ip"),
        Some("2a02:a33c:8000:2a00:f4d1:1f37:3c28:f215")
    );
    assert_eq!(r.int("client_port"), Some(50718));
    assert_eq!(r.str("target_ip"), Some("2001:db8::2"));
    assert_eq!(r.int("target_port"), Some(8080));
}

#[test]
fn malformed_request_gives_no_parts_and_minus_one_timings_stay() {
    let line = current_with(&[
        (4, "-"),
        (5, "-1"),
        (6, "-1"),
        (7, "-1"),
        (8, "400"),
        (9, "-"),
        (12, r#""- - -""#),
        (13, r#""-""#),
        (16, "-"),
        (20, "-"),
        (22, r#""-""#),
    ]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(r.str("request"), Some("- - -"));
    assert!(!r.has("request_method"));
    assert!(!r.has("request_url"));
    assert!(!r.has("request_protocol"));
    assert!(!r.has("user_agent"));
    assert!(!r.has("target_group_arn"));
    assert!(!r.has("matched_rule_priority"));
    assert!(!r.has("actions_executed"));
    assert!(!r.has("target_status_code"));
    assert_eq!(r.float("request_processing_time"), Some(-1.0));
    assert_eq!(r.float("target_processing_time"), Some(-1.0));
    assert_eq!(r.float("response_processing_time"), Some(-1.0));
    assert_eq!(r.int("elb_status_code"), Some(400));
}

#[test]
fn urls_with_spaces_and_literal_escapes_are_kept() {
    let line = current_with(&[(
        12,
        r#""GET http://www.example.com:80/a b/?q=\x22x y\x22 HTTP/1.1""#,
    )]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(r.str("request_method"), Some("GET"));
    assert_eq!(
        r.str("request_url"),
        Some(r#"http://www.example.com:80/a b/?q=\x22x y\x22"#)
    );
    assert_eq!(r.str("request_protocol"), Some("HTTP/1.1"));
    assert_eq!(r.str("user_agent"), Some("curl/7.46.0"));
}

#[test]
fn quoted_user_agent_with_inner_quote_ends_at_quote_before_space() {
    let line = current_with(&[(13, r#""Mozilla/5.0 "quirky"agent (X11)""#)]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(
        r.str("user_agent"),
        Some(r#"Mozilla/5.0 "quirky"agent (X11)"#)
    );
    assert_eq!(r.str("ssl_cipher"), None);
}

#[test]
fn session_reused_certificate_and_classification() {
    let line = current_with(&[
        (19, r#""session-reused""#),
        (27, r#""Ambiguous""#),
        (28, r#""SpaceInUri""#),
        (30, r#""internal.example.com""#),
        (31, r#""/v2/items""#),
        (32, r#""TransformSuccess""#),
    ]);
    let r = parse_one::<Alb>(KEY, &line);
    assert_eq!(r.str("chosen_cert_arn"), Some("session-reused"));
    assert_eq!(r.str("classification"), Some("Ambiguous"));
    assert_eq!(r.str("classification_reason"), Some("SpaceInUri"));
    assert_eq!(r.str("transformed_host"), Some("internal.example.com"));
    assert_eq!(r.str("transformed_uri"), Some("/v2/items"));
    assert_eq!(r.str("request_transform_status"), Some("TransformSuccess"));
}

#[test]
fn fields_past_the_current_list_are_kept_as_extras_and_counted() {
    let line = format!("{CURRENT_EXAMPLE} 10.0.12.7 -");
    let input = format!("{line}\n{line}\n{CURRENT_EXAMPLE}\n");
    // One line per batch: the extra field is declared in the first batch
    // and must still be used by the next.
    let parsed = parse_batched::<Alb>(KEY, &[], &input, 1).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.counters.rows_with_extra, 2);
    let extras: Vec<Option<&str>> = parsed.records.iter().map(|r| r.str("extra_1")).collect();
    assert_eq!(extras, [Some("10.0.12.7"), Some("10.0.12.7"), None]);
    // The placeholder `-` AWS writes before releasing a field is absent.
    assert!(parsed.records.iter().all(|r| !r.has("extra_2")));
    assert_eq!(parsed.records[0].str("request_transform_status"), None);
    assert_eq!(
        parsed.records[0].str("conn_trace_id"),
        Some("TID_1234abcd5678ef90")
    );
}

#[test]
fn oldest_form_ends_at_ssl_protocol_and_fewer_fields_are_an_error() {
    let tokens = tokens_of(ARCHIVED_HTTPS_EXAMPLE);
    let oldest = tokens[..16].join(" ");
    let r = parse_one::<Alb>(KEY, &oldest);
    assert_eq!(r.str("ssl_protocol"), Some("TLSv1.2"));
    assert!(!r.has("target_group_arn"));
    assert!(!r.has("request_creation_time"));
    assert_eq!(r.fields.len(), 20);

    let reason = error_of(&tokens[..15].join(" "));
    assert!(
        reason.contains("15 fields") && reason.contains("at least 16"),
        "{reason}"
    );
}

#[test]
fn control_line_is_skipped_without_error() {
    let parsed = parse::<Alb>(KEY, &[], &format!("{CONTROL_LINE}\n")).unwrap();
    assert!(parsed.records.is_empty());
    assert!(parsed.errors.is_empty());
    assert_eq!(parsed.counters.lines, 1);
    assert_eq!(parsed.counters.skipped, 1);
}

#[test]
fn malformed_lines_are_errors_that_do_not_stop_the_object() {
    let bad_status = current_with(&[(8, "2OO")]);
    let bad_time = current_with(&[(1, "2018-07-02 late")]);
    let bad_port = current_with(&[(3, "192.168.131.39:x")]);
    let bad_code_list = current_with(&[(26, r#""200 OK""#)]);
    let input = [
        CURRENT_EXAMPLE,
        &bad_status,
        LAMBDA_FAILURE_EXAMPLE,
        &bad_time,
        &bad_port,
        &bad_code_list,
        "garbage",
        CURRENT_EXAMPLE,
    ]
    .join("\n");
    let parsed = parse::<Alb>(KEY, &[], &input).unwrap();
    assert_eq!(parsed.records.len(), 3);
    assert_eq!(parsed.records[1].int("elb_status_code"), Some(502));
    let lines: Vec<u64> = parsed.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7]);
    let reasons: Vec<&str> = parsed.errors.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons[0], "elb_status_code `2OO` is not an integer");
    assert_eq!(reasons[1], "time `2018-07-02` is not an ISO 8601 time");
    assert_eq!(reasons[2], "client_port `x` is not an integer");
    assert_eq!(reasons[3], "target_status_code_list `OK` is not an integer");
    assert!(reasons[4].starts_with("1 fields;"), "{}", reasons[4]);
    // A failed line leaves nothing behind in the next row.
    assert_eq!(parsed.records[2], parsed.records[0]);
}

#[test]
fn schema_lists_every_field_once_in_record_order() {
    let names: Vec<String> = Alb::describe().fields.into_iter().map(|f| f.name).collect();
    assert_eq!(names.len(), 37);
    assert_eq!(names.first().map(String::as_str), Some("type"));
    assert_eq!(
        names.last().map(String::as_str),
        Some("request_transform_status")
    );
    assert!(!names.iter().any(|n| n == "time"));
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn key_pattern_picks_alb_access_logs_only() {
    for alb in [
        KEY,
        "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz",
        "my-bucket-prefix/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/03/01/123456789012_elasticloadbalancing_eu-west-1_app.web-prod.0f1e2d3c4b5a6978_20240301T1205Z_10.1.2.3_5k2j9x1q.log",
    ] {
        assert!(matches_key::<Alb>(alb), "{alb}");
    }
    for other in [
        // ALB connection log
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2023/10/04/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20231004T1705Z_172.160.001.192_20sg8hgm.log.gz",
        // NLB
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz",
        // CLB
        "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log",
        // ELB's test object
        "AWSLogs/123456789012/ELBAccessLogTestFile",
    ] {
        assert!(!matches_key::<Alb>(other), "{other}");
    }
}

#[test]
fn first_line_pattern_picks_alb_lines_only() {
    for alb in [
        CURRENT_EXAMPLE,
        ARCHIVED_HTTPS_EXAMPLE,
        ARCHIVED_H2_REDIRECT_EXAMPLE,
    ] {
        assert!(matches_first_line::<Alb>(alb), "{alb}");
    }
    for other in [
        // CLB
        r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
        // NLB
        "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 -",
        // ALB connection log
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036",
    ] {
        assert!(!matches_first_line::<Alb>(other), "{other}");
    }
}
