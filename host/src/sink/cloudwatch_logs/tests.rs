//! The CloudWatch Logs sink: how events are cut into calls and answers
//! read (pure functions), and what arrives in a real moto_server, which
//! creates groups and streams, keeps events, checks their order within a
//! call and rejects those more than 14 days old or 2 hours ahead.

// Expected calls are lists of ranges, a one-call list among them.
#![allow(clippy::single_range_in_vec_init)]

use std::sync::Arc;

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;
use s3logd_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use s3logd_test_support::moto::MotoServer;

use super::*;
use crate::config::{
    BatchConfig, CloudWatchLogsConfig, CloudWatchLogsOptions, CloudWatchMessage, SinkConfig,
};
use crate::sink::delivery::SinkError;
use crate::sink::testing::{TestRecord, TestSink, TestValue, origin, resolve, test_aws_config};

const HOUR_MS: i64 = 3_600_000;
const MS: i64 = 1_000_000;

// ---- Cutting events into calls ----

#[test]
fn more_than_ten_thousand_events_take_two_calls() {
    let events = vec![(0, 10); MAX_CALL_EVENTS + 1];
    assert_eq!(
        call_ranges(&events),
        [0..MAX_CALL_EVENTS, MAX_CALL_EVENTS..MAX_CALL_EVENTS + 1]
    );
    assert_eq!(
        call_ranges(&events[..MAX_CALL_EVENTS]),
        [0..MAX_CALL_EVENTS]
    );
    assert!(call_ranges(&[]).is_empty());
}

#[test]
fn a_call_holds_up_to_a_mebibyte_counting_26_bytes_an_event() {
    // Two events filling a call exactly, then one byte too many.
    let half = MAX_CALL_BYTES / 2 - EVENT_OVERHEAD;
    assert_eq!(call_ranges(&[(0, half), (0, half)]), [0..2]);
    assert_eq!(call_ranges(&[(0, half), (0, half + 1)]), [0..1, 1..2]);
    // One event of the largest message is a call of its own.
    let largest = MAX_CALL_BYTES - EVENT_OVERHEAD;
    assert_eq!(
        call_ranges(&[(0, largest), (0, 1), (0, largest)]),
        [0..1, 1..2, 2..3]
    );
}

#[test]
fn a_call_spans_less_than_24_hours() {
    let day = MAX_CALL_SPAN_MS;
    assert_eq!(call_ranges(&[(0, 1), (day - 1, 1)]), [0..2]);
    assert_eq!(call_ranges(&[(0, 1), (day, 1)]), [0..1, 1..2]);
    // The span counts from each call's first event.
    assert_eq!(
        call_ranges(&[
            (0, 1),
            (12 * HOUR_MS, 1),
            (25 * HOUR_MS, 1),
            (36 * HOUR_MS, 1)
        ]),
        [0..2, 2..4]
    );
}

// ---- Reading rejectedLogEventsInfo ----

fn info(
    too_old_end: Option<i32>,
    too_new_start: Option<i32>,
    expired_end: Option<i32>,
) -> RejectedLogEventsInfo {
    RejectedLogEventsInfo::builder()
        .set_too_old_log_event_end_index(too_old_end)
        .set_too_new_log_event_start_index(too_new_start)
        .set_expired_log_event_end_index(expired_end)
        .build()
}

fn rejected_at(
    info: Option<&RejectedLogEventsInfo>,
    timestamps: &[i64],
    now: i64,
) -> Vec<(usize, &'static str)> {
    rejected_events(info, timestamps, now)
}

#[test]
fn rejected_events_read_the_documented_bounds() {
    let now = 100 * 86_400_000;
    let old = now - 15 * 86_400_000;
    let new = now + 3 * HOUR_MS;
    let timestamps = [old, old, now, now, new];
    // As documented: too-old end exclusive, too-new start inclusive.
    let rejected = rejected_at(Some(&info(Some(2), Some(4), None)), &timestamps, now);
    assert_eq!(rejected, [(0, TOO_OLD), (1, TOO_OLD), (4, TOO_NEW)]);
    // Expired (retention) before too old, end exclusive.
    let rejected = rejected_at(Some(&info(None, None, Some(1))), &[now - HOUR_MS, now], now);
    assert_eq!(rejected, [(0, EXPIRED)]);
    assert!(rejected_at(None, &timestamps, now).is_empty());
    assert!(rejected_at(Some(&info(None, None, None)), &timestamps, now).is_empty());
}

