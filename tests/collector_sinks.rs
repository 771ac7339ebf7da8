//! `s3logd run` with several sinks, against moto_server and the stores'
//! receivers: every record reaches every sink it is routed to, a message
//! stays until each of them has all of its records, and records a store
//! refuses for good, and lines that give no record, end up in the
//! dead-letter output.

mod common;

use std::time::Duration;

use common::{BUCKET, Harness, LogObject, Notify, WAIT, alb_key, gzip, wait_for_lines};
use s3logd_test_support::elasticsearch::Elasticsearch;
use s3logd_test_support::loki::Loki;
use s3logd_test_support::moto::QueueCounts;

const QUEUE_VISIBILITY: Duration = Duration::from_secs(30);
const ONE_HELD: QueueCounts = QueueCounts {
    visible: 0,
    not_visible: 1,
};

fn elasticsearch_sink(receiver: &Elasticsearch) -> String {
    format!(
        "[sink.es]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"alb-%Y.%m.%d\"\nbatch_max_age_ms = 100\n",
        receiver.url()
    )
}

#[tokio::test]
async fn with_one_sink_down_the_message_stays_until_it_recovers() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let elasticsearch = Elasticsearch::start();
    elasticsearch.set_down(true);
    let object = harness.upload_alb(&alb_key(1), 1, 200).await;
    let mut settings = harness.settings();
    settings.extra = elasticsearch_sink(&elasticsearch);
    let collector = harness.run(&settings).await;

    // VictoriaLogs has every record, Elasticsearch none: the message is held.
    wait_for_lines(&harness.receiver, &[&object]).await;
    harness.wait_for_queue(ONE_HELD).await;
    let metrics = collector
        .wait_for_metric("s3logd_sink_retries_total{sink=\"es\"}", 1.0)
        .await;
    assert_eq!(
        metrics.value("s3logd_messages_deleted_total"),
        1.0,
        "the test event only"
    );

    elasticsearch.set_down(false);
    elasticsearch
        .wait_for_documents(object.lines.len(), WAIT)
        .await;
    harness.wait_for_empty_queue().await;
    // Parsed once, encoded for each sink: each has every line once.
    let mut messages: Vec<String> = elasticsearch
        .documents()
        .iter()
        .map(|document| document.source["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    let mut lines = object.lines.clone();
    lines.sort();
    assert_eq!(messages, lines);
    assert_eq!(harness.receiver.rows().len(), object.lines.len());
    let metrics = collector.metrics().await;
    for sink in ["victorialogs", "es"] {
        assert_eq!(
            metrics.value(&format!("s3logd_sink_records_total{{sink=\"{sink}\"}}")),
            object.lines.len() as f64,
            "{sink}"
        );
    }
    assert_eq!(metrics.value("s3logd_messages_deleted_total"), 2.0);
}

#[tokio::test]
async fn a_route_sends_its_records_only_to_the_sinks_it_names() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let elasticsearch = Elasticsearch::start();
    let object = harness.upload_alb(&alb_key(1), 2, 50).await;
    let mut settings = harness.settings();
    settings.extra = format!(
        "{}\n[[routes]]\nkey_regex = 'elasticloadbalancing'\nparser = 'alb'\nsinks = ['es']\n",
        elasticsearch_sink(&elasticsearch)
    );
    let collector = harness.run(&settings).await;
    elasticsearch
        .wait_for_documents(object.lines.len(), WAIT)
        .await;
    harness.wait_for_empty_queue().await;
    assert!(harness.receiver.rows().is_empty());
    let metrics = collector.metrics().await;
    assert_eq!(
        metrics.value("s3logd_sink_records_total{sink=\"victorialogs\"}"),
        0.0
    );
}

#[tokio::test]
async fn records_a_store_refuses_go_to_the_dead_letter_file_and_the_message_is_deleted() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    // The generated ALB records are from 2024: far older than Loki takes.
    let loki = Loki::start();
    let object = harness.upload_alb(&alb_key(1), 3, 20).await;
    let dead_letters = tempfile::tempdir().unwrap();
    let path = dead_letters.path().join("dead.ndjson");
    let mut settings = harness.settings();
    settings.extra = format!(
        "[sink.loki]\nurl = \"{}\"\nbatch_max_age_ms = 100\n[dead_letter]\npath = \"{}\"\n",
        loki.url(),
        path.display()
    );
    let collector = harness.run(&settings).await;
    harness.wait_for_empty_queue().await;
    wait_for_lines(&harness.receiver, &[&object]).await;
    assert!(loki.entries().is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    let letters: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut lines: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=object.lines.len() as u64).collect::<Vec<_>>());
    for letter in &letters {
        assert_eq!(letter["sink"], "loki");
        assert_eq!(letter["key"], object.key);
        assert!(
            letter["reason"].as_str().unwrap().contains("too old"),
            "{letter}"
        );
    }
    let metrics = collector.metrics().await;
    assert_eq!(
        metrics.value("s3logd_sink_dead_lettered_total{sink=\"loki\"}"),
        object.lines.len() as f64
    );
}

