use s3logd_parser_sdk::testing::{
    matches_first_line, matches_key, parse, parse_batched, parse_one,
};

use crate::AlbConnection;

const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2023/10/04/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20231004T1710Z_172.160.001.192_20sg8hgm.log.gz";

/// The documentation's example: the 12-field form.
const DOC_EXAMPLE: &str = r#"2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US" NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success TID_3180a73013c8ca4bac2f731159d4b0fe"#;
/// The 15-field form: an IPv6 client without a client certificate.
const FULL_LINE: &str = r#"2025-06-01T12:00:01.000200Z 2001:db8::7 51000 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.012 "-" - - Success TID_0a1b2c3d4e5f60718293a4b5c6d7e8f9 X25519 app/my-loadbalancer/50dc6c495c0c9188 10.0.1.23"#;

#[test]
fn documented_example() {
    let r = parse_one::<AlbConnection>(KEY, DOC_EXAMPLE);
    assert_eq!(r.time, Some(1_696_439_115_514_108_000));
    assert_eq!(r.msg.as_deref(), Some(DOC_EXAMPLE));
    assert_eq!(r.str("client_ip"), Some("203.0.113.1"));
    assert_eq!(r.int("client_port"), Some(36280));
    assert_eq!(r.int("listener_port"), Some(443));
    assert_eq!(r.str("tls_protocol"), Some("TLSv1.2"));
    assert_eq!(r.str("tls_cipher"), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    assert_eq!(r.float("tls_handshake_latency"), Some(4.036));
    assert_eq!(
        r.str("leaf_client_cert_subject"),
        Some("CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US")
    );
    assert_eq!(
        r.str("leaf_client_cert_validity"),
        Some("NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z")
    );
    assert_eq!(
        r.timestamp("leaf_client_cert_not_before"),
        Some(1_695_336_201_000_000_000)
    );
    assert_eq!(
        r.timestamp("leaf_client_cert_not_after"),
        Some(1_781_736_201_000_000_000)
    );
    assert_eq!(
        r.str("leaf_client_cert_serial_number"),
        Some("FEF257372D5C14D4")
    );
    assert_eq!(r.str("tls_verify_status"), Some("Success"));
    assert_eq!(
        r.str("conn_trace_id"),
        Some("TID_3180a73013c8ca4bac2f731159d4b0fe")
    );
    for absent in ["tls_keyexchange", "elb", "ip_address"] {
        assert!(!r.has(absent), "{absent} should be absent");
    }
    assert!(!r.has("timestamp"), "the time is _time, not a field");
}

#[test]
fn full_form_without_a_client_certificate() {
    let parsed = parse::<AlbConnection>(KEY, &[], FULL_LINE).unwrap();
    let r = &parsed.records[0];
    assert_eq!(r.str("client_ip"), Some("2001:db8::7"));
    assert_eq!(r.int("client_port"), Some(51000));
    assert_eq!(r.float("tls_handshake_latency"), Some(0.012));
    for absent in [
        "leaf_client_cert_subject",
        "leaf_client_cert_validity",
        "leaf_client_cert_not_before",
        "leaf_client_cert_not_after",
        "leaf_client_cert_serial_number",
    ] {
        assert!(!r.has(absent), "{absent} should be absent");
    }
    assert_eq!(r.str("tls_keyexchange"), Some("X25519"));
    assert_eq!(r.str("elb"), Some("app/my-loadbalancer/50dc6c495c0c9188"));
    assert_eq!(r.str("ip_address"), Some("10.0.1.23"));
    assert_eq!(parsed.counters.rows_with_extra, 0);
}

#[test]
fn failed_verification_keeps_status_and_leaves_latency_absent() {
    let line = r#"2025-06-01T12:00:02.000300Z 198.51.100.9 40222 443 - - - "CN=client.example.com" NotBefore=2020-01-01T00:00:00Z;NotAfter=2021-01-01T00:00:00Z 0A1B Failed:ClientCertExpired TID_1111aaaa2222bbbb3333cccc4444dddd - app/my-loadbalancer/50dc6c495c0c9188 10.0.1.23"#;
    let r = parse_one::<AlbConnection>(KEY, line);
    assert!(!r.has("tls_protocol") && !r.has("tls_cipher") && !r.has("tls_handshake_latency"));
    assert_eq!(r.str("tls_verify_status"), Some("Failed:ClientCertExpired"));
    assert_eq!(
        r.timestamp("leaf_client_cert_not_after"),
        Some(1_609_459_200_000_000_000)
    );
    assert!(!r.has("tls_keyexchange"));
}

#[test]
fn validity_in_another_shape_is_kept_raw_only() {
    let line = DOC_EXAMPLE.replace(
        "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z",
        "NotAfter=2026-06-17T22:43:21Z",
    );
    let r = parse_one::<AlbConnection>(KEY, &line);
    assert_eq!(
        r.str("leaf_client_cert_validity"),
        Some("NotAfter=2026-06-17T22:43:21Z")
    );
    assert!(!r.has("leaf_client_cert_not_before") && !r.has("leaf_client_cert_not_after"));
}

#[test]
fn trailing_fields_become_counted_extras() {
    let input = format!("{FULL_LINE} - {FULL_LINE}\n{FULL_LINE} new-field");
    let parsed = parse_batched::<AlbConnection>(KEY, &[], &input, 1).unwrap();
    assert_eq!(parsed.counters.rows_with_extra, 2);
    let first = &parsed.records[0];
    assert!(!first.has("extra_1"), "a `-` placeholder is absent");
    assert_eq!(first.str("extra_2"), Some("2025-06-01T12:00:01.000200Z"));
    assert_eq!(parsed.records[1].str("extra_1"), Some("new-field"));
}

#[test]
fn malformed_lines_are_errors_that_do_not_stop_the_object() {
    let lines = [
        DOC_EXAMPLE,
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36280",
        &DOC_EXAMPLE.replace("2023-10-04T17:05:15.514108Z", "17:05:15"),
        &DOC_EXAMPLE.replace(" 443 ", " https "),
        &DOC_EXAMPLE.replace("4.036", "4,036"),
        FULL_LINE,
    ];
    let parsed = parse_batched::<AlbConnection>(KEY, &[], &lines.join("\n"), 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].msg.as_deref(), Some(FULL_LINE));
    let reasons = parsed.error_reasons();
    assert_eq!(
        reasons,
        [
            (
                2,
                "only 3 fields; an ALB connection log line has at least 12"
            ),
            (3, "timestamp \"17:05:15\" is not an ISO 8601 time"),
            (4, "listener_port \"https\" is not an integer"),
            (5, "tls_handshake_latency \"4,036\" is not a number"),
        ]
    );
}

#[test]
fn key_pattern_takes_connection_logs_only() {
    assert!(matches_key::<AlbConnection>(KEY));
    for other in [
        "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log",
    ] {
        assert!(!matches_key::<AlbConnection>(other), "{other}");
    }
}

#[test]
fn first_line_pattern_takes_connection_lines_only() {
    assert!(
        matches_first_line::<AlbConnection>(DOC_EXAMPLE)
            && matches_first_line::<AlbConnection>(FULL_LINE)
    );
    for other in [
        r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
        "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817",
    ] {
        assert!(!matches_first_line::<AlbConnection>(other), "{other}");
    }
}
