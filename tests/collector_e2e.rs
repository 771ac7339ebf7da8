//! Black-box tests of `s3logd run` against a real moto_server (S3, SQS, SNS)
//! and a VictoriaLogs receiver: every record arrives, and a message is
//! deleted only once the store has all of its records, whatever fails.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    ACCOUNT, BUCKET, Harness, LOG_REGION, LogObject, Notify, WAIT, alb_key, assert_stored_once,
    copies_of_lines, gzip, receive_count, settled_rows, wait_for_lines,
};
use s3logd_parser_sdk::time::parse_iso8601;
use s3logd_test_support::moto::{QueueCounts, SnsDelivery};
use s3logd_test_support::victorialogs::TimeSource;

const QUEUE_VISIBILITY: Duration = Duration::from_secs(30);
const ONE_HELD: QueueCounts = QueueCounts {
    visible: 0,
    not_visible: 1,
};

/// Polls `condition` every 50 ms until it holds; panics after [`WAIT`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn records_arrive_with_time_msg_stream_and_fields_then_the_message_is_deleted() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let first = harness.upload_alb(&alb_key(1), 1, 300).await;
    let second = harness.upload_alb(&alb_key(2), 2, 200).await;
    let collector = harness.run(&harness.settings()).await;

    wait_for_lines(&harness.receiver, &[&first, &second]).await;
    harness.wait_for_empty_queue().await;
    let rows = harness.receiver.rows();
    assert_stored_once(&rows, &[&first, &second]);

    let key_of_line: HashMap<&str, &str> = [&first, &second]
        .iter()
        .flat_map(|o| o.lines.iter().map(|line| (line.as_str(), o.key.as_str())))
        .collect();
    // The default stream fields, from the key and the parser's name.
    let stream = format!(
        r#"{{account="{ACCOUNT}",load_balancer="app/web-prod/50dc6c495c0c9188",log_type="alb",region="{LOG_REGION}"}}"#
    );
    for row in &rows {
        // ALB: type time elb client:port target:port 3×timing elb_status_code ...
        let tokens: Vec<&str> = row.msg.split(' ').collect();
        assert_eq!(row.time_source, TimeSource::Rfc3339, "{row:?}");
        assert_eq!(Some(row.time), parse_iso8601(tokens[1]), "{row:?}");
        assert_eq!(row.stream, stream, "{row:?}");
        let field = |name: &str| row.fields.get(name).map(String::as_str);
        assert_eq!(field("type"), Some(tokens[0]), "{row:?}");
        assert_eq!(field("elb"), Some(tokens[2]), "{row:?}");
        let client = format!(
            "{}:{}",
            field("client_ip").unwrap(),
            field("client_port").unwrap()
        );
        assert_eq!(client, tokens[3], "{row:?}");
        assert_eq!(field("elb_status_code"), Some(tokens[8]), "{row:?}");
        assert_eq!(field("load_balancer"), field("elb"), "{row:?}");
        // The groups of enrich.key_regex.
        let date = (field("year"), field("month"), field("day"));
        assert_eq!(date, (Some("2024"), Some("03"), Some("01")), "{row:?}");
        assert_eq!(field("bucket"), Some(BUCKET), "{row:?}");
        assert_eq!(field("key"), Some(key_of_line[row.msg.as_str()]), "{row:?}");
    }

    let metrics = collector.metrics().await;
    assert_eq!(metrics.value("s3logd_objects_processed_total"), 2.0);
    assert_eq!(metrics.value("s3logd_records_total"), 500.0);
    assert_eq!(metrics.value("s3logd_lines_total"), 500.0);
    assert_eq!(metrics.value("s3logd_parse_errors_total"), 0.0);
    assert_eq!(
        metrics.value("s3logd_messages_deleted_total"),
        3.0,
        "two objects and the test event"
    );
}

/// Faults of the receiver: shared by the 500 and the 429 cases.
async fn store_recovers_from(status: u16) {
    const FAILURES: usize = 4;
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let object = harness.upload_alb(&alb_key(1), 3, 300).await;
    harness.receiver.fail_next(FAILURES, status);
    let collector = harness.run(&harness.settings()).await;

    // While the receiver still fails the message is held (checked first),
    // and nothing was stored (checked after).
    wait_until("failed requests", || {
        harness.receiver.counters().requests >= FAILURES as u64 - 1
    })
    .await;
    harness.wait_for_queue(ONE_HELD).await;
    assert!(harness.receiver.rows().is_empty());

    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
    let metrics = collector.metrics().await;
    assert!(metrics.value("s3logd_sink_retries_total{sink=\"victorialogs\"}") >= FAILURES as f64);
    assert_eq!(
        metrics.value("s3logd_sink_failures_total{sink=\"victorialogs\"}"),
        0.0
    );
}