#[test]
fn rejected_events_read_moto_s_last_index_as_well() {
    let now = 100 * 86_400_000;
    let old = now - 15 * 86_400_000;
    let new = now + 3 * HOUR_MS;
    // moto names the last too-old and the last too-new event.
    let timestamps = [old, old, now, new, new];
    let rejected = rejected_at(Some(&info(Some(1), Some(4), None)), &timestamps, now);
    assert_eq!(
        rejected,
        [(0, TOO_OLD), (1, TOO_OLD), (3, TOO_NEW), (4, TOO_NEW)]
    );
}

#[test]
fn indices_beyond_the_call_are_clamped() {
    let now = 100 * 86_400_000;
    let rejected = rejected_at(Some(&info(Some(9), Some(-3), None)), &[now, now], now);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(rejected.iter().all(|(_, reason)| *reason == TOO_OLD));
}

// ---- The answer of an attempt ----

#[test]
fn answers_are_whole_when_every_record_came_to_the_same() {
    assert_eq!(answer(vec![Slot::Stored, Slot::Stored]), Answer::Stored);
    assert!(matches!(
        answer(vec![Slot::Retry("throttled".into()), Slot::Retry("x".into())]),
        Answer::Retry { reason, .. } if reason == "throttled"
    ));
    assert_eq!(
        answer(vec![
            Slot::CallRefused("bad".into()),
            Slot::CallRefused("bad".into())
        ]),
        Answer::Refused {
            reason: "bad".into()
        }
    );
    // One failure fails the attempt, whatever else went through.
    assert_eq!(
        answer(vec![Slot::Stored, Slot::Failed("denied".into())]),
        Answer::Failed {
            reason: "denied".into()
        }
    );
}

#[test]
fn a_refused_call_among_stored_ones_is_sent_again_on_its_own() {
    assert_eq!(
        answer(vec![
            Slot::Stored,
            Slot::CallRefused("bad".into()),
            Slot::Refused("too old".into()),
            Slot::Retry("throttled".into()),
        ]),
        Answer::PerRecord(vec![
            RecordAnswer::Stored,
            RecordAnswer::Retry("bad".into()),
            RecordAnswer::Refused("too old".into()),
            RecordAnswer::Retry("throttled".into()),
        ])
    );
}

// ---- Against moto_server ----

fn now_nanos() -> i64 {
    now_ms() * MS
}

fn config(log_group: &str, log_stream: &str, message: CloudWatchMessage) -> CloudWatchLogsConfig {
    let defaults = CloudWatchLogsConfig::default();
    CloudWatchLogsConfig {
        batch: BatchConfig {
            batch_max_age_ms: 10,
            ..defaults.batch
        },
        options: CloudWatchLogsOptions {
            log_group: log_group.into(),
            log_stream: log_stream.into(),
            create_missing: true,
            message,
            region: None,
        },
    }
}

fn start(moto: &MotoServer, config: CloudWatchLogsConfig) -> TestSink {
    TestSink::start_with_aws(
        "cwl",
        SinkConfig::CloudWatchLogs(config),
        test_aws_config(Some(moto.endpoint())),
    )
}

fn client(moto: &MotoServer) -> Client {
    Client::new(moto.sdk_config())
}

/// Every event of the stream, oldest first, as (timestamp ms, message).
async fn events(moto: &MotoServer, group: &str, stream: &str) -> Vec<(i64, String)> {
    let client = client(moto);
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("get_log_events {group} / {stream}: {e:?}"));
        let got = page.events();
        if got.is_empty() {
            break;
        }
        all.extend(got.iter().map(|event| {
            (
                event.timestamp().expect("a timestamp"),
                event.message().expect("a message").to_owned(),
            )
        }));
        token = page.next_forward_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    all
}

/// How many PutLogEvents calls reached the stream: moto counts them in its
/// upload sequence token.
async fn puts(moto: &MotoServer, group: &str, stream: &str) -> u64 {
    let described = client(moto)
        .describe_log_streams()
        .log_group_name(group)
        .log_stream_name_prefix(stream)
        .send()
        .await
        .expect("describe_log_streams");
    #[allow(deprecated)]
    let token = described
        .log_streams()
        .iter()
        .find(|found| found.log_stream_name() == Some(stream))
        .and_then(|found| found.upload_sequence_token())
        .expect("the stream and its token")
        .to_owned();
    token.parse().expect("a number")
}

