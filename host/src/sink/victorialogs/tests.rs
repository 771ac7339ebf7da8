use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use s3logd_test_support::victorialogs::{Auth, TimeSource, VictoriaLogs as Receiver};

use super::*;
use crate::config::{Compression, Secret};

const STREAM: &str = r#"{account="123456789012",log_type="alb"}"#;
/// Generous: only a hang should hit it.
const PATIENCE: Duration = Duration::from_secs(30);

fn config(receiver: &Receiver) -> VictoriaLogsConfig {
    VictoriaLogsConfig {
        url: receiver.url(),
        compression: Compression::None,
        batch_max_age_ms: 10,
        ..VictoriaLogsConfig::default()
    }
}

fn start(config: &VictoriaLogsConfig, cancel: &CancellationToken) -> VictoriaLogs {
    let stream_fields = ["log_type", "account"].map(String::from).to_vec();
    VictoriaLogs::start(config, stream_fields, cancel.clone()).expect("the sink starts")
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

fn secret(text: &str) -> Secret {
    serde_json::from_value(serde_json::Value::from(text)).unwrap()
}

async fn resolve(delivery: Delivery) -> Result<(), SinkError> {
    tokio::time::timeout(PATIENCE, delivery)
        .await
        .expect("the delivery resolves")
}

/// Sends `chunks` chunks of `per_chunk` records and waits for every delivery.
async fn send_all(sink: &VictoriaLogs, chunks: u64, per_chunk: u64) -> Vec<Result<(), SinkError>> {
    let mut deliveries = Vec::new();
    for chunk in 0..chunks {
        deliveries.push(
            sink.send(lines(chunk * per_chunk, per_chunk), per_chunk)
                .await,
        );
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
    let cancel = CancellationToken::new();
    let sink = start(&config(&receiver), &cancel);
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
    assert_eq!(sink.stats().records_sent.load(Relaxed), 15);
    assert_eq!(
        sink.stats().requests.load(Relaxed),
        receiver.counters().requests
    );
}

#[tokio::test]
async fn every_compression_round_trips() {
    for (compression, encoding) in [
        (Compression::None, None),
        (Compression::Gzip, Some("gzip")),
        (Compression::Zstd, Some("zstd")),
    ] {
        let receiver = Receiver::start();
        let cancel = CancellationToken::new();
        let sink = start(
            &VictoriaLogsConfig {
                compression,
                ..config(&receiver)
            },
            &cancel,
        );
        // One chunk, so one request, so the sizes can be compared.
        let body = lines(0, 200);
        let body_len = body.len() as u64;
        resolve(sink.send(body, 200).await).await.unwrap();

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
        assert_eq!(request.decoded_body_len, Some(body_len as usize));
        let stats = sink.stats();
        assert_eq!(stats.bytes_sent_uncompressed.load(Relaxed), body_len);
        let compressed = stats.bytes_sent_compressed.load(Relaxed);
        match compression {
            Compression::None => assert_eq!(compressed, body_len),
            _ => assert!(
                compressed < body_len / 4,
                "{compression:?}: {compressed} of {body_len}"
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
    let cancel = CancellationToken::new();
    let sink = start(
        &VictoriaLogsConfig {
            account_id: Some(7),
            project_id: Some(9),
            username: Some("s3logd".into()),
            password: Some(secret("pa:ss word")),
            headers: [("X-Source".to_owned(), "s3logd".to_owned())].into(),
            ..config(&receiver)
        },
        &cancel,
    );
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
async fn bearer_token_is_sent_and_a_wrong_one_is_rejected_without_retrying() {
    let receiver = Receiver::start_with_auth(Auth::Bearer("right-token".into()));
    let cancel = CancellationToken::new();
    let with_token = |token: &str| VictoriaLogsConfig {
        bearer_token: Some(secret(token)),
        ..config(&receiver)
    };
    let sink = start(&with_token("right-token"), &cancel);
    all_ok(&send_all(&sink, 1, 4).await);
    assert_eq!(receiver.rows().len(), 4);

    let wrong = start(&with_token("wrong-token"), &cancel);
    let error = resolve(wrong.send(lines(4, 4), 4).await).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected { status: 401, detail } if detail == "Unauthorized"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("wrong-token"));
    assert_eq!(wrong.stats().requests.load(Relaxed), 1);
    assert_eq!(wrong.stats().failures.load(Relaxed), 1);
}

#[tokio::test]
async fn a_full_batch_of_records_is_sent_without_waiting_for_its_age() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    let sink = start(
        &VictoriaLogsConfig {
            batch_max_records: 10,
            // Far beyond PATIENCE: only the record limit can send these.
            batch_max_age_ms: 3_600_000,
            ..config(&receiver)
        },
        &cancel,
    );
    all_ok(&send_all(&sink, 6, 5).await);
    assert_eq!(receiver.counters().requests, 3);
    assert_eq!(stored_numbers(&receiver), (0..30).collect::<Vec<_>>());
}

#[tokio::test]
async fn batches_stay_within_the_byte_limit() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    let chunk_bytes = lines(0, 4).len();
    let max_bytes = chunk_bytes * 5 / 2;
    let sink = start(
        &VictoriaLogsConfig {
            batch_max_bytes: max_bytes as u64,
            batch_max_age_ms: 100,
            ..config(&receiver)
        },
        &cancel,
    );
    all_ok(&send_all(&sink, 8, 4).await);
    assert_eq!(stored_numbers(&receiver), (0..32).collect::<Vec<_>>());
    let requests = receiver.requests();
    assert!(requests.len() >= 4, "8 chunks, at most 2 per request");
    for request in requests {
        assert!(request.decoded_body_len.unwrap() <= max_bytes);
    }
}

#[tokio::test]
async fn a_lone_chunk_is_sent_when_its_batch_is_old_enough() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    let sink = start(
        &VictoriaLogsConfig {
            batch_max_age_ms: 50,
            ..config(&receiver)
        },
        &cancel,
    );
    resolve(sink.send(lines(0, 1), 1).await).await.unwrap();
    assert_eq!(stored_numbers(&receiver), [0]);
}

#[tokio::test]
async fn buffers_are_recycled_while_records_flow_and_freed_when_the_sink_is_idle() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    // Uncompressed, the chunk itself is sent; compressed, it is copied into
    // a batch buffer first.
    for (compression, batch_buffers) in [(Compression::None, 0), (Compression::Zstd, 1)] {
        let sink = start(
            &VictoriaLogsConfig {
                compression,
                ..config(&receiver)
            },
            &cancel,
        );
        let buffers = &sink.shared.buffers;
        let mut chunk = sink.buffer();
        assert!(chunk.capacity() >= SEND_BUFFER_BYTES);
        let chunk_address = chunk.as_ptr();
        chunk.extend_from_slice(&lines(0, 10));
        resolve(sink.send(chunk, 10).await).await.unwrap();
        assert_eq!(
            (buffers.chunks.kept(), buffers.batches.kept()),
            (1, batch_buffers),
            "{compression:?}: the buffers are kept for reuse"
        );
        let again = sink.buffer();
        assert_eq!(again.as_ptr(), chunk_address, "{compression:?}");
        buffers.chunks.give(again);

        tokio::time::sleep(batch::RELEASE_BUFFERS_AFTER + Duration::from_millis(500)).await;
        assert_eq!(
            (buffers.chunks.kept(), buffers.batches.kept()),
            (0, 0),
            "{compression:?}: an idle sink holds no buffers"
        );
    }
    let stored = stored_numbers(&receiver);
    assert_eq!(stored, (0..10).flat_map(|n| [n, n]).collect::<Vec<u64>>());
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_until_recovery() {
    let receiver = Receiver::start();
    receiver.fail_next(3, 500);
    receiver.fail_next(3, 429);
    receiver.fail_next(1, 503);
    let cancel = CancellationToken::new();
    let sink = start(&config(&receiver), &cancel);
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
    assert_eq!(sink.stats().retries.load(Relaxed), 7);
    assert_eq!(sink.stats().failures.load(Relaxed), 0);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_until_it_is_up() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let cancel = CancellationToken::new();
    let sink = start(&config(&receiver), &cancel);
    let mut delivery = sink.send(lines(0, 10), 10).await;
    let pending = tokio::time::timeout(Duration::from_millis(500), &mut delivery).await;
    assert!(pending.is_err(), "resolved while down: {pending:?}");
    assert!(sink.stats().retries.load(Relaxed) >= 1);

    receiver.set_down(false);
    resolve(delivery).await.unwrap();
    assert_eq!(stored_numbers(&receiver), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let receiver = Receiver::start();
    receiver.drop_connection_next(2);
    let cancel = CancellationToken::new();
    // Three chunks in one batch: an uncompressed body of three parts, sent
    // again whole on each attempt.
    let sink = start(
        &VictoriaLogsConfig {
            batch_max_age_ms: 500,
            ..config(&receiver)
        },
        &cancel,
    );
    all_ok(&send_all(&sink, 3, 10).await);
    assert_eq!(stored_numbers(&receiver), (0..30).collect::<Vec<_>>());
    let statuses: Vec<Option<u16>> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [None, None, Some(200)]);
}

#[tokio::test]
async fn a_rejected_batch_fails_only_its_own_deliveries() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    let sink = start(&config(&receiver), &cancel);
    for (round, status) in [400u16, 401, 403, 413].into_iter().enumerate() {
        let requests_before = receiver.counters().requests;
        receiver.fail_next(1, status);
        let first = round as u64 * 20;
        let rejected = resolve(sink.send(lines(first, 10), 10).await).await;
        assert_eq!(
            rejected,
            Err(SinkError::Rejected {
                status,
                detail: "scripted fault".into()
            })
        );
        assert_eq!(
            receiver.counters().requests,
            requests_before + 1,
            "not retried"
        );
        resolve(sink.send(lines(first + 10, 10), 10).await)
            .await
            .unwrap();
    }
    let stored: BTreeSet<u64> = stored_numbers(&receiver).into_iter().collect();
    let expected: BTreeSet<u64> = (0..4)
        .flat_map(|round| round * 20 + 10..round * 20 + 20)
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(sink.stats().failures.load(Relaxed), 4);
}

#[tokio::test]
async fn cancelling_while_retrying_resolves_cancelled_promptly() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let cancel = CancellationToken::new();
    let sink = start(&config(&receiver), &cancel);
    let delivery = sink.send(lines(0, 10), 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), delivery)
        .await
        .expect("cancellation ends the retries at once");
    assert_eq!(result, Err(SinkError::Cancelled));
    assert_eq!(
        resolve(sink.send(lines(10, 1), 1).await).await,
        Err(SinkError::Cancelled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_send_waits_while_the_buffers_are_full() {
    const CHUNKS: u64 = 20;
    let receiver = Receiver::start();
    receiver.set_down(true);
    let chunk_bytes = lines(0, 5).len() as u64;
    let cancel = CancellationToken::new();
    let sink = start(
        &VictoriaLogsConfig {
            batch_max_bytes: chunk_bytes * 2,
            max_requests_in_flight: 1,
            ..config(&receiver)
        },
        &cancel,
    );
    let handed_over = Arc::new(AtomicU64::new(0));
    let sender = {
        let (sink, handed_over) = (sink.clone(), handed_over.clone());
        tokio::task::spawn_blocking(move || {
            (0..CHUNKS)
                .map(|chunk| {
                    let delivery = sink.blocking_send(lines(chunk * 5, 5), 5);
                    handed_over.fetch_add(1, Relaxed);
                    delivery
                })
                .collect::<Vec<_>>()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let while_down = handed_over.load(Relaxed);
    assert!(
        (1..CHUNKS).contains(&while_down),
        "{while_down} of {CHUNKS} chunks handed over while nothing could be delivered"
    );

    receiver.set_down(false);
    let deliveries = tokio::time::timeout(PATIENCE, sender)
        .await
        .expect("the sender finishes once the receiver is up")
        .unwrap();
    for delivery in deliveries {
        resolve(delivery).await.unwrap();
    }
    assert_eq!(
        stored_numbers(&receiver),
        (0..CHUNKS * 5).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_missing_ca_file_or_bad_header_stops_the_start() {
    let receiver = Receiver::start();
    let cancel = CancellationToken::new();
    let stream_fields = Vec::new();
    let missing_ca = VictoriaLogsConfig {
        tls_ca_file: Some("/nonexistent/ca.pem".into()),
        ..config(&receiver)
    };
    let error = VictoriaLogs::start(&missing_ca, stream_fields.clone(), cancel.clone())
        .err()
        .expect("a missing CA file is an error");
    assert!(
        error.to_string().contains("/nonexistent/ca.pem"),
        "{error:#}"
    );
    let bad_header = VictoriaLogsConfig {
        headers: [("X-Key".to_owned(), "secret\nvalue".to_owned())].into(),
        ..config(&receiver)
    };
    let error = VictoriaLogs::start(&bad_header, stream_fields, cancel)
        .err()
        .expect("a header value with a newline is an error");
    let message = format!("{error:#}");
    assert!(
        message.contains("X-Key") || message.contains("x-key"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}