#[tokio::test]
async fn receiver_answering_500_for_a_while_loses_nothing_and_delays_deletion() {
    store_recovers_from(500).await;
}

#[tokio::test]
async fn receiver_answering_429_for_a_while_loses_nothing_and_delays_deletion() {
    store_recovers_from(429).await;
}

#[tokio::test]
async fn unreachable_receiver_loses_nothing_and_delays_deletion() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let object = harness.upload_alb(&alb_key(1), 4, 300).await;
    harness.receiver.set_down(true);
    let collector = harness.run(&harness.settings()).await;

    collector
        .wait_for_metric("s3logd_sink_retries_total{sink=\"victorialogs\"}", 2.0)
        .await;
    harness.wait_for_queue(ONE_HELD).await;
    harness.receiver.set_down(false);

    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
}

/// Settings with a short visibility, so that a failed object's message is
/// visible again soon after the collector is gone.
fn quick_visibility(harness: &Harness) -> common::Settings {
    let mut settings = harness.settings();
    settings.visibility_timeout_secs = 2;
    settings.heartbeat_interval_secs = 1;
    settings
}

/// Runs the collector over a good object, `bad`, and another good one;
/// asserts that the good ones complete, that `failure` is counted, and that
/// the one message left is `bad`'s.
async fn bad_object_in_the_middle(
    harness: Harness,
    settings: common::Settings,
    bad: (&str, Vec<u8>),
    failure: &str,
) {
    let first = harness.upload_alb(&alb_key(1), 5, 200).await;
    harness.moto.put_object(BUCKET, bad.0, bad.1).await;
    let last = harness.upload_alb(&alb_key(3), 6, 200).await;
    let collector = harness.run(&settings).await;

    let rows = wait_for_lines(&harness.receiver, &[&first, &last]).await;
    collector.wait_for_metric(failure, 1.0).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let counts = harness.queue_counts().await;
        if counts.visible + counts.not_visible == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "queue holds {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_stored_once(&rows, &[&first, &last]);
    drop(collector);

    let body = harness.receive_body().await;
    let file_name = bad.0.rsplit('/').next().unwrap();
    assert!(
        body.contains(file_name),
        "left message is not {file_name}'s: {body}"
    );
}

#[tokio::test]
async fn corrupt_gzip_object_keeps_its_message_while_good_ones_complete() {
    let harness = Harness::start(Notify::Queue, Duration::from_secs(2)).await;
    let settings = quick_visibility(&harness);
    let corrupt = LogObject::alb(&alb_key(2), 7, 300);
    let mut bytes = gzip(&corrupt.text());
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    let failure = r#"s3logd_objects_failed_total{reason="read"}"#;
    bad_object_in_the_middle(harness, settings, (&corrupt.key, bytes), failure).await;
}

#[tokio::test]
async fn trapping_parser_keeps_its_message_while_good_ones_complete() {
    let harness = Harness::start(Notify::Queue, Duration::from_secs(2)).await;
    let mut settings = quick_visibility(&harness);
    settings.parser_paths = vec![s3logd_test_support::components::TRAP_PARSER.to_owned()];
    settings.routes = vec![("/trap-me/".to_owned(), "trap".to_owned())];
    let mut trapping = LogObject::alb("logs/trap-me/object.log.gz", 8, 100);
    trapping
        .lines
        .insert(50, "this line makes the parser TRAP".to_owned());
    let bytes = gzip(&trapping.text());
    let failure = r#"s3logd_objects_failed_total{reason="trap"}"#;
    bad_object_in_the_middle(harness, settings, (&trapping.key, bytes), failure).await;
}