fn record(time: i64, msg: &str) -> TestRecord {
    TestRecord {
        msg: Some(msg.into()),
        ..TestRecord::at(time)
    }
}

#[tokio::test]
async fn records_arrive_in_their_templated_group_and_stream_which_are_created() {
    let moto = MotoServer::start();
    let sink = start(
        &moto,
        config("/s3logd/{elb}", "{account}-%Y", CloudWatchMessage::Raw),
    );
    let base = now_nanos() - HOUR_MS * MS;
    let year = {
        let mut text = String::new();
        Template::parse("%Y")
            .unwrap()
            .renderer(&[])
            .render(&record(base, "").as_record(&[], &[]), &mut text);
        text
    };
    let records = [
        record(base, "first web").with("elb", TestValue::Str("web".into())),
        record(base + 1_000 * MS, "first api").with("elb", TestValue::Str("api".into())),
        record(base + 2_000 * MS + 999_999, "second web\n")
            .with("elb", TestValue::Str("web".into())),
    ];
    let object = [("account".to_owned(), "123456789012".to_owned())];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &object, &records)
        .await;
    resolve(delivery).await.expect("delivered");
    let stream = format!("123456789012-{year}");
    let base_ms = base / MS;
    assert_eq!(
        events(&moto, "/s3logd/web", &stream).await,
        [
            (base_ms, "first web".to_owned()),
            // Milliseconds, rounded down; the line's newline is not sent.
            (base_ms + 2_000, "second web".to_owned())
        ]
    );
    assert_eq!(
        events(&moto, "/s3logd/api", &stream).await,
        [(base_ms + 1_000, "first api".to_owned())]
    );
    assert!(sink.dead_letters().is_empty());
}

#[tokio::test]
async fn json_messages_carry_the_record_and_the_object_fields() {
    let moto = MotoServer::start();
    let sink = start(&moto, config("/s3logd/json", "s", CloudWatchMessage::Json));
    let time = now_nanos() - HOUR_MS * MS;
    let records = [record(time, "GET / 200").with("status", TestValue::Int(200))];
    let object = [("bucket".to_owned(), "logs".to_owned())];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &object, &records)
        .await;
    resolve(delivery).await.expect("delivered");
    let got = events(&moto, "/s3logd/json", "s").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, time / MS);
    assert!(!got[0].1.ends_with('\n'), "{:?}", got[0].1);
    let parsed: serde_json::Value = serde_json::from_str(&got[0].1).expect("JSON");
    assert_eq!(parsed["_msg"], "GET / 200");
    assert_eq!(parsed["status"], 200);
    assert_eq!(parsed["bucket"], "logs");
    assert!(parsed["_time"].is_string());
}

#[tokio::test]
async fn an_event_of_the_largest_size_arrives_whole() {
    let moto = MotoServer::start();
    let mut config = config("/s3logd/large", "s", CloudWatchMessage::Raw);
    config.batch.max_record_bytes = (MAX_CALL_BYTES - EVENT_OVERHEAD) as u64;
    let sink = start(&moto, config);
    let time = now_nanos() - HOUR_MS * MS;
    let largest = "x".repeat(MAX_CALL_BYTES - EVENT_OVERHEAD);
    let records = [
        record(time, &largest),
        record(time + MS, "small"),
        // One byte beyond: refused before sending, to the dead-letter output.
        record(time + 2 * MS, &format!("{largest}y")),
    ];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &records)
        .await;
    resolve(delivery).await.expect("delivered");
    let got = events(&moto, "/s3logd/large", "s").await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.len(), 1_048_550);
    assert_eq!(got[1].1, "small");
    // The largest event filled a call of its own.
    assert_eq!(puts(&moto, "/s3logd/large", "s").await, 2);
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_record_bytes"),
        "{letters:?}"
    );
}

