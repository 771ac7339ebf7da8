//! VPC flow log objects, default and custom formats, through the real row
//! encoding.

use s3logd_parser_sdk::FieldType;
use s3logd_parser_sdk::testing::{Parsed, matches_first_line, matches_key, parse, parse_batched};
use s3logd_parser_vpc_flow::VpcFlow;

const KEY: &str = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2014/12/14/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20141214T0420Z_fe123456.log.gz";
const DEFAULT_HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";
const NANOS: i64 = 1_000_000_000;

fn parse_ok(input: &str) -> Parsed {
    let parsed = parse::<VpcFlow>(KEY, &[], input).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed
}

#[test]
fn default_format_documented_records() {
    let input = format!(
        "{DEFAULT_HEADER}\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK\n"
    );
    let parsed = parse_ok(&input);
    assert_eq!(parsed.counters.skipped, 1, "the header");
    let accept = &parsed.records[0];
    assert_eq!(accept.time, Some(1_418_530_010 * NANOS));
    assert_eq!(accept.int("version"), Some(2));
    assert_eq!(accept.str("account_id"), Some("123456789010"));
    assert_eq!(accept.str("interface_id"), Some("eni-1235b8ca123456789"));
    assert_eq!(accept.str("srcaddr"), Some("172.31.16.139"));
    assert_eq!(accept.str("dstaddr"), Some("172.31.16.21"));
    assert_eq!(accept.int("srcport"), Some(20641));
    assert_eq!(accept.int("dstport"), Some(22));
    assert_eq!(accept.int("protocol"), Some(6));
    assert_eq!(accept.int("packets"), Some(20));
    assert_eq!(accept.int("bytes"), Some(4249));
    assert_eq!(accept.timestamp("start"), Some(1_418_530_010 * NANOS));
    assert_eq!(accept.timestamp("end"), Some(1_418_530_070 * NANOS));
    assert_eq!(accept.str("action"), Some("ACCEPT"));
    assert_eq!(accept.str("log_status"), Some("OK"));
    assert_eq!(parsed.records[1].str("action"), Some("REJECT"));
    assert_eq!(parsed.records[1].int("dstport"), Some(3389));

    let types: Vec<(&str, FieldType)> = parsed
        .fields
        .iter()
        .map(|(name, ty)| (name.as_str(), *ty))
        .collect();
    assert_eq!(types[1], ("account_id", FieldType::String));
    assert_eq!(types[10], ("start", FieldType::Timestamp));
    assert_eq!(types[13], ("log_status", FieldType::String));
}

#[test]
fn nodata_skipdata_and_ipv6_records() {
    let input = format!(
        "{DEFAULT_HEADER}\n\
         2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n\
         2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA\n\
         2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK\n"
    );
    let parsed = parse_ok(&input);
    let nodata = &parsed.records[0];
    assert_eq!(nodata.str("log_status"), Some("NODATA"));
    assert_eq!(nodata.time, Some(1_431_280_876 * NANOS));
    for absent in [
        "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action",
    ] {
        assert!(!nodata.has(absent), "{absent}");
    }
    assert_eq!(parsed.records[1].str("log_status"), Some("SKIPDATA"));
    let v6 = &parsed.records[2];
    assert_eq!(
        v6.str("srcaddr"),
        Some("2001:db8:1234:a100:8d6e:3477:df66:f105")
    );
    assert_eq!(
        v6.str("dstaddr"),
        Some("2001:db8:1234:a102:3304:8879:34cf:4071")
    );
    assert_eq!(v6.int("bytes"), Some(8855));
}

const V3_HEADER: &str = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status";
const V3_RECORD: &str = "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789012 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK";

