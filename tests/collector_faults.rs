//! Black-box tests of `s3logd run` with a fault-injecting proxy between it
//! and moto (S3 and SQS share the endpoint): an object whose body is cut
//! mid-way, SQS unreachable for a while, deletes and visibility extensions
//! that fail. Whatever breaks, every record arrives at least once, a
//! message is deleted only after its object was read to the end, and the
//! collector recovers by itself, counting what failed.

mod common;

use std::time::{Duration, Instant};

use common::formats::Format;
use common::{
    BUCKET, Harness, LogObject, Notify, Settings, copies_of_lines, s3_event, wait_for_copies,
    wait_for_lines,
};
use s3logd_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};

const RECEIVE: Match = Match::SqsAction("ReceiveMessage");
const DELETE: Match = Match::SqsAction("DeleteMessage");
const CHANGE_VISIBILITY: Match = Match::SqsAction("ChangeMessageVisibility");
/// Attempts the AWS SDK makes per call in its default (standard) retry mode.
const SDK_ATTEMPTS_PER_CALL: u64 = 3;

/// A harness whose queue gets only the messages a test sends, a proxy in
/// front of its moto, and settings that reach S3 and SQS through it, with a
/// visibility short enough that a kept message returns within seconds.
async fn behind_proxy() -> (Harness, FaultProxy, Settings) {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(2)).await;
    let proxy = FaultProxy::start(harness.moto.address());
    let mut settings = harness.settings();
    settings.endpoint_url = proxy.url();
    settings.visibility_timeout_secs = 2;
    settings.heartbeat_interval_secs = 1;
    settings.routes = Format::routes();
    (harness, proxy, settings)
}

/// Uploads object `n` of `format` and sends the queue its notification.
async fn announce(harness: &Harness, format: Format, n: u64, lines: usize) -> (LogObject, usize) {
    let (object, body) = format.object(n, lines);
    let size = body.len();
    harness.moto.put_object(BUCKET, &object.key, body).await;
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &object.key))
        .await;
    (object, size)
}

/// An SQS error answer in the AWS JSON protocol.
fn sqs_internal_error() -> Fault {
    Fault::Answer {
        status: 500,
        content_type: "application/x-amz-json-1.0",
        body: br#"{"__type":"com.amazonaws.sqs#InternalError","message":"We encountered an internal error."}"#
            .to_vec(),
    }
}

