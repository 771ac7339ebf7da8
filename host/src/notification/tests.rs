use serde_json::json;

use super::*;

/// An S3 event notification as AWS's documentation shows it.
const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2",
 "eventTime":"1970-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put",
 "userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},
 "requestParameters":{"sourceIPAddress":"127.0.0.1"},
 "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
 "s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
  "bucket":{"name":"mybucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::mybucket"},
  "object":{"key":"HappyFace.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;

/// The test event S3 sends when a notification is configured.
const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z","Bucket":"bucketname","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;

/// An EventBridge `Object Created` event as AWS's documentation shows it.
const EVENTBRIDGE_EVENT: &str = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
 "source":"aws.s3","account":"111122223333","time":"2021-11-12T00:00:00Z","region":"ca-central-1",
 "resources":["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
 "detail":{"version":"0","bucket":{"name":"DOC-EXAMPLE-BUCKET1"},
  "object":{"key":"example-key","size":5,"etag":"b1946ac92492d2347c6235b4d2611184","version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"617f08299329d189"},
  "request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","source-ip-address":"1.2.3.4","reason":"PutObject"}}"#;

/// CloudTrail's own notification of a delivered log file, with one key of
/// the list.
const CLOUDTRAIL_NOTIFICATION: &str = r#"{"s3Bucket":"your-bucket-name","s3ObjectKey":["AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz"]}"#;

/// SNS's notification envelope around `message`, which SNS
/// sends as a JSON string.
fn sns_wrapped(message: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "dc1e94d9-56c5-5e96-808d-cc7f68faa162",
        "TopicArn": "arn:aws:sns:us-east-2:111122223333:ExampleTopic1",
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": "2025-01-15T10:05:12.500Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE...",
        "SigningCertURL": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
    })
    .to_string()
}

fn s3_record(event_name: &str, key: &str) -> serde_json::Value {
    json!({
        "eventVersion": "2.2", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2025-01-15T10:05:12.123Z", "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "logs"},
               "object": {"key": key, "size": 7, "sequencer": "0A"}}
    })
}

fn s3_records(records: &[serde_json::Value]) -> String {
    json!({ "Records": records }).to_string()
}

fn objects(body: &str) -> (Envelope, Vec<ObjectRef>, Vec<String>) {
    match decode(body) {
        Ok(Notification::Objects {
            envelope,
            objects,
            ignored_events,
        }) => (envelope, objects, ignored_events),
        other => panic!("expected objects, got {other:?}"),
    }
}

fn keys(objects: &[ObjectRef]) -> Vec<&str> {
    objects.iter().map(|object| object.key.as_str()).collect()
}

fn reason(body: &str) -> String {
    decode(body)
        .expect_err("body should be unrecognized")
        .reason
}

const DIRECT_S3: Envelope = Envelope {
    source: Source::S3Event,
    via_sns: false,
};

#[test]
fn direct_s3_event() {
    let (envelope, objects, ignored) = objects(S3_EVENT);
    assert_eq!(envelope, DIRECT_S3);
    assert!(ignored.is_empty());
    assert_eq!(
        objects,
        vec![ObjectRef {
            bucket: "mybucket".into(),
            key: "HappyFace.jpg".into(),
            raw_key: "HappyFace.jpg".into(),
            size: Some(1024),
            version_id: Some("096fKKXTRTtl3on89fVO.nfljtsv6qko".into()),
            region: Some("us-west-2".into()),
            event_time: Some("1970-01-01T00:00:00.000Z".into()),
            event_name: Some("ObjectCreated:Put".into()),
            sequencer: Some("0055AED6DCD90281E5".into()),
        }]
    );
}

#[test]
fn sns_wrapped_s3_event_matches_the_direct_one() {
    let (envelope, wrapped, ignored) = objects(&sns_wrapped(S3_EVENT));
    assert_eq!(
        envelope,
        Envelope {
            source: Source::S3Event,
            via_sns: true
        }
    );
    assert_eq!(envelope.to_string(), "sns/s3");
    assert!(ignored.is_empty());
    assert_eq!(wrapped, objects(S3_EVENT).1);
}

#[test]
fn raw_sns_delivery_reads_as_a_direct_event() {
    // With raw message delivery the SQS body is exactly the published event.
    let (envelope, _, _) = objects(S3_EVENT);
    assert_eq!(envelope.to_string(), "s3");
}

