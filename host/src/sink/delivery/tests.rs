//! The shared machinery against a store scripted in the test: what it is
//! sent, in which requests, and what each caller learns, for every kind of
//! answer a store can give.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::sink::testing::{PATIENCE, origin, resolve};

/// A store that answers each request with what `answer` says of its
/// records, and remembers every request.
struct Scripted<F> {
    answer: F,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
}

impl<F: Fn(&[String]) -> Answer + Send + Sync + 'static> Store for Scripted<F> {
    async fn send(&self, records: &Records) -> Answer {
        let texts: Vec<String> = records
            .iter()
            .map(|record| String::from_utf8(record.bytes.to_vec()).unwrap())
            .collect();
        self.requests.lock().unwrap().push(texts.clone());
        (self.answer)(&texts)
    }
}

struct Started {
    handle: Handle,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
    cancel: CancellationToken,
    dead_letters: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Started {
    fn requests(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }

    fn dead_letters(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.dead_letters)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Hands over records named `prefix0`, `prefix1`, … one per line.
    async fn send(&self, prefix: &str, count: usize) -> Delivery {
        let mut encoded = Encoded::new(self.handle.buffer(), Arc::new(origin(prefix)));
        for n in 0..count {
            encoded
                .bytes()
                .extend_from_slice(format!("{prefix}{n}").as_bytes());
            encoded.end_record(n as u64 + 1, None, "");
        }
        self.handle.send(encoded).await
    }

    fn blocking_send(&self, prefix: &str, count: usize) -> Delivery {
        self.handle
            .shared
            .runtime
            .clone()
            .block_on(self.send(prefix, count))
    }
}

fn batch(max_records: u64) -> BatchConfig {
    BatchConfig {
        batch_max_records: max_records,
        batch_max_age_ms: 10,
        ..BatchConfig::default()
    }
}

fn start(
    batch: BatchConfig,
    answer: impl Fn(&[String]) -> Answer + Send + Sync + 'static,
) -> Started {
    start_with_dead_letters(batch, answer, |dir| dir.join("dead.ndjson"))
}

fn start_with_dead_letters(
    batch: BatchConfig,
    answer: impl Fn(&[String]) -> Answer + Send + Sync + 'static,
    dead_letters: impl FnOnce(&std::path::Path) -> std::path::PathBuf,
) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dead_letters(dir.path());
    let requests = Arc::default();
    let cancel = CancellationToken::new();
    let handle = start_store(
        Scripted {
            answer,
            requests: Arc::clone(&requests),
        },
        Settings {
            name: "scripted",
            batch: &batch,
            dead_letter: DeadLetter::file(&dead_letters),
            cancel: cancel.clone(),
            runtime: tokio::runtime::Handle::current(),
        },
    );
    Started {
        handle,
        requests,
        cancel,
        dead_letters,
        _dir: dir,
    }
}

use super::start as start_store;

fn refuse_containing(poison: &'static str) -> impl Fn(&[String]) -> Answer {
    move |records| {
        if records.iter().any(|record| record == poison) {
            Answer::Refused {
                reason: format!("{poison} is poison"),
            }
        } else {
            Answer::Stored
        }
    }
}

#[tokio::test]
async fn a_refused_request_is_halved_down_to_the_record_refused_alone() {
    let sink = start(batch(100), refuse_containing("b3"));
    let a = sink.send("a", 4).await;
    let b = sink.send("b", 4).await;
    let c = sink.send("c", 4).await;
    for delivery in [a, b, c] {
        assert_eq!(resolve(delivery).await, Ok(()));
    }
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["record"], "b3");
    assert_eq!(letter["key"], "b");
    assert_eq!(letter["line"], 4);
    assert_eq!(letter["sink"], "scripted");
    assert_eq!(letter["reason"], "b3 is poison");
    // Every other record was stored exactly once.
    let stored: Vec<String> = sink
        .requests()
        .into_iter()
        .filter(|request| !request.contains(&"b3".to_owned()))
        .flatten()
        .collect();
    let mut expected: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|p| (0..4).map(move |n| format!("{p}{n}")))
        .filter(|record| record != "b3")
        .collect();
    let mut sorted = stored.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    // 12 records: the whole, then halves down to one record of four requests.
    assert!(sink.requests().len() <= 1 + 2 * 4, "{:?}", sink.requests());
    let stats = sink.handle.stats();
    assert_eq!(stats.records_sent.load(Relaxed), 11);
    assert_eq!(stats.records_dead_lettered.load(Relaxed), 1);
    assert_eq!(stats.failures.load(Relaxed), 0);
}

#[tokio::test]
async fn a_request_too_large_is_split_and_a_record_too_large_alone_is_dead_lettered() {
    let sink = start(batch(100), |records: &[String]| {
        if records.len() > 3 || records.iter().any(|record| record == "x5") {
            Answer::TooLarge {
                reason: "413".into(),
            }
        } else {
            Answer::Stored
        }
    });
    assert_eq!(resolve(sink.send("x", 10).await).await, Ok(()));
    let requests = sink.requests();
    let stored: usize = requests
        .iter()
        .filter(|request| request.len() <= 3 && !request.contains(&"x5".to_owned()))
        .map(Vec::len)
        .sum();
    assert_eq!(stored, 9);
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["record"], "x5");
}

