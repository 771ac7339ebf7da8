//! `s3logd run` with several sinks, against moto_server and the stores'
//! receivers: every record reaches every sink it is routed to, a message
//! stays until each of them has all of its records, and records a store
//! refuses for good end up in the dead-letter output.

mod common;

use std::time::Duration;

use common::{Harness, Notify, WAIT, alb_key, wait_for_lines};
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