#[test]
fn test_event_direct_and_through_sns() {
    assert_eq!(
        decode(TEST_EVENT),
        Ok(Notification::TestEvent {
            bucket: Some("bucketname".into()),
            via_sns: false
        })
    );
    assert_eq!(
        decode(&sns_wrapped(TEST_EVENT)),
        Ok(Notification::TestEvent {
            bucket: Some("bucketname".into()),
            via_sns: true
        })
    );
}

#[test]
fn eventbridge_object_created() {
    let (envelope, objects, ignored) = objects(EVENTBRIDGE_EVENT);
    assert_eq!(
        envelope,
        Envelope {
            source: Source::EventBridge,
            via_sns: false
        }
    );
    assert!(ignored.is_empty());
    assert_eq!(
        objects,
        vec![ObjectRef {
            bucket: "DOC-EXAMPLE-BUCKET1".into(),
            key: "example-key".into(),
            raw_key: "example-key".into(),
            size: Some(5),
            version_id: Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e".into()),
            region: Some("ca-central-1".into()),
            event_time: Some("2021-11-12T00:00:00Z".into()),
            event_name: Some("PutObject".into()),
            sequencer: Some("617f08299329d189".into()),
        }]
    );
}

#[test]
fn eventbridge_keys_are_form_decoded() {
    let body = EVENTBRIDGE_EVENT.replace(
        r#""key":"example-key""#,
        r#""key":"alb+logs/a%3Db%2Bc.log.gz""#,
    );
    let (_, objects, _) = objects(&body);
    assert_eq!(keys(&objects), ["alb logs/a=b+c.log.gz"]);
    assert_eq!(objects[0].raw_key, "alb+logs/a%3Db%2Bc.log.gz");
}

#[test]
fn eventbridge_other_detail_types_are_ignored() {
    let body = EVENTBRIDGE_EVENT.replace("Object Created", "Object Deleted");
    let (envelope, objects, ignored) = objects(&body);
    assert_eq!(envelope.source, Source::EventBridge);
    assert!(objects.is_empty());
    assert_eq!(ignored, ["Object Deleted"]);
}

#[test]
fn cloudtrail_notification_direct_and_through_sns() {
    let expected_key = "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz";
    for (body, via_sns) in [
        (CLOUDTRAIL_NOTIFICATION.to_owned(), false),
        (sns_wrapped(CLOUDTRAIL_NOTIFICATION), true),
    ] {
        let (envelope, objects, ignored) = objects(&body);
        assert_eq!(
            envelope,
            Envelope {
                source: Source::CloudTrail,
                via_sns
            }
        );
        assert!(ignored.is_empty());
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].bucket, "your-bucket-name");
        assert_eq!(objects[0].key, expected_key);
        assert_eq!(objects[0].size, None);
    }
}

#[test]
fn cloudtrail_keys_are_not_decoded() {
    let body = r#"{"s3Bucket":"b","s3ObjectKey":["a+b/c%2B.json.gz","second.json.gz"]}"#;
    let (_, objects, _) = objects(body);
    assert_eq!(keys(&objects), ["a+b/c%2B.json.gz", "second.json.gz"]);
    assert_eq!(objects[0].raw_key, objects[0].key);
}

#[test]
fn several_records_in_one_message() {
    let body = s3_records(&[
        s3_record("ObjectCreated:Put", "a.log.gz"),
        s3_record("ObjectCreated:CompleteMultipartUpload", "b.log.gz"),
        s3_record("ObjectCreated:Copy", "c.log.gz"),
    ]);
    let (_, objects, ignored) = objects(&body);
    assert_eq!(keys(&objects), ["a.log.gz", "b.log.gz", "c.log.gz"]);
    assert_eq!(
        objects[1].event_name.as_deref(),
        Some("ObjectCreated:CompleteMultipartUpload")
    );
    assert!(ignored.is_empty());
}