#[tokio::test]
async fn a_plain_object_cut_mid_body_keeps_its_message_until_read_whole() {
    const CUT_AFTER: usize = 64 * 1024;
    const CUTS: u64 = 2;
    let (harness, proxy, settings) = behind_proxy().await;
    proxy.inject(Rule::new(Match::S3GetObject, Fault::CutBodyAfter(CUT_AFTER)).times(CUTS));
    // CLB logs are plain text: only the length of the answer can tell a cut
    // body from the object's end.
    let (object, size) = announce(&harness, Format::Clb, 1, 2_000).await;
    assert!(
        size > 4 * CUT_AFTER,
        "{size} bytes: the cut would not be mid-body"
    );
    let collector = harness.run(&settings).await;

    let rows = wait_for_lines(&harness.receiver, &[&object]).await;
    harness.wait_for_empty_queue().await;
    let metrics = collector
        .wait_for_metric("s3logd_messages_deleted_total", 1.0)
        .await;
    assert_eq!(
        metrics.value(r#"s3logd_objects_failed_total{reason="read"}"#),
        CUTS as f64,
        "{}",
        metrics.0
    );
    assert_eq!(metrics.value("s3logd_objects_processed_total"), 1.0);
    assert_eq!(
        metrics.value("s3logd_messages_received_total"),
        (CUTS + 1) as f64
    );
    // One delete, after the one read that was not cut: a cut read never
    // counted as the whole object.
    assert_eq!(proxy.seen(&Match::S3GetObject), CUTS + 1);
    assert_eq!(proxy.seen(&DELETE), 1);
    assert_eq!(metrics.value("s3logd_messages_deleted_total"), 1.0);
    assert_eq!(proxy.injected(), CUTS);
    // The cut attempts may have stored their first lines; nothing else.
    let copies = copies_of_lines(&rows, &[&object]);
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    assert_eq!(rows.len(), object.lines.len() + duplicates);
}

#[tokio::test]
async fn receives_back_off_while_sqs_is_unreachable_and_resume_by_themselves() {
    const OUTAGE: Duration = Duration::from_secs(8);
    let (harness, proxy, settings) = behind_proxy().await;
    let collector = harness.run(&settings).await;
    let deadline = Instant::now() + common::WAIT;
    while proxy.seen(&RECEIVE) == 0 {
        assert!(Instant::now() < deadline, "the collector never polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.inject(Rule::new(RECEIVE, Fault::Reset));
    let outage_began = Instant::now();
    let before = proxy.seen(&RECEIVE);
    let (object, _) = announce(&harness, Format::S3Access, 2, 300).await;
    tokio::time::sleep(OUTAGE).await;
    let attempts = proxy.seen(&RECEIVE) - before;
    let outage = outage_began.elapsed();
    proxy.clear();

    // Failed receives wait 1 s, 2 s, 4 s… before the next, so within the
    // outage at most 1 + log2(seconds + 1) receives start, plus the one
    // under way when it began; each is up to the SDK's attempts. A loop
    // without backoff would make thousands.
    let receives_at_most = 2 + (outage.as_secs_f64() + 1.0).log2().floor() as u64;
    assert!(
        attempts <= receives_at_most * SDK_ATTEMPTS_PER_CALL,
        "{attempts} ReceiveMessage attempts in {outage:?}"
    );
    assert!(attempts >= 2, "receives were not retried: {attempts}");
    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
    let metrics = collector.metrics().await;
    let failures = metrics.value("s3logd_receive_failures_total");
    assert!(
        (1.0..=receives_at_most as f64).contains(&failures),
        "{failures} failed receives"
    );
}

#[tokio::test]
async fn failed_deletes_bring_the_message_back_and_its_records_again_losing_nothing() {
    let (harness, proxy, mut settings) = behind_proxy().await;
    // Every failed delete costs a receive; none may reach the give-up count.
    settings.max_receive_count = 20;
    proxy.inject(Rule::new(DELETE, sqs_internal_error()));
    let (object, _) = announce(&harness, Format::S3Access, 3, 500).await;
    let collector = harness.run(&settings).await;

    collector
        .wait_for_metric("s3logd_delete_failures_total", 2.0)
        .await;
    wait_for_copies(&harness.receiver, &[&object], 2).await;
    proxy.clear();
    harness.wait_for_empty_queue().await;

    let metrics = collector
        .wait_for_metric("s3logd_messages_deleted_total", 1.0)
        .await;
    assert_eq!(metrics.value("s3logd_messages_deleted_total"), 1.0);
    assert!(
        metrics.value("s3logd_objects_processed_total") >= 3.0,
        "{}",
        metrics.0
    );
    assert!(proxy.seen(&DELETE) >= 3);
    // Each stored copy is a whole processing of the object: the duplicates
    // are every line again, as often as the message came back.
    let rows = harness.receiver.rows();
    let copies = copies_of_lines(&rows, &[&object]);
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    assert!(
        copies.values().all(|&n| n >= 2),
        "a line was stored once only"
    );
    assert!(duplicates >= object.lines.len(), "{duplicates} duplicates");
    assert_eq!(rows.len(), object.lines.len() + duplicates);
}

#[tokio::test]
async fn failing_visibility_extensions_on_a_long_object_are_counted_and_lose_nothing() {
    let (harness, proxy, settings) = behind_proxy().await;
    // The object's first store request takes four visibility timeouts.
    harness.receiver.delay_next(1, Duration::from_secs(8));
    proxy.inject(Rule::new(CHANGE_VISIBILITY, Fault::Reset));
    let (object, _) = announce(&harness, Format::Clb, 4, 300).await;
    let collector = harness.run(&settings).await;

    collector
        .wait_for_metric("s3logd_heartbeat_failures_total", 2.0)
        .await;
    proxy.clear();
    wait_for_lines(&harness.receiver, &[&object]).await;
    harness.wait_for_empty_queue().await;

    let metrics = collector.metrics().await;
    assert!(proxy.seen(&CHANGE_VISIBILITY) >= 2 * SDK_ATTEMPTS_PER_CALL);
    assert!(metrics.value("s3logd_objects_processed_total") >= 1.0);
    assert_eq!(
        metrics.value("s3logd_objects_failed_total{reason=\"read\"}"),
        0.0
    );
}
