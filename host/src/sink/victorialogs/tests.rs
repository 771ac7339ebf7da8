//! The VictoriaLogs sink against the receiver that speaks its protocol:
//! what arrives (time, message, stream, tenant), how, and what becomes of
//! records when it fails.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use s3logd_test_support::victorialogs::{Auth, TimeSource, VictoriaLogs as Receiver};

use crate::config::{
    BatchConfig, Compression, HttpConfig, Secret, SinkConfig, VictoriaLogsConfig,
    VictoriaLogsOptions,
};
use crate::sink::delivery::SinkError;
use crate::sink::testing::{TestSink, resolve};

const STREAM: &str = r#"{account="123456789012",log_type="alb"}"#;

fn config(receiver: &Receiver) -> VictoriaLogsConfig {
    VictoriaLogsConfig {
        http: HttpConfig {
            url: receiver.url(),
            ..VictoriaLogsConfig::default().http
        },
        batch: BatchConfig {
            batch_max_age_ms: 10,
            ..VictoriaLogsConfig::default().batch
        },
        options: VictoriaLogsOptions {
            compression: Compression::None,
            ..VictoriaLogsOptions::default()
        },
    }
}

fn start(config: VictoriaLogsConfig) -> TestSink {
    TestSink::start("vl", SinkConfig::VictoriaLogs(config))
}

/// `count` records numbered from `first`, as JsonLineWriter writes them:
/// record `n` happened `n` microseconds after 2024-05-06T07:08:09Z.
fn lines(first: u64, count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for n in first..first + count {
        writeln!(
            out,
            r#"{{"_time":"2024-05-06T07:08:09.{n:06}Z","_msg":"request {n}","log_type":"alb","account":"123456789012","elb":"app/web/1","n":{n}}}"#
        )
        .unwrap();
    }
    out
}

/// Sends `chunks` chunks of `per_chunk` records and waits for every delivery.
async fn send_all(sink: &TestSink, chunks: u64, per_chunk: u64) -> Vec<Result<(), SinkError>> {
    let mut deliveries = Vec::new();
    for chunk in 0..chunks {
        let first = chunk * per_chunk;
        deliveries.push(sink.send_lines(&lines(first, per_chunk), first + 1).await);
    }
    let mut results = Vec::new();
    for delivery in deliveries {
        results.push(resolve(delivery).await);
    }
    results
}

fn all_ok(results: &[Result<(), SinkError>]) {
    assert!(
        results.iter().all(Result::is_ok),
        "every delivery succeeds: {results:?}"
    );
}