#[test]
fn events_other_than_object_created_are_ignored_by_name() {
    let mut removed = s3_record("ObjectRemoved:Delete", "gone.log");
    // Delete events carry no size.
    removed["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("size");
    let body = s3_records(&[
        removed,
        s3_record("ObjectCreated:Post", "new.log"),
        s3_record("ObjectRestore:Completed", "thawed.log"),
    ]);
    let (_, objects, ignored) = objects(&body);
    assert_eq!(keys(&objects), ["new.log"]);
    assert_eq!(ignored, ["ObjectRemoved:Delete", "ObjectRestore:Completed"]);
}

#[test]
fn s3_keys_are_form_decoded() {
    let cases = [
        ("red+flower.jpg", "red flower.jpg"),
        ("a%2Bb.log", "a+b.log"),
        ("dt%3D2025-01-15/part=1.gz", "dt=2025-01-15/part=1.gz"),
        ("a+%2B+b", "a + b"),
        ("caf%C3%A9/%E2%82%AC.log", "café/€.log"),
        (
            "prefix/AWSLogs/123/elasticloadbalancing/x.log.gz",
            "prefix/AWSLogs/123/elasticloadbalancing/x.log.gz",
        ),
    ];
    for (raw, decoded) in cases {
        let (_, objects, _) = objects(&s3_records(&[s3_record("ObjectCreated:Put", raw)]));
        assert_eq!(objects[0].key, decoded, "raw key {raw}");
        assert_eq!(objects[0].raw_key, raw);
    }
}

#[test]
fn bad_key_encoding_is_unrecognized_with_the_record_named() {
    let body = s3_records(&[
        s3_record("ObjectCreated:Put", "ok"),
        s3_record("ObjectCreated:Put", "bad%zz"),
    ]);
    assert_eq!(
        reason(&body),
        "Records[1]: s3.object.key: bad %-escape at byte 3"
    );
    let body = s3_records(&[s3_record("ObjectCreated:Put", "latin1-%E9.log")]);
    assert_eq!(
        reason(&body),
        "Records[0]: s3.object.key: not UTF-8 after %-decoding"
    );
    let body = EVENTBRIDGE_EVENT.replace("example-key", "x%FF");
    assert_eq!(
        reason(&body),
        "EventBridge detail.object.key: not UTF-8 after %-decoding"
    );
}

#[test]
fn non_json_body() {
    let reason = reason("hello secret-token-123");
    assert!(reason.starts_with("not JSON: "), "{reason}");
    assert!(!reason.contains("secret-token"), "{reason}");
}

#[test]
fn json_of_unknown_shape() {
    let body = r#"{"foo":"bar","password":"hunter2"}"#;
    assert_eq!(
        reason(body),
        "JSON without Records, Message, Event, detail-type or s3ObjectKey"
    );
    assert_eq!(reason("[1,2]"), "JSON array, not an object");
    assert_eq!(
        reason(r#"{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification"}"#),
        "JSON without Records, Message, Event, detail-type or s3ObjectKey"
    );
}

#[test]
fn sns_wrapping_an_unknown_body() {
    assert_eq!(
        reason(&sns_wrapped(r#"{"alarm":"HighCPU"}"#)),
        "SNS Message: JSON without Records, Message, Event, detail-type or s3ObjectKey"
    );
}

#[test]
fn sns_message_that_is_not_json() {
    let reason = reason(&sns_wrapped("Hello from a human"));
    assert!(reason.starts_with("SNS Message is not JSON: "), "{reason}");
    assert!(!reason.contains("Hello"), "{reason}");
}

#[test]
fn sns_envelopes_are_unwrapped_only_once() {
    assert_eq!(
        reason(&sns_wrapped(&sns_wrapped(S3_EVENT))),
        "SNS envelope inside an SNS envelope"
    );
}

#[test]
fn sns_subscription_confirmation_is_named() {
    let body = json!({"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe", "Token": "t"});
    assert_eq!(
        reason(&body.to_string()),
        "SNS SubscriptionConfirmation message, not a Notification"
    );
}

#[test]
fn records_from_other_services_are_unrecognized() {
    let mut record = s3_record("ObjectCreated:Put", "k");
    record["eventSource"] = json!("aws:sqs");
    assert_eq!(
        reason(&s3_records(&[record])),
        r#"Records[0]: eventSource "aws:sqs", not "aws:s3""#
    );
    assert_eq!(reason(r#"{"Records":[]}"#), "Records is empty");
}

#[test]
fn only_the_major_event_version_is_checked() {
    let mut record = s3_record("ObjectCreated:Put", "k");
    record["eventVersion"] = json!("2.9");
    assert_eq!(objects(&s3_records(&[record.clone()])).1.len(), 1);
    record["eventVersion"] = json!("3.0");
    assert_eq!(
        reason(&s3_records(&[record])),
        r#"Records[0]: unsupported eventVersion "3.0""#
    );
}

#[test]
fn malformed_created_record_names_the_missing_field() {
    let mut record = s3_record("ObjectCreated:Put", "k");
    record["s3"].as_object_mut().unwrap().remove("bucket");
    let reason = reason(&s3_records(&[record]));
    assert!(
        reason.starts_with("Records[0]: missing field `bucket`"),
        "{reason}"
    );
}