#[tokio::test]
async fn heartbeat_keeps_a_slow_object_invisible_past_the_visibility_timeout() {
    let harness = Harness::start(Notify::Queue, Duration::from_secs(2)).await;
    let object = harness.upload_alb(&alb_key(1), 9, 300).await;
    // Four times the visibility timeout for the first request alone.
    harness.receiver.delay_next(1, Duration::from_secs(8));
    let collector = harness.run(&quick_visibility(&harness)).await;

    wait_for_lines(&harness.receiver, &[&object]).await;
    harness.wait_for_empty_queue().await;
    let metrics = collector.metrics().await;
    assert_eq!(
        metrics.value("s3logd_messages_received_total"),
        2.0,
        "the object's message was received twice (the other is the test event)"
    );
    assert_stored_once(&settled_rows(&harness.receiver).await, &[&object]);
    assert!(
        metrics.value("s3logd_heartbeats_total") >= 1.0,
        "{}",
        metrics.0
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_objects_within_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(15);
    let harness = Harness::start(Notify::Queue, Duration::from_secs(300)).await;
    let first = harness.upload_alb(&alb_key(1), 10, 300).await;
    let second = harness.upload_alb(&alb_key(2), 11, 300).await;
    harness.receiver.delay_next(1, Duration::from_secs(3));
    let mut settings = harness.settings();
    settings.grace_period_secs = GRACE.as_secs();
    let mut collector = harness.run(&settings).await;

    collector
        .wait_for_metric("s3logd_messages_received_total", 3.0)
        .await;
    wait_until("a request in flight", || {
        harness.receiver.counters().requests >= 1
    })
    .await;
    collector.signal(libc::SIGTERM);
    let status = collector.wait_for_exit(WAIT).await;
    assert!(status.success(), "exit after draining: {status}");

    // Had the grace period expired, the messages would have been released
    // (visible) with part of their records missing.
    assert_stored_once(&settled_rows(&harness.receiver).await, &[&first, &second]);
    let counts = harness.queue_counts().await;
    assert_eq!(
        counts,
        QueueCounts {
            visible: 0,
            not_visible: 0
        }
    );
}

#[tokio::test]
async fn sigterm_releases_unfinished_messages_at_once_after_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(2);
    // Without an explicit release the messages would stay invisible for minutes.
    let harness = Harness::start(Notify::Queue, Duration::from_secs(300)).await;
    let first = harness.upload_alb(&alb_key(1), 12, 300).await;
    let second = harness.upload_alb(&alb_key(2), 13, 300).await;
    harness.receiver.set_down(true);
    let mut settings = harness.settings();
    settings.grace_period_secs = GRACE.as_secs();
    let mut collector = harness.run(&settings).await;

    collector
        .wait_for_metric("s3logd_messages_received_total", 3.0)
        .await;
    collector
        .wait_for_metric("s3logd_sink_retries_total{sink=\"victorialogs\"}", 1.0)
        .await;
    collector.signal(libc::SIGTERM);
    collector.wait_for_exit(WAIT).await;
    let counts = harness.queue_counts().await;
    assert_eq!(
        counts,
        QueueCounts {
            visible: 2,
            not_visible: 0
        },
        "right after exit"
    );

    harness.receiver.set_down(false);
    let _restarted = harness.run(&settings).await;
    harness
        .expect_each_line_once_then_empty_queue(&[&first, &second])
        .await;
}

#[tokio::test]
async fn sigterm_during_a_long_poll_releases_what_the_poll_returns() {
    let harness = Harness::start(Notify::Queue, Duration::from_secs(300)).await;
    let mut settings = harness.settings();
    // The poll under way at the signal outlasts the upload after it.
    settings.wait_time_secs = 20;
    let mut collector = harness.run(&settings).await;
    // A poll took the test event; the loop polls again right after.
    collector
        .wait_for_metric("s3logd_test_events_total", 1.0)
        .await;
    collector.signal(libc::SIGTERM);
    let object = harness.upload_alb(&alb_key(1), 19, 100).await;
    let status = collector.wait_for_exit(WAIT).await;
    assert!(status.success(), "exit after draining: {status}");

    // Hidden for the queue's 300 s had the collector dropped its poll.
    assert_eq!(
        harness.queue_counts().await,
        QueueCounts {
            visible: 1,
            not_visible: 0
        },
        "right after exit"
    );
    let message = harness.receive_message().await;
    let file_name = object.key.rsplit('/').next().unwrap();
    let body = message.body().unwrap_or_default();
    assert!(body.contains(file_name), "not the object's message: {body}");
    assert_eq!(
        receive_count(&message),
        2,
        "the collector's poll took the message before it was given back"
    );
    assert!(
        harness.receiver.rows().is_empty(),
        "work announced after the signal is not started"
    );
}