#[test]
fn custom_version_3_format_with_tcp_flags() {
    let parsed = parse_ok(&format!("{V3_HEADER}\n{V3_RECORD}\n"));
    let record = &parsed.records[0];
    assert_eq!(record.int("version"), Some(3));
    assert_eq!(record.str("vpc_id"), Some("vpc-abcdefab012345678"));
    assert_eq!(record.str("subnet_id"), Some("subnet-aaaaaaaa012345678"));
    assert_eq!(record.str("instance_id"), Some("i-01234567890123456"));
    assert_eq!(record.str("account_id"), Some("123456789012"));
    assert_eq!(record.str("type"), Some("IPv4"));
    assert_eq!(record.str("pkt_srcaddr"), Some("52.213.180.42"));
    assert_eq!(record.str("pkt_dstaddr"), Some("10.0.0.62"));
    assert_eq!(record.int("bytes"), Some(568));
    assert_eq!(record.int("packets"), Some(8));
    assert_eq!(record.int("tcp_flags"), Some(2));
    assert_eq!(record.str("log_status"), Some("OK"));
    assert_eq!(record.time, Some(1_566_848_875 * NANOS));
}

/// AWS's own example of a short connection (TCP flags 19: SYN-ACK and
/// FIN), written with two spaces after the destination port.
const V3_RECORD_WITH_A_DOUBLE_SPACE: &str = "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43638  10.0.0.62 52.213.180.42 6 967 14 1566933133 1566933193 ACCEPT 19 OK";

#[test]
fn runs_of_spaces_separate_one_value_from_the_next() {
    let parsed = parse_ok(&format!("{V3_HEADER}\n{V3_RECORD_WITH_A_DOUBLE_SPACE}\n"));
    let record = &parsed.records[0];
    assert_eq!(record.int("srcport"), Some(5001));
    assert_eq!(record.int("dstport"), Some(43638));
    assert_eq!(record.str("pkt_srcaddr"), Some("10.0.0.62"));
    assert_eq!(record.str("pkt_dstaddr"), Some("52.213.180.42"));
    assert_eq!(record.int("protocol"), Some(6));
    assert_eq!(record.int("tcp_flags"), Some(19));
    assert_eq!(record.str("log_status"), Some("OK"));
    assert_eq!(parsed.counters.rows_with_extra, 0);
}

#[test]
fn a_header_with_runs_of_spaces_names_the_same_columns() {
    let padded = V3_HEADER.replace(" srcport ", "  srcport   ");
    assert!(matches_first_line::<VpcFlow>(&padded));
    let parsed = parse_ok(&format!("{padded}\n{V3_RECORD}\n"));
    let single = parse_ok(&format!("{V3_HEADER}\n{V3_RECORD}\n"));
    assert_eq!(parsed.field_names(), single.field_names());
    assert_eq!(parsed.records[0].fields, single.records[0].fields);
    assert_eq!(parsed.records[0].int("srcport"), Some(43416));
}

#[test]
fn the_same_record_in_another_column_order_parses_the_same() {
    let names: Vec<&str> = V3_HEADER.split(' ').collect();
    let values: Vec<&str> = V3_RECORD.split(' ').collect();
    // Reverse the columns, and rotate them, header and values alike.
    let reversed = |items: &[&str]| items.iter().rev().copied().collect::<Vec<_>>().join(" ");
    let rotated = |items: &[&str]| [&items[7..], &items[..7]].concat().join(" ");
    let original = parse_ok(&format!("{V3_HEADER}\n{V3_RECORD}\n"));
    for input in [
        format!("{}\n{}\n", reversed(&names), reversed(&values)),
        format!("{}\n{}\n", rotated(&names), rotated(&values)),
    ] {
        let reordered = parse_ok(&input);
        assert_eq!(
            reordered.records[0].fields, original.records[0].fields,
            "{input}"
        );
        assert_eq!(reordered.records[0].time, original.records[0].time);
    }
}