#[tokio::test]
async fn per_record_answers_retry_exactly_the_records_asked_for() {
    let attempts = AtomicU64::new(0);
    let sink = start(batch(100), move |records: &[String]| {
        if attempts.fetch_add(1, Relaxed) == 0 {
            Answer::PerRecord(
                records
                    .iter()
                    .map(|record| match record.as_str() {
                        "r1" | "r4" => {
                            RecordAnswer::Retry("429 es_rejected_execution_exception".into())
                        }
                        "r2" => RecordAnswer::Refused("400 mapper_parsing_exception".into()),
                        _ => RecordAnswer::Stored,
                    })
                    .collect(),
            )
        } else {
            Answer::Stored
        }
    });
    assert_eq!(resolve(sink.send("r", 5).await).await, Ok(()));
    let requests = sink.requests();
    assert_eq!(
        requests,
        [vec!["r0", "r1", "r2", "r3", "r4"], vec!["r1", "r4"]]
            .map(|request| request.into_iter().map(String::from).collect::<Vec<_>>())
    );
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0]["record"].as_str(), letters[0]["reason"].as_str()),
        (Some("r2"), Some("400 mapper_parsing_exception"))
    );
    let stats = sink.handle.stats();
    assert_eq!(stats.records_sent.load(Relaxed), 4);
    assert_eq!(stats.retries.load(Relaxed), 1);
}

#[tokio::test]
async fn a_failed_request_fails_its_callers_and_no_record_is_dead_lettered() {
    let sink = start(batch(4), |records: &[String]| {
        if records.iter().any(|record| record.starts_with('f')) {
            Answer::Failed {
                reason: "status 401 Unauthorized".into(),
            }
        } else {
            Answer::Stored
        }
    });
    // Four records a batch: `f` fills one batch, `g` the next.
    let failing = sink.send("f", 4).await;
    let passing = sink.send("g", 4).await;
    let error = resolve(failing).await.unwrap_err();
    assert_eq!(
        error,
        SinkError::Failed {
            sink: "scripted".into(),
            reason: "status 401 Unauthorized".into()
        }
    );
    assert_eq!(resolve(passing).await, Ok(()));
    assert!(sink.dead_letters().is_empty());
    assert_eq!(sink.handle.stats().failures.load(Relaxed), 4);
}

#[tokio::test]
async fn a_store_that_panics_fails_its_callers_and_the_sink_goes_on() {
    let sink = start(batch(4), |records: &[String]| {
        assert!(
            !records.iter().any(|record| record.starts_with('p')),
            "compressing the batch panicked"
        );
        Answer::Stored
    });
    let panicking = sink.send("p", 4).await;
    let error = resolve(panicking).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Panicked { reason, .. }
            if reason.contains("compressing the batch panicked")),
        "{error}"
    );
    assert_eq!(sink.handle.stats().failures.load(Relaxed), 4);
    let passing = sink.send("g", 4).await;
    assert_eq!(resolve(passing).await, Ok(()));
}

#[tokio::test]
async fn a_failing_dead_letter_output_fails_only_the_caller_whose_record_was_refused() {
    let sink = start_with_dead_letters(batch(100), refuse_containing("b1"), |dir| {
        dir.join("missing-dir/dead.ndjson")
    });
    let a = sink.send("a", 3).await;
    let b = sink.send("b", 3).await;
    assert_eq!(resolve(a).await, Ok(()));
    let error = resolve(b).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::DeadLetter { sink, reason } if sink == "scripted" && reason.contains("missing-dir")),
        "{error:?}"
    );
}

#[tokio::test]
async fn records_longer_than_the_store_takes_are_dead_lettered_unsent() {
    let sink = start(
        BatchConfig {
            max_record_bytes: 2,
            ..batch(100)
        },
        |_: &[String]| Answer::Stored,
    );
    // "l0" … "l9" fit, "l10" and "l11" do not.
    assert_eq!(resolve(sink.send("l", 12).await).await, Ok(()));
    let sent: Vec<String> = sink.requests().into_iter().flatten().collect();
    assert_eq!(sent.len(), 10);
    assert!(!sent.contains(&"l10".to_owned()));
    let letters = sink.dead_letters();
    assert_eq!(letters.len(), 2);
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("longer than the sink's max_record_bytes (2)"),
        "{letters:?}"
    );
}

#[tokio::test]
async fn retries_wait_and_go_on_until_the_store_takes_the_records() {
    let attempts = AtomicU64::new(0);
    let sink = start(batch(100), move |_: &[String]| {
        if attempts.fetch_add(1, Relaxed) < 3 {
            Answer::Retry {
                reason: "status 503".into(),
                retry_after: None,
            }
        } else {
            Answer::Stored
        }
    });
    assert_eq!(resolve(sink.send("r", 5).await).await, Ok(()));
    assert_eq!(sink.requests().len(), 4);
    let stats = sink.handle.stats();
    assert_eq!(
        (
            stats.retries.load(Relaxed),
            stats.records_sent.load(Relaxed)
        ),
        (3, 5)
    );
}