/// The record numbers stored, each once.
fn stored_numbers(receiver: &Receiver) -> Vec<u64> {
    let mut numbers: Vec<u64> = receiver
        .rows()
        .iter()
        .map(|row| row.fields["n"].parse().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn records_are_stored_with_time_message_and_stream() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    all_ok(&send_all(&sink, 3, 5).await);

    let base = s3logd_parser_sdk::time::parse_iso8601("2024-05-06T07:08:09Z").unwrap();
    let rows = receiver.rows();
    assert_eq!(rows.len(), 15);
    for row in &rows {
        let n: i64 = row.fields["n"].parse().unwrap();
        assert_eq!(row.msg, format!("request {n}"));
        assert_eq!(
            (row.time, row.time_source),
            (base + n * 1_000, TimeSource::Rfc3339)
        );
        assert_eq!(row.stream, STREAM);
        assert_eq!(row.fields["elb"], "app/web/1");
        assert!(!row.fields.contains_key("_time") && !row.fields.contains_key("_msg"));
    }
    assert_eq!(stored_numbers(&receiver), (0..15).collect::<Vec<_>>());
    assert_eq!(receiver.counters().dropped_bodies, 0);
    for request in receiver.requests() {
        assert!(
            request.uri.starts_with("/insert/jsonline?"),
            "{}",
            request.uri
        );
        assert!(
            request.uri.contains("_msg_field=_msg") && request.uri.contains("_time_field=_time")
        );
        assert_eq!(request.headers["content-type"], "application/stream+json");
    }
    let stats = sink.sink.handle.stats();
    assert_eq!(stats.records_sent.load(Relaxed), 15);
    assert_eq!(stats.requests.load(Relaxed), receiver.counters().requests);
    assert_eq!(stats.bytes_sent.load(Relaxed), lines(0, 15).len() as u64);
}

#[tokio::test]
async fn a_base_path_and_per_sink_stream_fields_are_kept() {
    let receiver = Receiver::start_at_path("/victorialogs");
    let mut config = config(&receiver);
    config.http.url = format!("{}/victorialogs/", receiver.url());
    config.options.stream_fields = Some(vec!["log_type".into()]);
    let sink = start(config);
    all_ok(&send_all(&sink, 1, 3).await);
    let requests = receiver.requests();
    assert!(
        requests.iter().all(|request| request
            .uri
            .starts_with("/victorialogs/insert/jsonline?_stream_fields=log_type&")),
        "{:?}",
        requests.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
    assert!(
        receiver
            .rows()
            .iter()
            .all(|row| row.stream == r#"{log_type="alb"}"#)
    );
}

#[tokio::test]
async fn every_compression_round_trips() {
    for (compression, encoding) in [
        (Compression::None, None),
        (Compression::Gzip, Some("gzip")),
        (Compression::Zstd, Some("zstd")),
        (Compression::Snappy, Some("snappy")),
    ] {
        let receiver = Receiver::start();
        let mut config = config(&receiver);
        config.options.compression = compression;
        let sink = start(config);
        // One chunk, so one request, so the sizes can be compared.
        let body = lines(0, 200);
        resolve(sink.send_lines(&body, 1).await).await.unwrap();

        assert_eq!(
            stored_numbers(&receiver),
            (0..200).collect::<Vec<_>>(),
            "{compression:?}"
        );
        let requests = receiver.requests();
        let [request] = &requests[..] else {
            panic!("one request with {compression:?}");
        };
        assert_eq!(
            request
                .headers
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            encoding
        );
        assert_eq!(request.decoded_body_len, Some(body.len()));
        match compression {
            Compression::None => assert_eq!(request.body_len, body.len()),
            _ => assert!(
                request.body_len < body.len() / 4,
                "{compression:?}: {} of {}",
                request.body_len,
                body.len()
            ),
        }
    }
}

#[tokio::test]
async fn tenant_basic_auth_and_extra_headers_are_sent() {
    let receiver = Receiver::start_with_auth(Auth::Basic {
        username: "s3logd".into(),
        password: "pa:ss word".into(),
    });
    let mut config = config(&receiver);
    config.options.account_id = Some(7);
    config.options.project_id = Some(9);
    config.http.username = Some("s3logd".into());
    config.http.password = Some(Secret::new("pa:ss word"));
    config.http.headers = [("X-Source".to_owned(), Secret::new("s3logd"))].into();
    let sink = start(config);
    all_ok(&send_all(&sink, 2, 3).await);

    let rows = receiver.rows();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|row| (row.account_id, row.project_id) == (7, 9))
    );
    assert!(
        receiver
            .requests()
            .iter()
            .all(|request| request.headers["x-source"] == "s3logd")
    );
}

#[tokio::test]
async fn a_wrong_bearer_token_fails_the_records_without_retrying() {
    let receiver = Receiver::start_with_auth(Auth::Bearer("right-token".into()));
    let with_token = |token: &str| {
        let mut config = config(&receiver);
        config.http.bearer_token = Some(Secret::new(token));
        config
    };
    let sink = start(with_token("right-token"));
    all_ok(&send_all(&sink, 1, 4).await);
    assert_eq!(receiver.rows().len(), 4);

    let wrong = start(with_token("wrong-token"));
    let error = resolve(wrong.send_lines(&lines(4, 4), 5).await)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SinkError::Failed { sink, reason } if sink == "vl" && reason == "status 401 Unauthorized: Unauthorized"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("wrong-token"));
    let stats = wrong.sink.handle.stats();
    assert_eq!(stats.requests.load(Relaxed), 1);
    assert_eq!(stats.failures.load(Relaxed), 4);
    assert!(wrong.dead_letters().is_empty());
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_until_recovery() {
    let receiver = Receiver::start();
    receiver.fail_next(3, 500);
    receiver.fail_next(3, 429);
    receiver.fail_next_with_retry_after(1, 503, "1");
    let sink = start(config(&receiver));
    all_ok(&send_all(&sink, 4, 5).await);

    // Faulted requests store nothing: each record is stored exactly once.
    assert_eq!(stored_numbers(&receiver), (0..20).collect::<Vec<_>>());
    let statuses: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status != Some(200))
            .count(),
        7,
        "{statuses:?}"
    );
    let stats = sink.sink.handle.stats();
    assert_eq!(stats.retries.load(Relaxed), 7);
    assert_eq!(stats.failures.load(Relaxed), 0);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_until_it_is_up() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let sink = start(config(&receiver));
    let mut delivery = sink.send_lines(&lines(0, 10), 1).await;
    let pending = tokio::time::timeout(Duration::from_millis(500), &mut delivery).await;
    assert!(pending.is_err(), "resolved while down: {pending:?}");
    assert!(sink.sink.handle.stats().retries.load(Relaxed) >= 1);

    receiver.set_down(false);
    resolve(delivery).await.unwrap();
    assert_eq!(stored_numbers(&receiver), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_retried() {
    let receiver = Receiver::start();
    receiver.drop_connection_next(2);
    receiver.delay_next(1, Duration::from_secs(3));
    let mut config = config(&receiver);
    // Three chunks in one batch: an uncompressed body of three parts, sent
    // again whole on each attempt.
    config.batch.batch_max_age_ms = 500;
    config.http.request_timeout_secs = 1;
    let sink = start(config);
    all_ok(&send_all(&sink, 3, 10).await);
    receiver.settle(Duration::from_secs(10)).await;
    let rows = receiver.rows();
    // The delayed request was stored after the client gave up on it, so
    // its records may be there twice: at least once, never lost.
    let mut numbers: Vec<u64> = rows
        .iter()
        .map(|row| row.fields["n"].parse().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers, (0..30).collect::<Vec<_>>());
    let statuses: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[..2], [None, None]);
    assert_eq!(statuses.last(), Some(&Some(200)));
}

