//! S3 server access log lines, from the AWS documentation and edge cases,
//! through the real row encoding.

use s3logd_parser_s3_access::S3Access;
use s3logd_parser_sdk::testing::{
    matches_first_line, matches_key, parse, parse_batched, parse_one,
};
use s3logd_parser_sdk::time::parse_iso8601;

const KEY: &str = "logs/2019-02-06-00-00-38-E568B2907131C0C0";
const OWNER: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";

/// The example of AWS's server access log documentation, with its elided
/// ids written out.
const DOCUMENTED: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be DOC-EXAMPLE-BUCKET1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - \"GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1\" 200 - 113 - 7 - \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes";

#[test]
fn documented_example_line() {
    let record = parse_one::<S3Access>(KEY, DOCUMENTED);
    assert_eq!(record.time, parse_iso8601("2019-02-06T00:00:38Z"));
    assert_eq!(record.msg.as_deref(), Some(DOCUMENTED));
    assert_eq!(record.str("bucket_owner"), Some(OWNER));
    assert_eq!(record.str("bucket"), Some("DOC-EXAMPLE-BUCKET1"));
    assert_eq!(record.str("remote_ip"), Some("192.0.2.3"));
    assert_eq!(record.str("requester"), Some(OWNER));
    assert_eq!(record.str("request_id"), Some("3E57427F3EXAMPLE"));
    assert_eq!(record.str("operation"), Some("REST.GET.VERSIONING"));
    assert!(!record.has("key"));
    assert_eq!(
        record.str("request_uri"),
        Some("GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1")
    );
    assert_eq!(record.str("request_method"), Some("GET"));
    assert_eq!(
        record.str("request_url"),
        Some("/DOC-EXAMPLE-BUCKET1?versioning")
    );
    assert_eq!(record.str("request_protocol"), Some("HTTP/1.1"));
    assert_eq!(record.int("http_status"), Some(200));
    assert!(!record.has("error_code"));
    assert_eq!(record.int("bytes_sent"), Some(113));
    assert!(!record.has("object_size"));
    assert_eq!(record.int("total_time"), Some(7));
    assert!(!record.has("turn_around_time"));
    assert!(!record.has("referer"));
    assert_eq!(record.str("user_agent"), Some("S3Console/0.4"));
    assert!(!record.has("version_id"));
    assert_eq!(
        record.str("host_id"),
        Some("s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234=")
    );
    assert_eq!(record.str("signature_version"), Some("SigV4"));
    assert_eq!(
        record.str("cipher_suite"),
        Some("ECDHE-RSA-AES128-GCM-SHA256")
    );
    assert_eq!(record.str("authentication_type"), Some("AuthHeader"));
    assert_eq!(
        record.str("host_header"),
        Some("DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com")
    );
    assert_eq!(record.str("tls_version"), Some("TLSV1.2"));
    assert_eq!(
        record.str("access_point_arn"),
        Some("arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP")
    );
    assert_eq!(record.str("acl_required"), Some("Yes"));
    assert!(record.fields.keys().all(|name| !name.starts_with("extra_")));
}

#[test]
fn object_upload_from_ipv6_with_spaces_in_agent_and_encoded_key() {
    let line = format!(
        "{OWNER} amzn-s3-demo-bucket [21/Nov/2024:13:05:59 +0000] 2001:db8::8a2e:370:7334 arn:aws:iam::123456789012:user/alice \
         B9F2EXAMPLE REST.PUT.OBJECT photos/my%20cat.jpg \"PUT /photos/my%20cat.jpg?x-id=PutObject HTTP/1.1\" 403 AccessDenied 243 5242880 12 - \
         \"https://console.aws.amazon.com/\" \"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64\" - 3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo \
         SigV4 TLS_AES_128_GCM_SHA256 AuthHeader amzn-s3-demo-bucket.s3.eu-west-1.amazonaws.com TLSv1.3 - -"
    );
    let record = parse_one::<S3Access>(KEY, &line);
    assert_eq!(record.str("remote_ip"), Some("2001:db8::8a2e:370:7334"));
    assert_eq!(
        record.str("requester"),
        Some("arn:aws:iam::123456789012:user/alice")
    );
    assert_eq!(
        record.str("key"),
        Some("photos/my%20cat.jpg"),
        "kept as logged"
    );
    assert_eq!(
        record.str("request_url"),
        Some("/photos/my%20cat.jpg?x-id=PutObject")
    );
    assert_eq!(record.int("http_status"), Some(403));
    assert_eq!(record.str("error_code"), Some("AccessDenied"));
    assert_eq!(record.int("object_size"), Some(5_242_880));
    assert_eq!(
        record.str("referer"),
        Some("https://console.aws.amazon.com/")
    );
    assert_eq!(
        record.str("user_agent"),
        Some("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64")
    );
    assert_eq!(record.str("tls_version"), Some("TLSv1.3"));
    assert!(!record.has("access_point_arn"));
    assert!(!record.has("acl_required"));
}