#[tokio::test]
async fn sigkill_mid_object_then_restart_stores_every_record() {
    const LINES: usize = 10_000;
    let harness = Harness::start(Notify::Queue, Duration::from_secs(3)).await;
    let object = harness.upload_alb(&alb_key(1), 14, LINES).await;
    // Slow requests stretch the object over seconds so the kill lands inside it.
    harness.receiver.delay_next(20, Duration::from_millis(250));
    let mut settings = harness.settings();
    settings.visibility_timeout_secs = 3;
    settings.heartbeat_interval_secs = 1;
    settings.batch_max_records = 500;
    let mut collector = harness.run(&settings).await;

    wait_until("part of the object stored", || {
        harness.receiver.rows().len() >= 1_500
    })
    .await;
    collector.kill();
    let stored_before_restart = harness.receiver.rows().len();
    assert!(
        stored_before_restart < LINES,
        "the kill came after the whole object"
    );

    let _restarted = harness.run(&settings).await;
    let rows = wait_for_lines(&harness.receiver, &[&object]).await;
    harness.wait_for_empty_queue().await;
    let copies = copies_of_lines(&rows, &[&object]);
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    eprintln!(
        "sigkill: {stored_before_restart} of {LINES} rows stored before the kill, \
         {duplicates} duplicates after the restart"
    );
    assert_eq!(
        rows.len(),
        LINES + duplicates,
        "rows that are no line of the object"
    );
}

async fn delivered_through_sns(delivery: SnsDelivery) {
    let harness = Harness::start(Notify::Topic(delivery), QUEUE_VISIBILITY).await;
    let object = harness.upload_alb(&alb_key(1), 15, 200).await;
    let collector = harness.run(&harness.settings()).await;

    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
    let metrics = collector.metrics().await;
    assert_eq!(metrics.value("s3logd_messages_unrecognized_total"), 0.0);
}

#[tokio::test]
async fn sns_wrapped_events_are_handled() {
    delivered_through_sns(SnsDelivery::Wrapped).await;
}

#[tokio::test]
async fn sns_raw_delivery_events_are_handled() {
    delivered_through_sns(SnsDelivery::Raw).await;
}

#[tokio::test]
async fn eventbridge_object_created_events_are_handled() {
    let harness = Harness::start(Notify::Nothing, QUEUE_VISIBILITY).await;
    let object = LogObject::alb(&alb_key(1), 16, 200);
    let body = gzip(&object.text());
    let size = body.len();
    harness.moto.put_object(BUCKET, &object.key, body).await;
    // An EventBridge "Object Created" event as AWS documents it, for this object.
    let event = serde_json::json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2024-03-01T12:05:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{BUCKET}")],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": object.key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject"
        }
    });
    harness.send_message(&event.to_string()).await;
    let collector = harness.run(&harness.settings()).await;

    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
    let metrics = collector.metrics().await;
    assert_eq!(metrics.value("s3logd_messages_unrecognized_total"), 0.0);
}

#[tokio::test]
async fn test_event_is_deleted_and_counted_not_an_error() {
    // Configuring the notification put exactly one s3:TestEvent in the queue.
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let collector = harness.run(&harness.settings()).await;

    harness.wait_for_empty_queue().await;
    let metrics = collector
        .wait_for_metric("s3logd_test_events_total", 1.0)
        .await;
    assert_eq!(metrics.value("s3logd_test_events_total"), 1.0);
    assert_eq!(metrics.value("s3logd_messages_unrecognized_total"), 0.0);
    assert_eq!(metrics.value("s3logd_objects_processed_total"), 0.0);
    assert_eq!(harness.receiver.counters().rows_stored, 0);
}

#[tokio::test]
async fn keys_with_spaces_plus_and_equals_are_fetched_by_their_real_name() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let spaced = harness
        .upload_alb("logs/with space/part+1=a.log.gz", 17, 100)
        .await;
    let plain = LogObject::alb("logs/k=v/x+y z%41.log", 18, 100);
    harness
        .moto
        .put_object(BUCKET, &plain.key, plain.text())
        .await;
    let collector = harness.run(&harness.settings()).await;

    let rows = harness
        .expect_each_line_once_then_empty_queue(&[&spaced, &plain])
        .await;
    for object in [&spaced, &plain] {
        let first_line = &object.lines[0];
        let row = rows.iter().find(|row| &row.msg == first_line).unwrap();
        assert_eq!(row.fields.get("key"), Some(&object.key), "{row:?}");
    }
    let metrics = collector.metrics().await;
    assert_eq!(metrics.value("s3logd_objects_processed_total"), 2.0);
}