#[tokio::test]
async fn cancelling_while_retrying_resolves_cancelled_promptly() {
    let sink = start(batch(100), |_: &[String]| Answer::Retry {
        reason: "down".into(),
        retry_after: Some(Duration::from_secs(3600)),
    });
    let delivery = sink.send("c", 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    sink.cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), delivery)
        .await
        .expect("cancellation ends the retries at once");
    assert_eq!(result, Err(SinkError::Cancelled));
    assert_eq!(
        resolve(sink.send("d", 1).await).await,
        Err(SinkError::Cancelled)
    );
}

#[tokio::test]
async fn a_full_batch_is_sent_without_waiting_for_its_age() {
    let sink = start(
        BatchConfig {
            batch_max_records: 10,
            // Far beyond PATIENCE: only the record limit can send these.
            batch_max_age_ms: 3_600_000,
            ..BatchConfig::default()
        },
        |_: &[String]| Answer::Stored,
    );
    let mut deliveries = Vec::new();
    for chunk in 0..6 {
        deliveries.push(sink.send(&format!("c{chunk}-"), 5).await);
    }
    for delivery in deliveries {
        assert_eq!(resolve(delivery).await, Ok(()));
    }
    let sizes: Vec<usize> = sink.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 10]);
}

#[tokio::test]
async fn batches_stay_within_the_byte_limit_and_a_larger_chunk_is_sent_in_parts() {
    // Records of 3 bytes ("b00"); a chunk of 4 is 12 bytes.
    let sink = start(
        BatchConfig {
            batch_max_bytes: 30,
            ..batch(1000)
        },
        |_: &[String]| Answer::Stored,
    );
    let mut deliveries = Vec::new();
    for chunk in 0..8 {
        deliveries.push(sink.send(&format!("{chunk}b"), 4).await);
    }
    // One chunk of 20 records (60 bytes) alone exceeds the limit.
    deliveries.push(sink.send("zz", 20).await);
    for delivery in deliveries {
        assert_eq!(resolve(delivery).await, Ok(()));
    }
    let requests = sink.requests();
    let records: usize = requests.iter().map(Vec::len).sum();
    assert_eq!(records, 8 * 4 + 20);
    for request in &requests {
        let bytes: usize = request.iter().map(String::len).sum();
        assert!(bytes <= 30, "{request:?}");
    }
}

#[tokio::test]
async fn a_lone_chunk_is_sent_when_its_batch_is_old_enough() {
    let sink = start(batch(1000), |_: &[String]| Answer::Stored);
    assert_eq!(resolve(sink.send("lone", 1).await).await, Ok(()));
    assert_eq!(sink.requests(), [vec!["lone0".to_owned()]]);
}

#[tokio::test]
async fn buffers_are_recycled_while_records_flow_and_freed_when_the_sink_is_idle() {
    let sink = start(batch(1000), |_: &[String]| Answer::Stored);
    let buffers = &sink.handle.shared.buffers;
    let buffer = sink.handle.buffer();
    assert!(buffer.capacity() >= SEND_BUFFER_BYTES);
    let address = buffer.as_ptr();
    let mut encoded = Encoded::new(buffer, Arc::new(origin("k")));
    encoded.bytes().extend_from_slice(b"one");
    encoded.end_record(1, None, "");
    assert_eq!(resolve(sink.handle.send(encoded).await).await, Ok(()));
    assert_eq!(buffers.chunks.kept(), 1, "the buffer is kept for reuse");
    let again = sink.handle.buffer();
    assert_eq!(again.as_ptr(), address);
    buffers.chunks.give(again);

    tokio::time::sleep(batch::RELEASE_BUFFERS_AFTER + Duration::from_millis(500)).await;
    assert_eq!(buffers.chunks.kept(), 0, "an idle sink holds no buffers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_send_waits_while_the_buffers_are_full() {
    const CHUNKS: u64 = 20;
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sink = Arc::new(start(
        BatchConfig {
            batch_max_bytes: 1024,
            max_requests_in_flight: 1,
            ..batch(1000)
        },
        {
            let up = up.clone();
            move |_: &[String]| {
                if up.load(Relaxed) {
                    Answer::Stored
                } else {
                    Answer::Retry {
                        reason: "down".into(),
                        retry_after: None,
                    }
                }
            }
        },
    ));
    let handed_over = Arc::new(AtomicU64::new(0));
    let sender = {
        let (sink, handed_over) = (sink.clone(), handed_over.clone());
        tokio::task::spawn_blocking(move || {
            (0..CHUNKS)
                .map(|chunk| {
                    // 100 records of 5 bytes: half a batch each.
                    let delivery = sink.blocking_send(&format!("{chunk:03}-"), 100);
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
    up.store(true, Relaxed);
    let deliveries = tokio::time::timeout(PATIENCE, sender)
        .await
        .expect("the sender finishes once the store is up")
        .unwrap();
    for delivery in deliveries {
        assert_eq!(resolve(delivery).await, Ok(()));
    }
    assert_eq!(sink.handle.stats().records_sent.load(Relaxed), CHUNKS * 100);
}