#[tokio::test]
async fn ten_thousand_and_one_events_of_one_batch_take_two_calls_and_all_arrive() {
    let moto = MotoServer::start();
    let mut config = config("/s3logd/many", "s", CloudWatchMessage::Raw);
    // One batch for all of them: the store, not the batcher, must split.
    config.batch.batch_max_records = 20_000;
    config.batch.batch_max_age_ms = 200;
    let sink = start(&moto, config);
    let base = now_nanos() - HOUR_MS * MS;
    let records: Vec<TestRecord> = (0..10_001)
        .map(|n| record(base + n * MS, &format!("event {n}")))
        .collect();
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &records)
        .await;
    resolve(delivery).await.expect("delivered");
    let got = events(&moto, "/s3logd/many", "s").await;
    assert_eq!(got.len(), 10_001);
    for (n, (timestamp, message)) in got.iter().enumerate() {
        assert_eq!(*timestamp, base / MS + n as i64);
        assert_eq!(*message, format!("event {n}"));
    }
    assert_eq!(puts(&moto, "/s3logd/many", "s").await, 2);
}

#[tokio::test]
async fn unsorted_events_spread_over_25_hours_are_sorted_and_split() {
    let moto = MotoServer::start();
    let sink = start(&moto, config("/s3logd/spread", "s", CloudWatchMessage::Raw));
    let now = now_nanos();
    // moto refuses a call whose events are out of order.
    let records = [
        record(now - HOUR_MS * MS, "c"),
        record(now - 25 * HOUR_MS * MS, "a"),
        record(now - 2 * HOUR_MS * MS, "b2"),
        record(now - 12 * HOUR_MS * MS, "b1"),
    ];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &records)
        .await;
    resolve(delivery).await.expect("delivered");
    assert!(sink.dead_letters().is_empty(), "{:?}", sink.dead_letters());
    let got: Vec<String> = events(&moto, "/s3logd/spread", "s")
        .await
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    assert_eq!(got, ["a", "b1", "b2", "c"]);
    assert_eq!(puts(&moto, "/s3logd/spread", "s").await, 2);
}