#[tokio::test]
async fn lines_the_receiver_refuses_go_to_the_dead_letter_output() {
    let receiver = Receiver::start();
    let sink = start(config(&receiver));
    // VictoriaLogs answers 400 only when no line of the request was valid.
    let mut bad = b"{\"_msg\":\"cut\n".to_vec();
    bad.extend_from_slice(b"not json\n");
    resolve(sink.send_lines(&bad, 41).await).await.unwrap();
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0]["line"], 41);
    assert_eq!(letters[1]["record"], "not json");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("status 400"),
        "{letters:?}"
    );
    assert_eq!(
        sink.sink.handle.stats().records_dead_lettered.load(Relaxed),
        2
    );
    // A record longer than VictoriaLogs keeps is never sent.
    let long = format!("{{\"_msg\":\"{}\"}}\n", "x".repeat(300 * 1024));
    let requests_before = receiver.counters().requests;
    resolve(sink.send_lines(long.as_bytes(), 1).await)
        .await
        .unwrap();
    assert_eq!(receiver.counters().requests, requests_before);
    assert_eq!(receiver.counters().too_long_lines, 0);
    assert_eq!(sink.dead_letters().len(), 3);
}

#[tokio::test]
async fn a_missing_ca_file_or_bad_header_stops_the_start_without_its_value() {
    let receiver = Receiver::start();
    let mut missing_ca = config(&receiver);
    missing_ca.http.tls_ca_file = Some("/nonexistent/ca.pem".into());
    let error = TestSink::try_start("vl", SinkConfig::VictoriaLogs(missing_ca))
        .err()
        .expect("a missing CA file is an error");
    assert!(
        format!("{error:#}").contains("/nonexistent/ca.pem"),
        "{error:#}"
    );
    let mut bad_header = config(&receiver);
    bad_header.http.headers = [("X-Key".to_owned(), Secret::new("secret\nvalue"))].into();
    let error = TestSink::try_start("vl", SinkConfig::VictoriaLogs(bad_header))
        .err()
        .expect("a header value with a newline is an error");
    let message = format!("{error:#}");
    assert!(
        message.contains("sink.vl.headers") && message.contains("x-key"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}
