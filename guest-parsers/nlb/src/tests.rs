use s3logd_parser_sdk::FieldType;
use s3logd_parser_sdk::testing::{
    Owned, Record, matches_first_line, matches_key, parse, parse_batched, parse_one,
};

use crate::Nlb;

const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz";

/// The documentation's example: 21 fields, before
/// `tls_connection_creation_time` was appended.
const DOC_EXAMPLE: &str = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com - - -";
/// A TLS 1.3 connection from an IPv6 client with ALPN, in the 22-field form.
const ALPN_LINE: &str = r#"tls 2.0 2024-03-01T10:00:05 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 2001:db8::1:50718 172.100.100.185:443 1523 12 3102 5120 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - TLS_AES_128_GCM_SHA256 tlsv13 x25519 www.ex%C3%A4mple.com h2 h2 "h2","http%2F1.1" 2024-03-01T09:59:40"#;

#[test]
fn documented_example() {
    let r = parse_one::<Nlb>(KEY, DOC_EXAMPLE);
    assert_eq!(
        r.time,
        Some(1_545_274_780_000_000_000),
        "2018-12-20T02:59:40 read as UTC"
    );
    assert_eq!(r.msg.as_deref(), Some(DOC_EXAMPLE));
    assert_eq!(r.str("type"), Some("tls"));
    assert_eq!(r.str("version"), Some("2.0"));
    assert_eq!(
        r.str("elb"),
        Some("net/my-network-loadbalancer/c6e77e28c25b2234")
    );
    assert_eq!(r.str("listener"), Some("g3d4b5e8bb8464cd"));
    assert_eq!(r.str("client_ip"), Some("72.21.218.154"));
    assert_eq!(r.int("client_port"), Some(51341));
    assert_eq!(r.str("destination_ip"), Some("172.100.100.185"));
    assert_eq!(r.int("destination_port"), Some(443));
    assert_eq!(r.float("connection_time"), Some(5.0));
    assert_eq!(r.float("tls_handshake_time"), Some(2.0));
    assert_eq!(r.int("received_bytes"), Some(98));
    assert_eq!(r.int("sent_bytes"), Some(246));
    assert!(!r.has("incoming_tls_alert"));
    assert_eq!(
        r.str("chosen_cert_arn"),
        Some("arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99")
    );
    assert!(!r.has("chosen_cert_serial"));
    assert_eq!(r.str("tls_cipher"), Some("ECDHE-RSA-AES128-SHA"));
    assert_eq!(r.str("tls_protocol_version"), Some("tlsv12"));
    assert!(!r.has("tls_named_group"));
    assert_eq!(
        r.str("domain_name"),
        Some("my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com")
    );
    for absent in [
        "alpn_fe_protocol",
        "alpn_be_protocol",
        "alpn_client_preference_list",
        "tls_connection_creation_time",
    ] {
        assert!(!r.has(absent), "{absent} should be absent");
    }
    assert!(!r.has("time"), "the time is _time, not a field");
}

#[test]
fn current_form_adds_the_connection_creation_time() {
    let line = format!("{DOC_EXAMPLE} 2018-12-20T02:59:30");
    let parsed = parse::<Nlb>(KEY, &[], &line).unwrap();
    let r = &parsed.records[0];
    assert_eq!(
        r.timestamp("tls_connection_creation_time"),
        Some(1_545_274_770_000_000_000)
    );
    assert_eq!(parsed.counters.rows_with_extra, 0);
}

#[test]
fn alpn_values_and_encoded_names_stay_as_logged() {
    let r = parse_one::<Nlb>(KEY, ALPN_LINE);
    assert_eq!(r.str("client_ip"), Some("2001:db8::1"));
    assert_eq!(r.int("client_port"), Some(50718));
    assert_eq!(r.float("connection_time"), Some(1523.0));
    assert_eq!(r.str("tls_protocol_version"), Some("tlsv13"));
    assert_eq!(r.str("tls_named_group"), Some("x25519"));
    assert_eq!(r.str("domain_name"), Some("www.ex%C3%A4mple.com"));
    assert_eq!(r.str("alpn_fe_protocol"), Some("h2"));
    assert_eq!(r.str("alpn_be_protocol"), Some("h2"));
    assert_eq!(offered_protocols(&r), ["h2", "http%2F1.1"]);
}

