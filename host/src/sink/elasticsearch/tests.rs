//! The Elasticsearch sink against the receiver that speaks `_bulk`: what
//! arrives (index, `_id`, `@timestamp`, `message`, fields), redelivery
//! without duplicates, per-item answers, faults, and SigV4.

use std::sync::Arc;
use std::time::Duration;

use s3logd_test_support::elasticsearch::{Auth, Elasticsearch as Receiver};

use super::encoding::object_id;
use crate::config::{
    BatchConfig, Compression, ElasticsearchAuth, ElasticsearchConfig, ElasticsearchOptions,
    HttpConfig, Secret, SinkConfig,
};
use crate::sink::delivery::SinkError;
use crate::sink::testing::{TestRecord, TestSink, TestValue, origin, resolve};

/// 2024-03-01T12:05:00Z.
const T0: i64 = 1_709_294_700_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

fn config(receiver: &Receiver) -> ElasticsearchConfig {
    ElasticsearchConfig {
        http: HttpConfig {
            url: receiver.url(),
            ..ElasticsearchConfig::default().http
        },
        batch: BatchConfig {
            batch_max_age_ms: 10,
            ..ElasticsearchConfig::default().batch
        },
        auth: ElasticsearchAuth::default(),
        options: ElasticsearchOptions {
            index: "alb-%Y.%m.%d".into(),
            ..ElasticsearchOptions::default()
        },
    }
}

fn start(config: ElasticsearchConfig) -> TestSink {
    TestSink::start("es", SinkConfig::Elasticsearch(config))
}

/// `count` records, record `n` at T0 + n seconds with status 200 + n % 3.
fn records(count: u64) -> Vec<TestRecord> {
    (0..count)
        .map(|n| {
            let mut record = TestRecord::at(T0 + n as i64 * 1_000_000_000)
                .with("n", TestValue::Int(n as i64))
                .with("elb", TestValue::Str("app/Web/1".into()));
            record.line = n + 1;
            record.msg = Some(format!("request {n}"));
            record
        })
        .collect()
}

fn object_fields() -> Vec<(String, String)> {
    vec![("account".into(), "123456789012".into())]
}

async fn deliver(sink: &TestSink, key: &str, records: &[TestRecord]) -> Result<(), SinkError> {
    let delivery = sink
        .send_records(Arc::new(origin(key)), &object_fields(), records)
        .await;
    resolve(delivery).await
}

fn stored_numbers(receiver: &Receiver) -> Vec<i64> {
    let mut numbers: Vec<i64> = receiver
        .documents()
        .iter()
        .map(|document| document.source["n"].as_i64().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn documents_arrive_with_time_message_fields_and_derived_ids() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    deliver(&sink, "a.log", &records(3)).await.unwrap();
    let documents = receiver.documents_in("alb-2024.03.01");
    assert_eq!(documents.len(), 3);
    let prefix = object_id(&origin("a.log"));
    for (n, document) in documents.iter().enumerate() {
        assert_eq!(document.id, format!("{prefix}-{n}"));
        let source = &document.source;
        assert_eq!(source["@timestamp"], format!("2024-03-01T12:05:0{n}Z"));
        assert_eq!(source["message"], format!("request {n}"));
        assert_eq!(source["n"], n as i64);
        assert_eq!(source["elb"], "app/Web/1");
        assert_eq!(source["account"], "123456789012");
    }
    let request = &receiver.requests()[0];
    assert_eq!(request.headers["content-type"], "application/x-ndjson");
    assert!(
        request.uri.starts_with("/_bulk?filter_path="),
        "{}",
        request.uri
    );
}

#[tokio::test]
async fn a_redelivered_object_adds_no_duplicates() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    deliver(&sink, "a.log", &records(5)).await.unwrap();
    // The same object again (a message seen twice), and another object.
    deliver(&sink, "a.log", &records(5)).await.unwrap();
    deliver(&sink, "b.log", &records(2)).await.unwrap();
    assert_eq!(stored_numbers(&receiver), [0, 0, 1, 1, 2, 3, 4]);
    let counters = receiver.counters();
    assert_eq!((counters.created, counters.conflicts), (7, 5));
    assert!(sink.dead_letters().is_empty());
}

#[tokio::test]
async fn index_names_come_from_fields_and_are_lower_case() {
    let receiver = Receiver::start();
    let mut config = config(&receiver);
    config.options.index = "{elb}-{account}-%Y".into();
    let sink = start(config);
    deliver(&sink, "a.log", &records(2)).await.unwrap();
    assert_eq!(
        receiver.documents_in("app/web/1-123456789012-2024").len(),
        0,
        "a / is no index character: the receiver refuses it"
    );
    // `/` makes an invalid index name: refused per item, dead-lettered.
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 2);
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_index_name_exception"),
        "{letters:?}"
    );
    let receiver = Receiver::start();
    let mut config = self::config(&receiver);
    config.options.index = "alb-{account}-%Y.%m".into();
    let sink = start(config);
    deliver(&sink, "a.log", &records(2)).await.unwrap();
    assert_eq!(receiver.documents_in("alb-123456789012-2024.03").len(), 2);
}

