//! A quick end-to-end check of `s3logd run`: one gzip ALB object announced
//! through a real moto S3 → SQS notification reaches the VictoriaLogs
//! receiver with its enrichment fields, the message is deleted afterwards,
//! the metrics say so, and SIGTERM stops the process cleanly. The fault
//! scenarios have their own test files.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use flate2::Compression;
use flate2::write::GzEncoder;
use s3logd_test_support::alb;
use s3logd_test_support::moto::{self, MotoServer, QueueCounts};
use s3logd_test_support::victorialogs::{TimeSource, VictoriaLogs};

const BUCKET: &str = "alb-logs";
const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/123456789012_elasticloadbalancing_us-east-1_app.web-prod.50dc6c495c0c9188_20240501T0005Z_10.0.1.7_4x2k9f.log.gz";
const LINES: usize = 300;

/// Kills the collector if the test fails before stopping it.
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// `GET path` over plain HTTP/1.0: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alb_object_from_moto_reaches_victorialogs_and_its_message_is_deleted() {
    let moto = MotoServer::start();
    let receiver = VictoriaLogs::start();
    moto.create_bucket(BUCKET).await;
    let queue = moto.create_queue("s3logd", Duration::from_secs(30)).await;
    moto.notify_queue_on_object_created(BUCKET, &queue).await;

    let text = alb::lines(7, LINES);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(text.as_bytes()).unwrap();
    let gzip = gzip.finish().unwrap();
    // Stored with Content-Encoding: gzip, as some uploaders do: the
    // collector must read the gzip bytes, not a copy its HTTP client
    // already decompressed.
    moto.s3()
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .content_encoding("gzip")
        .body(ByteStream::from(gzip.clone()))
        .send()
        .await
        .expect("put the ALB object");

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("s3logd.toml");
    let metrics_port = free_port();
    std::fs::write(
        &config_path,
        format!(
            r#"
[queue]
url = "{queue_url}"
wait_time_secs = 1
visibility_timeout_secs = 30
heartbeat_interval_secs = 10

[aws]
region = "{region}"
endpoint_url = "{endpoint}"

[sink.victorialogs]
url = "{sink}"
compression = "none"
batch_max_age_ms = 100

[metrics]
listen = "127.0.0.1:{metrics_port}"

[shutdown]
grace_period_secs = 5
"#,
            queue_url = queue.url,
            region = moto::REGION,
            endpoint = moto.endpoint(),
            sink = receiver.url(),
        ),
    )
    .unwrap();

    let child = moto::aws_env(
        Command::new(env!("CARGO_BIN_EXE_s3logd"))
            .args(["run", "--config"])
            .arg(&config_path),
    )
    .stdin(Stdio::null())
    .spawn()
    .expect("start s3logd run");
    let mut collector = Collector(child);

    let rows = receiver.wait_for_rows(LINES, Duration::from_secs(60)).await;
    assert_eq!(rows.len(), LINES);
    let sent: BTreeSet<&str> = text.lines().collect();
    let stored: BTreeSet<&str> = rows.iter().map(|row| row.msg.as_str()).collect();
    assert_eq!(stored, sent, "every line arrives once as _msg");
    for row in &rows {
        assert_eq!(row.time_source, TimeSource::Rfc3339, "{row:?}");
        assert_eq!(row.fields["bucket"], BUCKET);
        assert_eq!(row.fields["key"], KEY);
        assert_eq!(row.fields["log_type"], "alb");
        assert_eq!(row.fields["account"], "123456789012");
        assert_eq!(row.fields["region"], "us-east-1");
        assert_eq!(row.fields["load_balancer"], "app/web-prod/50dc6c495c0c9188");
        assert!(
            row.stream
                .contains("load_balancer=\"app/web-prod/50dc6c495c0c9188\"")
                && row.stream.contains("log_type=\"alb\""),
            "{}",
            row.stream
        );
    }

    // The object's message and the test event are both deleted.
    moto.wait_for_queue_counts(
        &queue,
        QueueCounts {
            visible: 0,
            not_visible: 0,
        },
        Duration::from_secs(30),
    )
    .await;

    let (status, _) = http_get(metrics_port, "/readyz").expect("/readyz answers");
    assert_eq!(status, 200);
    let (status, metrics) = http_get(metrics_port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    assert_eq!(sample(&metrics, "s3logd_messages_deleted_total"), 2);
    assert_eq!(sample(&metrics, "s3logd_test_events_total"), 1);
    assert_eq!(sample(&metrics, "s3logd_objects_processed_total"), 1);
    assert_eq!(sample(&metrics, "s3logd_records_total"), LINES as u64);
    assert_eq!(
        sample(&metrics, "s3logd_sink_records_total{sink=\"victorialogs\"}"),
        LINES as u64
    );
    assert_eq!(
        sample(&metrics, "s3logd_bytes_read_total"),
        gzip.len() as u64,
        "the object is read as stored, not decompressed by the HTTP client"
    );
    assert_eq!(sample(&metrics, "s3logd_messages_in_flight"), 0);

    let pid = collector.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = collector.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "s3logd did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "s3logd exited with {status}");
}