#[test]
fn dashes_everywhere_leave_only_the_time() {
    let line = "- - [06/Feb/2019:00:00:38 +0000] - - - - - \"-\" - - - - - - \"-\" \"-\" - - - - - - - - -";
    let record = parse_one::<S3Access>(KEY, line);
    assert_eq!(record.time, parse_iso8601("2019-02-06T00:00:38Z"));
    assert!(record.fields.is_empty(), "{:?}", record.fields);
}

#[test]
fn lines_from_before_the_newer_fields_leave_them_absent() {
    // Written before signature version and later fields existed.
    let line = format!(
        "{OWNER} mybucket [06/Feb/2014:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE WEBSITE.GET.OBJECT index.html \"GET /index.html HTTP/1.1\" 200 - 2571 2571 14 13 \"-\" \"Mozilla/5.0\" -"
    );
    let record = parse_one::<S3Access>(KEY, &line);
    assert_eq!(record.int("turn_around_time"), Some(13));
    assert_eq!(record.str("user_agent"), Some("Mozilla/5.0"));
    for newer in [
        "host_id",
        "signature_version",
        "tls_version",
        "acl_required",
    ] {
        assert!(!record.has(newer), "{newer}");
    }
}

#[test]
fn trailing_spaces_add_nothing_and_new_fields_become_counted_extras() {
    let input = format!("{DOCUMENTED}  \n{DOCUMENTED} new-field-1 -\n");
    let parsed = parse::<S3Access>(KEY, &[], &input).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.records.len(), 2);
    assert!(!parsed.records[0].has("extra_1"));
    assert_eq!(parsed.records[0].str("acl_required"), Some("Yes"));
    assert_eq!(parsed.records[1].str("extra_1"), Some("new-field-1"));
    assert!(!parsed.records[1].has("extra_2"), "a `-` extra is absent");
    assert_eq!(parsed.counters.rows_with_extra, 1);
}

#[test]
fn malformed_lines_are_errors_that_do_not_stop_the_next_ones() {
    let bad_time = DOCUMENTED.replace("06/Feb/2019", "06-02-2019");
    let bad_status = DOCUMENTED.replace("HTTP/1.1\" 200", "HTTP/1.1\" OK");
    let input = format!("{bad_time}\nshort line\n{bad_status}\n{DOCUMENTED}\n");
    let parsed = parse_batched::<S3Access>(KEY, &[], &input, 1).unwrap();
    assert_eq!(parsed.records.len(), 1);
    let reasons = parsed.error_reasons();
    assert_eq!(reasons.len(), 3);
    assert_eq!(reasons[0].0, 1);
    assert!(reasons[0].1.contains("06-02-2019"), "{}", reasons[0].1);
    assert_eq!(reasons[1], (2, "line ends before the [time] field"));
    assert_eq!(reasons[2], (3, "http_status `OK` is not an integer"));
}

#[test]
fn detection_patterns() {
    for matching in [
        "2019-02-06-00-00-38-E568B2907131C0C0",
        "logs/access-2023-11-01-21-32-16-E568B2907131C0C0",
        "logs/123456789012/eu-west-1/amzn-s3-demo-bucket/2023/11/01/2023-11-01-21-32-16-E568B2907131C0C0",
    ] {
        assert!(matches_key::<S3Access>(matching), "{matching}");
    }
    for other in [
        "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20240102T0000Z_0a1b2c3d.log.gz",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/01/02/123456789012_elasticloadbalancing_us-east-1_app.my-lb.1234_20240102T0000Z_10.0.0.1_abc.log.gz",
        "firehose/2024/01/02/03/stream-1-2024-01-02-03-04-05-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    ] {
        assert!(!matches_key::<S3Access>(other), "{other}");
    }
    assert!(matches_first_line::<S3Access>(DOCUMENTED));
    assert!(!matches_first_line::<S3Access>(
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326"
    ));
}
