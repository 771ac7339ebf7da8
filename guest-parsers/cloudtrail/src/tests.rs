use std::time::Instant;

use s3logd_parser_sdk::testing::{Owned, parse, read_sample};

use super::*;

const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-2/2014/03/24/123456789012_CloudTrail_us-east-2_20140324T2115Z_cVBx2V5EXAMPLE5F.json.gz";

fn sample(name: &str) -> String {
    read_sample(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), name)
}

/// The elements of a `{"Records":[…]}` document, as serde_json sees them.
fn elements(document: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(document).unwrap();
    value["Records"].as_array().unwrap().clone()
}

#[test]
fn each_record_is_a_row_with_its_own_json_as_message() {
    let document = sample("three-events.json.gz");
    let parsed = parse::<CloudTrail>(KEY, &[], &document).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let expected = elements(&document);
    assert_eq!(parsed.records.len(), expected.len());
    for (record, element) in parsed.records.iter().zip(&expected) {
        let msg = record.msg.as_deref().unwrap();
        assert!(document.contains(msg), "_msg is a slice of the document");
        assert_eq!(
            &serde_json::from_str::<serde_json::Value>(msg).unwrap(),
            element
        );
        assert_eq!(record.str("eventName"), element["eventName"].as_str());
        assert!(!record.has("eventTime"));
    }
    let start = &parsed.records[0];
    assert_eq!(start.time, parse_iso8601("2014-03-06T21:22:54Z"));
    assert_eq!(start.time, Some(1_394_140_974_000_000_000));
    assert_eq!(start.str("userIdentity.userName"), Some("Alice"));
    assert_eq!(start.str("userIdentity.accountId"), Some("123456789012"));
    assert_eq!(start.str("recipientAccountId"), Some("123456789012"));
    assert_eq!(start.fields.get("readOnly"), Some(&Owned::Bool(false)));
    assert_eq!(start.str("tlsDetails.tlsVersion"), Some("TLSv1.2"));
    assert_eq!(
        start.str("requestParameters"),
        Some(r#"{"instancesSet":{"items":[{"instanceId":"i-ebeaf9e2"}]}}"#)
    );
    assert!(!start.has("requestParameters.instancesSet.items"));

    let login = &parsed.records[2];
    assert_eq!(login.str("sourceIPAddress"), Some("2001:db8::1"));
    assert!(!login.has("requestParameters"), "null is absent");
    assert_eq!(
        login.str("responseElements"),
        Some(r#"{"ConsoleLogin":"Success"}"#)
    );
    assert!(
        login
            .str("additionalEventData")
            .unwrap()
            .contains(r#""MFAUsed":"Yes""#)
    );
}

#[test]
fn a_bad_record_is_an_error_of_its_own() {
    let parsed = parse::<CloudTrail>(KEY, &[], &sample("one-bad-event.json.gz")).unwrap();
    let names: Vec<&str> = parsed
        .records
        .iter()
        .map(|r| r.str("eventName").unwrap())
        .collect();
    assert_eq!(names, ["StartInstances", "ConsoleLogin"]);
    let reasons: Vec<&str> = parsed.errors.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons[0].starts_with("Records[1]: invalid type: integer `42`, expected a JSON object"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        r#"Records[2]: eventTime "24/Mar/2014" is not an ISO 8601 time"#
    );
    assert_eq!(parsed.counters.skipped, 0);
}

#[test]
fn a_truncated_document_keeps_the_records_before_the_break() {
    let document = sample("three-events.json.gz");
    let cut = document.find(r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"EX_PRINCIPAL_ID","arn":"arn:aws:iam::123456789012:user/Carol""#).unwrap() + 40;
    let parsed = parse::<CloudTrail>(KEY, &[], &document[..cut]).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
    assert!(
        parsed.errors[0]
            .1
            .starts_with("not a CloudTrail log file: EOF while parsing"),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn other_documents_are_errors() {
    let parsed = parse::<CloudTrail>(
        KEY,
        &[],
        "{\"records\":[]}\n[1]\n{\"Records\":[]} {}\n{\"Records\":[]}\n",
    )
    .unwrap();
    let reasons: Vec<&str> = parsed.errors.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        reasons[0].starts_with("not a CloudTrail log file: no Records array"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains(r#"expected an object {"Records":[…]}"#),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("trailing characters"), "{reasons:?}");
    assert_eq!(reasons.len(), 3);
    assert_eq!(
        parsed.counters.skipped, 1,
        "an empty Records array yields nothing"
    );
}

#[test]
fn digest_files_are_skipped_whole() {
    let key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-2/2014/03/24/123456789012_CloudTrail-Digest_us-east-2_trail_us-east-2_20140324T211559Z.json.gz";
    let digest = r#"{"awsAccountId":"123456789012","digestStartTime":"2014-03-24T20:15:59Z","digestEndTime":"2014-03-24T21:15:59Z","logFiles":[]}"#;
    let parsed = parse::<CloudTrail>(key, &[], digest).unwrap();
    assert!(parsed.records.is_empty() && parsed.errors.is_empty());
    assert_eq!(parsed.counters.skipped, 1);
}

#[test]
fn a_multi_megabyte_single_line_document_streams_record_by_record() {
    const COUNT: usize = 6000;
    let records: Vec<String> = (0..COUNT)
        .map(|i| {
            let padding = "x".repeat(600 + i % 200);
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{i}","accountId":"123456789012"}},"eventTime":"2024-05-01T{:02}:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","sourceIPAddress":"10.0.{}.{}","requestParameters":{{"bucketName":"b","key":"k/{i}/{padding}"}},"eventID":"{i:08}"}}"#,
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i / 256 % 256,
                i % 256
            )
        })
        .collect();
    let document = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    assert!(document.len() > 4_000_000, "{} bytes", document.len());
    let started = Instant::now();
    let parsed = parse::<CloudTrail>(KEY, &[], &document).unwrap();
    eprintln!(
        "{} bytes, {COUNT} records in {:?}",
        document.len(),
        started.elapsed()
    );
    assert!(parsed.errors.is_empty());
    assert_eq!(parsed.records.len(), COUNT);
    assert_eq!(parsed.counters.lines, 1);
    let nth = &parsed.records[4321];
    assert_eq!(nth.msg.as_deref(), Some(records[4321].as_str()));
    assert_eq!(nth.str("eventID"), Some("00004321"));
    assert_eq!(nth.time, parse_iso8601("2024-05-01T01:12:01Z"));
    assert_eq!(parsed.fields.len(), 10, "{:?}", parsed.fields);
}

/// `document` laid out as AWS's documentation shows CloudTrail files: one
/// token per line where JSON allows a break, indented, keys in their order.
fn pretty_printed(document: &str) -> String {
    let mut pretty = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |pretty: &mut String, depth: usize| {
        pretty.push('\n');
        pretty.push_str(&"  ".repeat(depth));
    };
    for c in document.chars() {
        if in_string {
            pretty.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                pretty.push(c);
            }
            '{' | '[' => {
                depth += 1;
                pretty.push(c);
                newline(&mut pretty, depth);
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut pretty, depth);
                pretty.push(c);
            }
            ',' => {
                pretty.push(c);
                newline(&mut pretty, depth);
            }
            ':' => pretty.push_str(": "),
            _ => pretty.push(c),
        }
    }
    pretty.push('\n');
    pretty
}

#[test]
fn a_pretty_printed_file_gives_the_records_of_its_one_line_form() {
    let document = sample("three-events.json.gz");
    let one_line = parse::<CloudTrail>(KEY, &[], &document).unwrap();
    let pretty = pretty_printed(document.trim_end());
    assert!(pretty.lines().count() > 100, "{pretty}");
    for lines_per_batch in [1, 7, usize::MAX] {
        let parsed = s3logd_parser_sdk::testing::parse_batched::<CloudTrail>(
            KEY,
            &[],
            &pretty,
            lines_per_batch,
        )
        .unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.records, one_line.records);
        assert_eq!(parsed.counters.lines as usize, pretty.lines().count());
        assert_eq!(parsed.counters.skipped, 0);
    }
    // Found without the key's help, too.
    assert!(
        s3logd_parser_sdk::testing::matches_first_line::<CloudTrail>(
            &pretty[..4096.min(pretty.len())]
        )
    );
}

#[test]
fn a_pretty_printed_file_cut_short_keeps_its_complete_records() {
    let pretty = pretty_printed(sample("three-events.json.gz").trim_end());
    let cut = pretty.find("arn:aws:iam::123456789012:user/Carol").unwrap();
    let parsed = parse::<CloudTrail>(KEY, &[], &pretty[..cut]).unwrap();
    assert_eq!(parsed.records.len(), 2);
    // Reported on the document's first line (line numbers are 1-based).
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert_eq!(parsed.errors[0].0, 1);
    assert!(
        parsed.errors[0]
            .1
            .starts_with("not a CloudTrail log file: EOF while parsing"),
        "{:?}",
        parsed.errors
    );
}