#[tokio::test]
async fn lines_that_give_no_record_are_in_the_dead_letter_file_before_the_message_is_deleted() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let good = LogObject::alb(&alb_key(1), 4, 6);
    let many_fields = "garbage ".repeat(10);
    let short = "short garbage".to_owned();
    // Longer than a batch (256 KiB), so that the line limit applies.
    let too_long = "z".repeat(300_000);
    let mut lines = good.lines.clone();
    lines.insert(2, many_fields.clone());
    lines.insert(5, too_long.clone());
    lines.insert(7, short.clone());
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    harness
        .moto
        .put_object(BUCKET, &good.key, gzip(&text))
        .await;
    let dead_letters = tempfile::tempdir().unwrap();
    let path = dead_letters.path().join("dead.ndjson");
    let mut settings = harness.settings();
    settings.extra = format!(
        "[objects]\nmax_line_bytes = 65536\n[dead_letter]\npath = \"{}\"\nmax_line_bytes = 64\n",
        path.display()
    );
    let collector = harness.run(&settings).await;

    wait_for_lines(&harness.receiver, &[&good]).await;
    harness.wait_for_empty_queue().await;
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kept: Vec<(u64, &str)> = letters
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            (3, &many_fields[..64]),
            (6, &too_long[..64]),
            (8, &short[..])
        ]
    );
    for letter in &letters {
        assert_eq!(letter["parser"], "alb", "{letter}");
        assert_eq!(letter["bucket"], BUCKET, "{letter}");
        assert_eq!(letter["key"], good.key, "{letter}");
    }
    assert_eq!(
        letters[1]["reason"],
        "line of 300000 bytes is longer than the limit of 65536 bytes"
    );
    for letter in [&letters[0], &letters[2]] {
        assert!(
            letter["reason"].as_str().unwrap().contains("fields"),
            "{letter}"
        );
    }
    let metrics = collector.metrics().await;
    assert_eq!(metrics.value("s3logd_parse_errors_total"), 3.0);
}

#[tokio::test]
async fn a_message_whose_failed_lines_cannot_be_dead_lettered_stays() {
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let good = LogObject::alb(&alb_key(1), 5, 3);
    let text = format!("{}garbage\n", good.text());
    harness
        .moto
        .put_object(BUCKET, &good.key, gzip(&text))
        .await;
    let mut settings = harness.settings();
    settings.extra = "[dead_letter]\npath = \"/nonexistent/dead.ndjson\"\n".to_owned();
    let collector = harness.run(&settings).await;

    wait_for_lines(&harness.receiver, &[&good]).await;
    let metrics = collector
        .wait_for_metric(r#"s3logd_objects_failed_total{reason="sink"}"#, 1.0)
        .await;
    harness.wait_for_queue(ONE_HELD).await;
    assert_eq!(
        metrics.value("s3logd_messages_deleted_total"),
        1.0,
        "the test event only"
    );
}

/// One record a store refuses, in a batch with the records of five other
/// messages: the store answers the whole request 400 (as Elasticsearch does
/// for a body it cannot take, or a gateway in front of it), the sink sends
/// halves apart down to the refused record, that record goes to the
/// dead-letter output, and all six messages are deleted with every other
/// record stored.
#[tokio::test]
async fn one_refused_record_does_not_fail_the_messages_batched_with_it() {
    const POISON: &str = "POISON-";
    let harness = Harness::start(Notify::Queue, QUEUE_VISIBILITY).await;
    let mut objects = Vec::new();
    for n in 1..=5 {
        objects.push(harness.upload_alb(&alb_key(n), u64::from(n), 20).await);
    }
    let mut poisoned = LogObject::alb(&alb_key(6), 6, 20);
    // In the request line's method: the line still parses, its record carries it.
    poisoned.lines[7] = poisoned.lines[7].replacen(" \"", &format!(" \"{POISON}"), 1);
    harness
        .moto
        .put_object(BUCKET, &poisoned.key, gzip(&poisoned.text()))
        .await;
    let elasticsearch = Elasticsearch::start();
    elasticsearch.refuse_bodies_containing(POISON, 400);
    let dead_letters = tempfile::tempdir().unwrap();
    let path = dead_letters.path().join("dead.ndjson");
    let mut settings = harness.settings();
    settings.concurrency = 6;
    // Old enough a batch for all six objects' records to share it.
    settings.extra = elasticsearch_sink(&elasticsearch)
        .replace("batch_max_age_ms = 100", "batch_max_age_ms = 2000")
        + &format!("[dead_letter]\npath = \"{}\"\n", path.display());
    let _collector = harness.run(&settings).await;
    let expected = objects
        .iter()
        .map(|object| object.lines.len())
        .sum::<usize>()
        + poisoned.lines.len()
        - 1;
    elasticsearch.wait_for_documents(expected, WAIT).await;
    harness.wait_for_empty_queue().await;

    let mut messages: Vec<String> = elasticsearch
        .documents()
        .iter()
        .map(|document| document.source["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    let mut lines: Vec<String> = objects
        .iter()
        .chain([&poisoned])
        .flat_map(|object| object.lines.iter().cloned())
        .filter(|line| !line.contains(POISON))
        .collect();
    lines.sort();
    assert_eq!(messages, lines);

    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["sink"], "es");
    assert_eq!(letters[0]["key"], poisoned.key);
    assert_eq!(letters[0]["line"], 8);
    assert!(
        letters[0]["record"].to_string().contains(POISON),
        "{}",
        letters[0]
    );
    let requests = elasticsearch.requests();
    let refused = requests
        .iter()
        .filter(|request| request.status == Some(400))
        .count();
    // The first refused request held more than the one record: halving
    // took it apart.
    assert!(
        refused >= 2,
        "{refused} refused requests of {}",
        requests.len()
    );
}
