use s3logd_parser_sdk::testing::{
    matches_first_line, matches_key, parse, parse_batched, parse_one,
};

use crate::Clb;

const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log";

/// The documentation's HTTP-listener example.
const HTTP_EXAMPLE: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
/// The documentation's TCP-listener example.
const TCP_EXAMPLE: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -"#;
const EXAMPLE_TIME: i64 = 1_431_560_383_945_958_000;

#[test]
fn http_listener_example() {
    let r = parse_one::<Clb>(KEY, HTTP_EXAMPLE);
    assert_eq!(r.time, Some(EXAMPLE_TIME));
    assert_eq!(r.msg.as_deref(), Some(HTTP_EXAMPLE));
    assert_eq!(r.str("elb"), Some("my-loadbalancer"));
    assert_eq!(r.str("client_ip"), Some("192.168.131.39"));
    assert_eq!(r.int("client_port"), Some(2817));
    assert_eq!(r.str("backend_ip"), Some("10.0.0.1"));
    assert_eq!(r.int("backend_port"), Some(80));
    assert_eq!(r.float("request_processing_time"), Some(0.000073));
    assert_eq!(r.float("backend_processing_time"), Some(0.001048));
    assert_eq!(r.float("response_processing_time"), Some(0.000057));
    assert_eq!(r.int("elb_status_code"), Some(200));
    assert_eq!(r.int("backend_status_code"), Some(200));
    assert_eq!(r.int("received_bytes"), Some(0));
    assert_eq!(r.int("sent_bytes"), Some(29));
    assert_eq!(
        r.str("request"),
        Some("GET http://www.example.com:80/ HTTP/1.1")
    );
    assert_eq!(r.str("request_method"), Some("GET"));
    assert_eq!(r.str("request_url"), Some("http://www.example.com:80/"));
    assert_eq!(r.str("request_protocol"), Some("HTTP/1.1"));
    assert_eq!(r.str("user_agent"), Some("curl/7.38.0"));
    assert!(!r.has("ssl_cipher") && !r.has("ssl_protocol"));
    assert!(!r.has("timestamp"), "the time is _time, not a field");
}

#[test]
fn tcp_listener_example_has_no_status_codes_or_request_parts() {
    let r = parse_one::<Clb>(KEY, TCP_EXAMPLE);
    assert_eq!(r.time, Some(EXAMPLE_TIME));
    assert!(!r.has("elb_status_code") && !r.has("backend_status_code"));
    assert_eq!(r.str("request"), Some("- - - "), "kept as logged");
    for part in [
        "request_method",
        "request_url",
        "request_protocol",
        "user_agent",
    ] {
        assert!(!r.has(part), "{part} should be absent");
    }
    assert_eq!(r.int("received_bytes"), Some(82));
    assert_eq!(r.int("sent_bytes"), Some(305));
    assert_eq!(r.float("request_processing_time"), Some(0.001069));
}

#[test]
fn undispatched_request_keeps_minus_one_timings_and_no_backend() {
    let line = r#"2015-05-13T23:40:01.000001Z my-loadbalancer 2001:db8::1:50718 - -1 -1 -1 503 - 0 0 "GET https://www.example.com:443/a b HTTP/1.1" "Mozilla/5.0 (X11)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"#;
    let r = parse_one::<Clb>(KEY, line);
    assert_eq!(r.str("client_ip"), Some("2001:db8::1"));
    assert_eq!(r.int("client_port"), Some(50718));
    assert!(!r.has("backend_ip") && !r.has("backend_port"));
    for timing in [
        "request_processing_time",
        "backend_processing_time",
        "response_processing_time",
    ] {
        assert_eq!(r.float(timing), Some(-1.0), "{timing}");
    }
    assert_eq!(r.int("elb_status_code"), Some(503));
    assert!(!r.has("backend_status_code"));
    assert_eq!(
        r.str("request_url"),
        Some("https://www.example.com:443/a b")
    );
    assert_eq!(r.str("user_agent"), Some("Mozilla/5.0 (X11)"));
    assert_eq!(r.str("ssl_cipher"), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    assert_eq!(r.str("ssl_protocol"), Some("TLSv1.2"));
}

#[test]
fn lines_without_the_later_fields_keep_them_absent() {
    let line = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1""#;
    let r = parse_one::<Clb>(KEY, line);
    assert_eq!(r.str("request_method"), Some("GET"));
    assert!(!r.has("user_agent") && !r.has("ssl_cipher") && !r.has("ssl_protocol"));
}

#[test]
fn trailing_fields_become_counted_extras() {
    let line = format!("{HTTP_EXAMPLE} new-field \"quoted new\"");
    let parsed = parse::<Clb>(KEY, &[], &line).unwrap();
    let r = &parsed.records[0];
    assert_eq!(r.str("extra_1"), Some("new-field"));
    assert_eq!(r.str("extra_2"), Some("quoted new"));
    assert_eq!(r.str("ssl_protocol"), None);
    assert_eq!(parsed.counters.rows_with_extra, 1);
}

#[test]
fn malformed_lines_are_errors_that_do_not_stop_the_object() {
    let lines = [
        HTTP_EXAMPLE,
        "Enable AccessLog for ELB: my-loadbalancer",
        &HTTP_EXAMPLE.replace("200 200", "200 OK"),
        &HTTP_EXAMPLE.replace("2015-05-13T23", "2015-13-13T23"),
        &HTTP_EXAMPLE.replace(":2817", ""),
        &HTTP_EXAMPLE.replace("0.000073", "fast"),
        TCP_EXAMPLE,
    ];
    let parsed = parse_batched::<Clb>(KEY, &[], &lines.join("\n"), 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].msg.as_deref(), Some(TCP_EXAMPLE));
    let reasons = parsed.error_reasons();
    assert_eq!(
        reasons,
        [
            (2, "only 5 fields; a CLB access log line has at least 12"),
            (3, "backend_status_code \"OK\" is not an integer"),
            (
                4,
                "timestamp \"2015-13-13T23:39:43.945958Z\" is not an ISO 8601 time"
            ),
            (5, "client:port \"192.168.131.39\" has no port"),
            (6, "request_processing_time \"fast\" is not a number"),
        ]
    );
}

#[test]
fn key_pattern_takes_clb_names_only() {
    assert!(matches_key::<Clb>(KEY));
    assert!(matches_key::<Clb>(
        "123456789012_elasticloadbalancing_eu-west-1_web-1_20240101T0000Z_10.0.0.5_abcd1234.log"
    ));
    for other in [
        // ALB, NLB and ALB connection logs share the tree.
        "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2023/10/04/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20231004T1710Z_172.160.001.192_20sg8hgm.log.gz",
        "AWSLogs/123456789012/ELBAccessLogTestFile",
    ] {
        assert!(!matches_key::<Clb>(other), "{other}");
    }
}

#[test]
fn first_line_pattern_takes_clb_lines_only() {
    assert!(matches_first_line::<Clb>(HTTP_EXAMPLE) && matches_first_line::<Clb>(TCP_EXAMPLE));
    for other in [
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 \"CN=amazondomains.com\" NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success TID_3180a73013c8ca4bac2f731159d4b0fe",
        "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366",
        "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341",
    ] {
        assert!(!matches_first_line::<Clb>(other), "{other}");
    }
}