#[test]
fn versions_4_5_and_8_fields_and_unknown_names() {
    let input = "region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path reject-reason ecs-cluster-name some-future-field\n\
                 us-east-1 use1-az1 outpost op-0123456789abcdef0 S3 - egress 8 BPA - 42\n";
    let parsed = parse_ok(input);
    let record = &parsed.records[0];
    assert_eq!(record.str("region"), Some("us-east-1"));
    assert_eq!(record.str("az_id"), Some("use1-az1"));
    assert_eq!(record.str("sublocation_type"), Some("outpost"));
    assert_eq!(record.str("sublocation_id"), Some("op-0123456789abcdef0"));
    assert_eq!(record.str("pkt_src_aws_service"), Some("S3"));
    assert!(!record.has("pkt_dst_aws_service"));
    assert_eq!(record.str("flow_direction"), Some("egress"));
    assert_eq!(record.int("traffic_path"), Some(8));
    assert_eq!(record.str("reject_reason"), Some("BPA"));
    assert_eq!(
        record.str("some_future_field"),
        Some("42"),
        "unknown names are text"
    );
    assert_eq!(record.time, None, "no start column");
}

#[test]
fn header_and_records_in_separate_batches() {
    let input = format!(
        "{DEFAULT_HEADER}\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n"
    );
    let parsed = parse_batched::<VpcFlow>(KEY, &[], &input, 1).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[1].str("log_status"), Some("NODATA"));
    assert_eq!(parsed.records[0].int("srcport"), Some(20641));
}

#[test]
fn a_second_header_remaps_columns_without_declaring_fields_twice() {
    let input = format!(
        "{DEFAULT_HEADER}\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
         log-status srcport version\n\
         NODATA 443 2\n"
    );
    let parsed = parse_ok(&input);
    assert_eq!(parsed.fields.len(), 14);
    assert_eq!(parsed.records[1].str("log_status"), Some("NODATA"));
    assert_eq!(parsed.records[1].int("srcport"), Some(443));
    assert_eq!(parsed.records[1].int("version"), Some(2));
}

#[test]
fn bad_lines_are_errors_and_do_not_stop_the_next_ones() {
    let input = format!(
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n\
         {DEFAULT_HEADER}\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 many 4249 1418530010 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 soon 1418530070 ACCEPT OK\n\
         2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK extra-value\n\
         2 123456789010 eni-1235b8ca123456789\n"
    );
    let parsed = parse_batched::<VpcFlow>(KEY, &[], &input, 2).unwrap();
    assert_eq!(
        parsed.errors,
        [
            (
                1,
                "record before the header line naming the fields".to_string()
            ),
            (3, "packets `many` is not an integer".to_string()),
            (4, "start `soon` is not an integer".to_string()),
        ]
    );
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[0].str("extra_1"), Some("extra-value"));
    assert_eq!(parsed.counters.rows_with_extra, 1);
    let short = &parsed.records[1];
    assert_eq!(short.str("interface_id"), Some("eni-1235b8ca123456789"));
    assert!(!short.has("srcaddr") && !short.has("log_status"));
}

#[test]
fn key_pattern_takes_both_key_layouts_and_leaves_other_logs() {
    assert!(matches_key::<VpcFlow>(KEY));
    assert!(matches_key::<VpcFlow>(
        "prefix/AWSLogs/aws-account-id=123456789010/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=01/day=02/hour=03/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20240102T0305Z_0a1b2c3d.log.gz"
    ));
    assert!(!matches_key::<VpcFlow>(
        "AWSLogs/123456789010/vpcflowlogs/us-east-1/2024/01/02/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20240102T0305Z_0a1b2c3d.log.parquet"
    ));
    assert!(!matches_key::<VpcFlow>(
        "AWSLogs/123456789010/elasticloadbalancing/us-east-1/2024/01/02/123456789010_elasticloadbalancing_us-east-1_app.my-lb.1234_20240102T0000Z_10.0.0.1_abc.log.gz"
    ));
    assert!(matches_first_line::<VpcFlow>(DEFAULT_HEADER));
    assert!(matches_first_line::<VpcFlow>(V3_HEADER));
    assert!(!matches_first_line::<VpcFlow>(V3_RECORD));
}