#[tokio::test]
async fn items_throttled_are_sent_again_alone_and_mapping_errors_are_dead_lettered() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    // Map `n` as a number first.
    deliver(&sink, "first.log", &records(1)).await.unwrap();
    let mut batch = records(6);
    // Records 4 and 5: an object where a number is mapped.
    for record in &mut batch[4..] {
        record.fields[0].1 = TestValue::Str("not-a-number".into());
    }
    // The first two items of the next request are throttled.
    receiver.reject_items_next(2, 429);
    deliver(&sink, "b.log", &batch).await.unwrap();
    let b_prefix = object_id(&origin("b.log"));
    let mut stored: Vec<String> = receiver
        .documents()
        .into_iter()
        .filter(|document| document.id.starts_with(&b_prefix))
        .map(|document| document.id)
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        (0..4)
            .map(|n| format!("{b_prefix}-{n}"))
            .collect::<Vec<_>>()
    );
    // The retry carried exactly the two throttled items.
    let bulk_bodies: Vec<usize> = receiver.requests().iter().map(|r| r.body_len).collect();
    assert_eq!(bulk_bodies.len(), 3, "{bulk_bodies:?}");
    assert!(bulk_bodies[2] < bulk_bodies[1] / 2, "{bulk_bodies:?}");
    let letters = sink.dead_letters();
    let lines: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [5, 6]);
    assert_eq!(letters[0]["sink"], "es");
    assert_eq!(letters[0]["key"], "b.log");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("document_parsing_exception"),
        "{letters:?}"
    );
    let stats = sink.sink.handle.stats();
    assert_eq!(
        stats
            .records_dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn whole_request_faults_are_retried_until_recovery() {
    let receiver = Receiver::start();
    receiver.fail_next(2, 503);
    receiver.fail_next_with_retry_after(1, 429, "1");
    receiver.drop_connection_next(1);
    let sink = start(config(&receiver));
    deliver(&sink, "a.log", &records(10)).await.unwrap();
    assert_eq!(stored_numbers(&receiver), (0..10).collect::<Vec<_>>());
    let statuses: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(429), None, Some(200)]);
}

#[tokio::test]
async fn an_unreachable_store_at_first_loses_nothing() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let sink = start(config(&receiver));
    let pending = sink
        .send_records(Arc::new(origin("a.log")), &object_fields(), &records(4))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.set_down(false);
    resolve(pending).await.unwrap();
    assert_eq!(stored_numbers(&receiver), [0, 1, 2, 3]);
    assert!(
        sink.sink
            .handle
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test]
async fn a_timed_out_request_sent_again_stores_each_record_once() {
    let receiver = Receiver::start();
    receiver.delay_next(1, Duration::from_secs(2));
    let mut config = config(&receiver);
    config.http.request_timeout_secs = 1;
    let sink = start(config);
    deliver(&sink, "a.log", &records(3)).await.unwrap();
    receiver.settle(WAIT).await;
    // The slow request was stored after the client gave up; the derived
    // ids make the second attempt's creates conflicts, not duplicates.
    assert_eq!(stored_numbers(&receiver), [0, 1, 2]);
}

#[tokio::test]
async fn a_request_too_large_is_split() {
    let receiver = Receiver::builder().max_content_length(2_000).start();
    let sink = start(config(&receiver));
    deliver(&sink, "a.log", &records(30)).await.unwrap();
    assert_eq!(stored_numbers(&receiver), (0..30).collect::<Vec<_>>());
    let statuses: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[0], Some(413));
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r.status != Some(413) || r.body_len > 2_000)
    );
}

#[tokio::test]
async fn credentials_go_with_every_request_and_a_wrong_one_fails() {
    let receiver = Receiver::start_with_auth(Auth::ApiKey("a2V5OnNlY3JldA==".into()));
    let mut config = config(&receiver);
    config.auth.api_key = Some(Secret::new("a2V5OnNlY3JldA=="));
    let sink = start(config.clone());
    deliver(&sink, "a.log", &records(2)).await.unwrap();
    assert_eq!(stored_numbers(&receiver), [0, 1]);

    config.auth.api_key = Some(Secret::new("wrong"));
    let sink = start(config);
    let result = deliver(&sink, "b.log", &records(1)).await;
    let Err(SinkError::Failed { reason, .. }) = result else {
        panic!("{result:?}")
    };
    assert!(
        reason.contains("401") && !reason.contains("wrong"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_path_prefix_gzip_and_a_pipeline_are_kept() {
    let receiver = Receiver::start_at_path("/search");
    let mut config = config(&receiver);
    config.http.url = format!("{}/search/", receiver.url());
    config.options.compression = Compression::Gzip;
    config.options.pipeline = Some("alb geoip".into());
    let sink = start(config);
    deliver(&sink, "a.log", &records(3)).await.unwrap();
    let documents = receiver.documents();
    assert_eq!(documents.len(), 3);
    assert!(
        documents
            .iter()
            .all(|d| d.pipeline.as_deref() == Some("alb geoip"))
    );
    assert_eq!(receiver.requests()[0].headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn data_streams_take_the_creates() {
    let receiver = Receiver::builder().data_stream("logs-*").start();
    let mut config = config(&receiver);
    config.options.index = "logs-alb-default".into();
    let sink = start(config);
    deliver(&sink, "a.log", &records(2)).await.unwrap();
    assert_eq!(receiver.documents_in("logs-alb-default").len(), 2);
}

#[tokio::test]
async fn requests_signed_for_opensearch_service_are_taken() {
    let receiver = Receiver::builder().require_sigv4("es").start();
    let mut config = config(&receiver);
    config.auth.aws_service = Some("es".into());
    config.auth.aws_region = Some("eu-west-1".into());
    let sink = start(config);
    deliver(&sink, "a.log", &records(2)).await.unwrap();
    assert_eq!(stored_numbers(&receiver), [0, 1]);
    let request = &receiver.requests()[0];
    let authorization = request.headers["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=testing/")
            && authorization.contains("/eu-west-1/es/aws4_request"),
        "{authorization}"
    );
}
