//! The Loki sink against the receiver that speaks the push API: streams,
//! timestamps, lines, structured metadata, the tenant, and what becomes of
//! entries Loki refuses or cannot take yet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use s3logd_test_support::loki::{Auth, Loki as Receiver};

use crate::config::{
    BatchConfig, Compression, HttpConfig, LokiConfig, LokiLine, LokiOptions, Secret, SinkConfig,
};
use crate::sink::delivery::SinkError;
use crate::sink::testing::{TestRecord, TestSink, TestValue, origin, resolve};

fn now() -> i64 {
    crate::sink::now_nanos()
}

fn config(receiver: &Receiver) -> LokiConfig {
    LokiConfig {
        http: HttpConfig {
            url: receiver.url(),
            ..LokiConfig::default().http
        },
        batch: BatchConfig {
            batch_max_age_ms: 10,
            ..LokiConfig::default().batch
        },
        options: LokiOptions {
            labels: Some(vec!["log_type".into(), "elb".into()]),
            ..LokiOptions::default()
        },
    }
}

fn start(config: LokiConfig) -> TestSink {
    TestSink::start("loki", SinkConfig::Loki(config))
}

/// Records of two load balancers, a microsecond apart from `base`.
fn records(base: i64, count: u64) -> Vec<TestRecord> {
    (0..count)
        .map(|n| {
            let mut record = TestRecord::at(base + n as i64 * 1_000)
                .with("elb", TestValue::Str(format!("app/web/{}", n % 2)))
                .with("status", TestValue::Int(200 + n as i64));
            record.line = n + 1;
            record.msg = Some(format!("request {n} \"quoted\""));
            record
        })
        .collect()
}

fn object_fields() -> Vec<(String, String)> {
    vec![("log_type".into(), "alb".into())]
}

async fn deliver(sink: &TestSink, records: &[TestRecord]) -> Result<(), SinkError> {
    let delivery = sink
        .send_records(Arc::new(origin("a.log")), &object_fields(), records)
        .await;
    resolve(delivery).await
}

fn statuses(receiver: &Receiver) -> Vec<i64> {
    let mut statuses: Vec<i64> = receiver
        .entries()
        .iter()
        .map(|entry| {
            let record: serde_json::Value = serde_json::from_str(&entry.line).unwrap();
            record["status"].as_i64().unwrap()
        })
        .collect();
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn entries_arrive_in_streams_by_label_with_their_time_and_json_line() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    let base = now();
    deliver(&sink, &records(base, 4)).await.unwrap();
    let entries = receiver.entries();
    assert_eq!(entries.len(), 4);
    for entry in &entries {
        let record: serde_json::Value = serde_json::from_str(&entry.line).unwrap();
        let n = record["status"].as_i64().unwrap() - 200;
        assert_eq!(entry.ts_ns, base + n * 1_000);
        assert_eq!(record["_msg"], format!("request {n} \"quoted\""));
        assert_eq!(record["log_type"], "alb");
        let labels: Vec<(&str, &str)> = entry
            .labels
            .iter()
            .filter(|(name, _)| *name != "service_name")
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let elb = format!("app/web/{}", n % 2);
        assert_eq!(labels, [("elb", elb.as_str()), ("log_type", "alb")]);
        assert!(entry.metadata.is_empty());
    }
    // One request, two streams.
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(receiver.requests()[0].headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn raw_lines_carry_the_fields_as_structured_metadata() {
    let receiver = Receiver::start();
    let mut config = config(&receiver);
    config.options.line = LokiLine::Raw;
    config.options.static_labels = BTreeMap::from([("job".into(), "s3logd".into())]);
    config.options.compression = Compression::None;
    let sink = start(config);
    deliver(&sink, &records(now(), 2)).await.unwrap();
    let mut entries = receiver.entries();
    entries.sort_by_key(|entry| entry.ts_ns);
    assert_eq!(entries[1].line, "request 1 \"quoted\"");
    assert_eq!(
        entries[1].metadata,
        BTreeMap::from([
            ("elb".to_owned(), "app/web/1".to_owned()),
            ("status".to_owned(), "201".to_owned())
        ])
    );
    assert_eq!(entries[1].labels["job"], "s3logd");
}

#[tokio::test]
async fn the_tenant_and_credentials_go_with_every_request() {
    let receiver = Receiver::builder()
        .require_tenant()
        .auth(Auth::Bearer("loki-token".into()))
        .start();
    let mut config = config(&receiver);
    config.options.tenant_id = Some("ops".into());
    config.http.bearer_token = Some(Secret::new("loki-token"));
    let sink = start(config);
    deliver(&sink, &records(now(), 3)).await.unwrap();
    assert_eq!(receiver.entries_of("ops").len(), 3);
}

#[tokio::test]
async fn entries_loki_refuses_go_to_the_dead_letter_output_and_the_rest_is_stored() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    let mut batch = records(now(), 6);
    // Far older than Loki's reject_old_samples_max_age (7 days).
    for record in &mut batch[..2] {
        record.time = Some(now() - 30 * 86_400 * 1_000_000_000);
    }
    deliver(&sink, &batch).await.unwrap();
    receiver.settle(Duration::from_secs(10)).await;
    let stored = statuses(&receiver);
    let mut unique = stored.clone();
    unique.dedup();
    assert_eq!(unique, [202, 203, 204, 205]);
    let letters = sink.dead_letters();
    let lines: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2]);
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("too old"),
        "{letters:?}"
    );
    assert_eq!(
        sink.sink.handle.stats().records_dead_lettered.load(Relaxed),
        2
    );
}

#[tokio::test]
async fn throttling_server_errors_and_no_connection_are_retried_until_recovery() {
    let receiver = Receiver::start();
    receiver.fail_next(1, 500);
    receiver.fail_next_with_retry_after(1, 429, "1");
    receiver.drop_connection_next(1);
    let sink = start(config(&receiver));
    deliver(&sink, &records(now(), 5)).await.unwrap();
    assert_eq!(statuses(&receiver), [200, 201, 202, 203, 204]);
    let codes: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(codes, [Some(500), Some(429), None, Some(204)]);
    assert_eq!(sink.sink.handle.stats().retries.load(Relaxed), 3);
}

#[tokio::test]
async fn an_unreachable_loki_at_first_loses_nothing() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let sink = start(config(&receiver));
    let pending = sink
        .send_records(
            Arc::new(origin("a.log")),
            &object_fields(),
            &records(now(), 3),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.set_down(false);
    resolve(pending).await.unwrap();
    assert_eq!(statuses(&receiver), [200, 201, 202]);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let receiver = Receiver::start();
    receiver.delay_next(1, Duration::from_secs(2));
    let mut config = config(&receiver);
    config.http.request_timeout_secs = 1;
    let sink = start(config);
    deliver(&sink, &records(now(), 2)).await.unwrap();
    receiver.settle(Duration::from_secs(10)).await;
    let mut stored = statuses(&receiver);
    stored.dedup();
    assert_eq!(stored, [200, 201]);
}