#[tokio::test]
async fn too_old_and_too_new_events_are_dead_lettered_and_the_rest_stored() {
    let moto = MotoServer::start();
    let sink = start(&moto, config("/s3logd/old", "s", CloudWatchMessage::Raw));
    let now = now_nanos();
    let day = 24 * HOUR_MS * MS;
    let records = [
        record(now - HOUR_MS * MS, "recent"),
        record(now - 15 * day, "old 1"),
        record(now - 16 * day, "old 2"),
        record(now + 3 * HOUR_MS * MS, "ahead"),
        record(now - 2 * HOUR_MS * MS, "recent 2"),
    ];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &records)
        .await;
    resolve(delivery).await.expect("delivered");
    let got: Vec<String> = events(&moto, "/s3logd/old", "s")
        .await
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    assert_eq!(got, ["recent 2", "recent"]);
    let mut letters: Vec<(String, String)> = sink
        .dead_letters()
        .into_iter()
        .map(|letter| {
            (
                letter["record"].as_str().unwrap().to_owned(),
                letter["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    letters.sort();
    assert_eq!(
        letters,
        [
            ("ahead".to_owned(), TOO_NEW.to_owned()),
            ("old 1".to_owned(), TOO_OLD.to_owned()),
            ("old 2".to_owned(), TOO_OLD.to_owned()),
        ]
    );
}

#[tokio::test]
async fn without_create_missing_a_missing_group_fails_the_delivery() {
    let moto = MotoServer::start();
    let mut config = config("/s3logd/absent", "s", CloudWatchMessage::Raw);
    config.options.create_missing = false;
    let sink = start(&moto, config);
    let records = [record(now_nanos(), "x")];
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &records)
        .await;
    match resolve(delivery).await {
        Err(SinkError::Failed { reason, .. }) => {
            assert!(reason.contains("ResourceNotFoundException"), "{reason}");
            assert!(reason.contains("create_missing"), "{reason}");
        }
        other => panic!("the delivery fails: {other:?}"),
    }
    assert!(sink.dead_letters().is_empty());
    // Nothing was created behind the operator's back.
    let groups = client(&moto)
        .describe_log_groups()
        .send()
        .await
        .expect("describe_log_groups");
    assert!(groups.log_groups().is_empty());
}

#[tokio::test]
async fn an_existing_group_gets_its_missing_stream() {
    let moto = MotoServer::start();
    client(&moto)
        .create_log_group()
        .log_group_name("/s3logd/existing")
        .send()
        .await
        .expect("create_log_group");
    let sink = start(
        &moto,
        config("/s3logd/existing", "new", CloudWatchMessage::Raw),
    );
    let time = now_nanos() - HOUR_MS * MS;
    let delivery = sink
        .send_records(Arc::new(origin("k")), &[], &[record(time, "x")])
        .await;
    resolve(delivery).await.expect("delivered");
    assert_eq!(
        events(&moto, "/s3logd/existing", "new").await,
        [(time / MS, "x".to_owned())]
    );
}

#[test]
fn malformed_templates_are_named_by_their_key() {
    let context = Context {
        stream_fields: Vec::new(),
        aws: test_aws_config(None),
        dead_letter: crate::sink::dead_letter::DeadLetter::file(std::path::Path::new(
            "/nonexistent/dead-letters",
        )),
        cancel: Default::default(),
    };
    let error = build(
        &config("/a/{open", "s", CloudWatchMessage::Raw),
        "sink.cwl",
        &context,
    )
    .err()
    .expect("refused");
    assert!(
        error.to_string().starts_with("sink.cwl.log_group: "),
        "{error}"
    );
    let error = build(
        &config("/a", "%Q", CloudWatchMessage::Raw),
        "sink.cwl",
        &context,
    )
    .err()
    .expect("refused");
    assert!(
        error.to_string().starts_with("sink.cwl.log_stream: "),
        "{error}"
    );
}

fn unavailable() -> Fault {
    Fault::Answer {
        status: 503,
        content_type: "text/plain",
        body: Vec::new(),
    }
}

/// The service's answer when an account's PutLogEvents rate is exceeded.
fn throttled() -> Fault {
    Fault::Answer {
        status: 400,
        content_type: "application/x-amz-json-1.1",
        body: br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_vec(),
    }
}

/// Five events sent through a proxy that refuses connections for a while,
/// then plays `faults` in order, one request each, must all arrive once,
/// with at least `min_retries` retries counted and nothing dead-lettered.
async fn delivered_through(faults: Vec<Fault>, min_retries: u64) {
    let moto = MotoServer::start();
    let proxy = FaultProxy::start(moto.address());
    proxy.set_down(true);
    for fault in faults {
        proxy.inject(Rule::new(Match::Any, fault).times(1));
    }
    // A stalled call must time out well before the test's patience does.
    let aws = test_aws_config(Some(&proxy.url()))
        .into_builder()
        .timeout_config(
            aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(700))
                .build(),
        )
        .build();
    let sink = TestSink::start_with_aws(
        "cwl",
        SinkConfig::CloudWatchLogs(config("/s3logd/faults", "s", CloudWatchMessage::Raw)),
        aws,
    );
    let base = now_nanos() - HOUR_MS * MS;
    let records: Vec<TestRecord> = (0..5)
        .map(|n| record(base + n * MS, &format!("event {n}")))
        .collect();
    let delivery = sink
        .send_records(Arc::new(origin("a.log")), &[], &records)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.set_down(false);
    resolve(delivery)
        .await
        .expect("delivered once moto is reachable");
    let messages: Vec<String> = events(&moto, "/s3logd/faults", "s")
        .await
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    assert_eq!(
        messages,
        (0..5).map(|n| format!("event {n}")).collect::<Vec<_>>()
    );
    let retries = sink
        .sink
        .handle
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(retries >= min_retries, "{retries} retries");
    assert!(sink.dead_letters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_then_server_errors_are_retried_until_recovery() {
    // Refused, then two 503s.
    delivered_through(vec![unavailable(), unavailable()], 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_a_hung_call_are_retried_until_recovery() {
    // Refused, throttled twice, then a call that never answers.
    delivered_through(
        vec![
            throttled(),
            throttled(),
            Fault::Stall(Duration::from_secs(30)),
        ],
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_any_the_service_gives_is_not_read_whole() {
    // Refused, then a 200 whose 16 MiB body is valid JSON: read whole, the
    // call would count as stored and nothing would reach moto.
    let mut body = vec![b' '; 16 << 20];
    body[0] = b'{';
    *body.last_mut().expect("not empty") = b'}';
    let oversized = Fault::Answer {
        status: 200,
        content_type: "application/x-amz-json-1.1",
        body,
    };
    delivered_through(vec![oversized], 2).await;
}
