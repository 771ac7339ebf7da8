//! The moto harness delivers real S3 event notifications, directly and
//! through SNS, and reports queue counts the way tests rely on.

use std::time::Duration;

use s3logd_test_support::moto::{MotoServer, Queue, QueueCounts, SnsDelivery};
use serde_json::Value;

/// A key with characters S3 must encode in events: a space, `:` and `=`.
const KEY: &str = "alb logs/AWSLogs/123/elb:x=1.log.gz";

fn form_decode(encoded: &str) -> String {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .expect("decoded key is UTF-8")
        .into_owned()
}

/// Receives the one message an action left in `queue` and returns its parsed body.
async fn receive_only_body(moto: &MotoServer, queue: &Queue) -> Value {
    let messages = moto.receive_messages(queue, 10).await;
    assert_eq!(
        messages.len(),
        1,
        "expected exactly one message, got {messages:?}"
    );
    let body = messages[0].body().expect("message has a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body}"))
}

fn assert_object_created_event(event: &Value, bucket: &str) {
    let record = &event["Records"][0];
    assert_eq!(record["eventSource"], "aws:s3", "{event}");
    assert!(
        record["eventName"]
            .as_str()
            .is_some_and(|name| name.starts_with("ObjectCreated:")),
        "{event}"
    );
    assert_eq!(record["s3"]["bucket"]["name"], bucket, "{event}");
    let key = record["s3"]["object"]["key"]
        .as_str()
        .expect("event has a key");
    assert_ne!(key, KEY, "the key in an event is URL-encoded");
    assert_eq!(form_decode(key), KEY);
}

async fn drain_test_event(moto: &MotoServer, queue: &Queue) {
    let test_event = receive_only_body(moto, queue).await;
    assert_eq!(test_event["Event"], "s3:TestEvent", "{test_event}");
}

#[tokio::test]
async fn object_created_reaches_queue_as_s3_event() {
    let moto = MotoServer::start();
    moto.create_bucket("logs").await;
    let queue = moto.create_queue("events", Duration::from_secs(30)).await;
    moto.notify_queue_on_object_created("logs", &queue).await;
    drain_test_event(&moto, &queue).await;

    moto.put_object("logs", KEY, "line 1\n").await;

    assert_object_created_event(&receive_only_body(&moto, &queue).await, "logs");
}

#[tokio::test]
async fn sns_wraps_event_unless_raw_delivery() {
    let moto = MotoServer::start();
    moto.create_bucket("logs").await;
    let wrapped = moto.create_queue("wrapped", Duration::from_secs(30)).await;
    let raw = moto.create_queue("raw", Duration::from_secs(30)).await;
    let topic = moto
        .create_topic_for_queue("s3-events", &wrapped, SnsDelivery::Wrapped)
        .await;
    let raw_topic = moto
        .create_topic_for_queue("s3-events-raw", &raw, SnsDelivery::Raw)
        .await;
    moto.create_bucket("raw-logs").await;
    moto.notify_topic_on_object_created("logs", &topic).await;
    moto.notify_topic_on_object_created("raw-logs", &raw_topic)
        .await;
    drain_test_event(&moto, &raw).await;
    let wrapped_test_event = receive_only_body(&moto, &wrapped).await;
    assert_eq!(wrapped_test_event["Type"], "Notification");

    moto.put_object("logs", KEY, "line 1\n").await;
    moto.put_object("raw-logs", KEY, "line 1\n").await;

    let envelope = receive_only_body(&moto, &wrapped).await;
    assert_eq!(envelope["Type"], "Notification", "{envelope}");
    assert_eq!(envelope["TopicArn"], topic.as_str(), "{envelope}");
    let message = envelope["Message"]
        .as_str()
        .expect("SNS Message is a JSON string");
    let event: Value = serde_json::from_str(message).expect("SNS Message holds the S3 event");
    assert_object_created_event(&event, "logs");

    assert_object_created_event(&receive_only_body(&moto, &raw).await, "raw-logs");
}

#[tokio::test]
async fn counts_follow_receive_delete_and_visibility_timeout() {
    let moto = MotoServer::start();
    let queue = moto.create_queue("counted", Duration::from_secs(1)).await;
    for body in ["first", "second"] {
        let sent = moto
            .sqs()
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .send()
            .await;
        sent.expect("send message");
    }
    let counts = |visible, not_visible| QueueCounts {
        visible,
        not_visible,
    };
    assert_eq!(moto.queue_counts(&queue).await, counts(2, 0));

    let received = moto.receive_messages(&queue, 10).await;
    assert_eq!(received.len(), 2);
    assert_eq!(moto.queue_counts(&queue).await, counts(0, 2));

    let handle = received[0]
        .receipt_handle()
        .expect("received message has a receipt handle");
    let deleted = moto
        .sqs()
        .delete_message()
        .queue_url(&queue.url)
        .receipt_handle(handle)
        .send()
        .await;
    deleted.expect("delete message");
    assert_eq!(moto.queue_counts(&queue).await, counts(0, 1));

    moto.wait_for_queue_counts(&queue, counts(1, 0), Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn sdk_config_reaches_this_server() {
    let moto = MotoServer::start();
    moto.create_bucket("listed").await;
    let s3 = aws_sdk_s3::Client::from_conf(moto.s3_config().build());
    let listed = s3.list_buckets().send().await.expect("list buckets");
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["listed"]);
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
}