/// `ALPN_LINE` with `list` as its ALPN preference list.
fn with_alpn_list(list: &str) -> String {
    ALPN_LINE.replace(r#" "h2","http%2F1.1" "#, &format!(" {list} "))
}

fn offered_protocols(r: &Record) -> Vec<&str> {
    r.list("alpn_client_preference_list")
        .expect("alpn_client_preference_list is present")
        .iter()
        .map(|item| match item {
            Owned::Str(protocol) => protocol.as_str(),
            other => panic!("{other:?} is not a string"),
        })
        .collect()
}

#[test]
fn alpn_client_preference_list_is_a_list_of_the_offered_protocols() {
    let line = with_alpn_list(r#""h2","http%2F1.1","http%2F1.0""#);
    let parsed = parse::<Nlb>(KEY, &[], &line).unwrap();
    let declared = parsed
        .fields
        .iter()
        .find(|(name, _)| name == "alpn_client_preference_list");
    assert_eq!(declared.map(|(_, ty)| *ty), Some(FieldType::StringList));
    assert_eq!(
        offered_protocols(&parsed.records[0]),
        ["h2", "http%2F1.1", "http%2F1.0"]
    );
}

#[test]
fn alpn_client_preference_list_of_a_dash_is_absent() {
    let r = parse_one::<Nlb>(KEY, &with_alpn_list("-"));
    assert!(!r.has("alpn_client_preference_list"));
    assert_eq!(r.str("alpn_fe_protocol"), Some("h2"));
    assert!(r.has("tls_connection_creation_time"));
}

#[test]
fn an_alpn_list_cut_at_its_length_limit_keeps_the_protocols_it_holds() {
    let cut_in_a_protocol = parse_one::<Nlb>(KEY, &with_alpn_list(r#""h2","http%2F1."#));
    assert_eq!(offered_protocols(&cut_in_a_protocol), ["h2", "http%2F1."]);
    let cut_after_a_quote = parse_one::<Nlb>(KEY, &with_alpn_list(r#""h2",""#));
    assert_eq!(offered_protocols(&cut_after_a_quote), ["h2"]);
}

#[test]
fn failed_handshake_leaves_handshake_time_absent_and_keeps_the_alert() {
    let line = "tls 2.0 2024-03-01T10:00:06 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 198.51.100.7:40001 172.100.100.185:443 3 - 0 0 40 - - - - - - - - - 2024-03-01T10:00:06";
    let r = parse_one::<Nlb>(KEY, line);
    assert_eq!(r.float("connection_time"), Some(3.0));
    assert!(!r.has("tls_handshake_time"));
    assert_eq!(r.int("incoming_tls_alert"), Some(40));
    assert!(!r.has("chosen_cert_arn") && !r.has("tls_cipher") && !r.has("domain_name"));
}

#[test]
fn trailing_fields_become_counted_extras() {
    let line = format!("{ALPN_LINE} new-field another");
    let parsed = parse::<Nlb>(KEY, &[], &line).unwrap();
    let r = &parsed.records[0];
    assert_eq!(r.str("extra_1"), Some("new-field"));
    assert_eq!(r.str("extra_2"), Some("another"));
    assert!(r.has("tls_connection_creation_time"));
    assert_eq!(parsed.counters.rows_with_extra, 1);
}

#[test]
fn malformed_lines_are_errors_that_do_not_stop_the_object() {
    let lines = [
        DOC_EXAMPLE,
        "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234",
        &DOC_EXAMPLE.replace("2018-12-20T02:59:40", "2018-12-20"),
        &DOC_EXAMPLE.replace(":51341", ":port"),
        &DOC_EXAMPLE.replace(" 98 ", " 9.8 "),
        &ALPN_LINE.replace("2024-03-01T09:59:40", "yesterday"),
        ALPN_LINE,
    ];
    let parsed = parse_batched::<Nlb>(KEY, &[], &lines.join("\n"), 1).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].msg.as_deref(), Some(ALPN_LINE));
    let reasons = parsed.error_reasons();
    assert_eq!(
        reasons,
        [
            (2, "only 4 fields; an NLB access log line has at least 11"),
            (3, "time \"2018-12-20\" is not an ISO 8601 time"),
            (4, "client:port \"72.21.218.154:port\" has no numeric port"),
            (5, "received_bytes \"9.8\" is not an integer"),
            (
                6,
                "tls_connection_creation_time \"yesterday\" is not an ISO 8601 time"
            ),
        ]
    );
}

#[test]
fn key_pattern_takes_nlb_names_only() {
    assert!(matches_key::<Nlb>(KEY));
    for other in [
        "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2023/10/04/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20231004T1710Z_172.160.001.192_20sg8hgm.log.gz",
    ] {
        assert!(!matches_key::<Nlb>(other), "{other}");
    }
}

#[test]
fn first_line_pattern_takes_nlb_lines() {
    assert!(matches_first_line::<Nlb>(DOC_EXAMPLE) && matches_first_line::<Nlb>(ALPN_LINE));
    assert!(!matches_first_line::<Nlb>(
        "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817"
    ));
}
