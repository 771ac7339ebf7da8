//! Shared set-up of the collector's black-box tests: a real moto_server with
//! a bucket and a queue it notifies, a VictoriaLogs receiver, gzipped ALB
//! objects, a configuration file, and `s3logd run` as a child process whose
//! `/metrics` the tests read. Every wait is bounded so that a broken
//! collector fails a test instead of hanging the suite.
//!
//! The collector tests and the benchmarks of `s3logd run` (full path, soak)
//! include this module, as do the listener's test and bench for [`listen`];
//! each uses only part of it.
#![allow(dead_code)]

pub mod formats;
pub mod listen;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use flate2::Compression;
use flate2::write::GzEncoder;
use s3logd_test_support::moto::{self, MotoServer, Queue, QueueCounts, SnsDelivery};
use s3logd_test_support::victorialogs::{StoredRow, VictoriaLogs};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BUCKET: &str = "alb-logs";
pub const ACCOUNT: &str = "123456789012";
/// The region in the generated keys (the ALB's), not moto's.
pub const LOG_REGION: &str = "us-east-2";

/// Longest any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The peers of one test: moto (bucket [`BUCKET`] and a queue) and the receiver.
pub struct Harness {
    pub moto: MotoServer,
    pub receiver: VictoriaLogs,
    pub queue: Queue,
    dir: TempDir,
}

/// How the bucket's events reach the queue.
pub enum Notify {
    /// S3 sends them straight to the queue (and one `s3:TestEvent` right away).
    Queue,
    /// Through an SNS topic the queue is subscribed to.
    Topic(SnsDelivery),
    /// Not at all: the test sends the messages itself.
    Nothing,
}

impl Harness {
    /// `visibility` is the queue's own visibility timeout, which applies
    /// whenever the collector does not extend it.
    pub async fn start(notify: Notify, visibility: Duration) -> Harness {
        Self::start_with_receiver(notify, visibility, VictoriaLogs::start()).await
    }

    /// [`Harness::start`] with a receiver of the caller's choice.
    pub async fn start_with_receiver(
        notify: Notify,
        visibility: Duration,
        receiver: VictoriaLogs,
    ) -> Harness {
        let moto = MotoServer::start();
        moto.create_bucket(BUCKET).await;
        let queue = moto.create_queue("s3logd-events", visibility).await;
        match notify {
            Notify::Queue => moto.notify_queue_on_object_created(BUCKET, &queue).await,
            Notify::Topic(delivery) => {
                let topic = moto
                    .create_topic_for_queue("s3logd-events", &queue, delivery)
                    .await;
                moto.notify_topic_on_object_created(BUCKET, &topic).await;
            }
            Notify::Nothing => {}
        }
        Harness {
            moto,
            receiver,
            queue,
            dir: tempfile::tempdir().expect("cannot create a temporary directory"),
        }
    }

    /// Uploads `count` ALB lines generated from `seed`, gzipped, as `key`.
    pub async fn upload_alb(&self, key: &str, seed: u64, count: usize) -> LogObject {
        let object = LogObject::alb(key, seed, count);
        self.moto
            .put_object(BUCKET, key, gzip(&object.text()))
            .await;
        object
    }

    /// The configuration the tests start from; adjust its fields, then [`Harness::run`].
    pub fn settings(&self) -> Settings {
        Settings {
            queue_url: self.queue.url.clone(),
            endpoint_url: self.moto.endpoint().to_owned(),
            sink_url: self.receiver.url(),
            // Short polls keep shutdown and the tests quick.
            wait_time_secs: 1,
            visibility_timeout_secs: 300,
            heartbeat_interval_secs: 60,
            max_receive_count: 5,
            concurrency: 4,
            grace_period_secs: 30,
            batch_max_records: 10_000,
            routes: Vec::new(),
            parser_paths: Vec::new(),
            log_level: "info,s3logd=debug".to_owned(),
            extra: String::new(),
            env: Vec::new(),
        }
    }

    /// Writes the configuration and starts `s3logd run` with it; the process
    /// is killed when the returned handle is dropped.
    pub async fn run(&self, settings: &Settings) -> Collector {
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let config = self
            .dir
            .path()
            .join(format!("s3logd-{}.toml", metrics.port()));
        std::fs::write(&config, settings.to_toml(metrics)).expect("cannot write the config");
        let log = self
            .dir
            .path()
            .join(format!("s3logd-{}.log", metrics.port()));
        let mut collector = Collector::spawn("run", &config, log, metrics, &settings.env);
        collector.wait_until_serving().await;
        collector
    }

    pub async fn queue_counts(&self) -> QueueCounts {
        self.moto.queue_counts(&self.queue).await
    }

    /// Waits until the queue holds no message at all.
    pub async fn wait_for_empty_queue(&self) {
        self.wait_for_queue(QueueCounts {
            visible: 0,
            not_visible: 0,
        })
        .await;
    }

    /// The at-least-once outcome most scenarios end with: every line of
    /// `objects` stored exactly once, then every message deleted. Returns
    /// the stored rows for further checks.
    pub async fn expect_each_line_once_then_empty_queue(
        &self,
        objects: &[&LogObject],
    ) -> Vec<StoredRow> {
        let rows = wait_for_lines(&self.receiver, objects).await;
        self.wait_for_empty_queue().await;
        assert_stored_once(&rows, objects);
        rows
    }

    pub async fn wait_for_queue(&self, expected: QueueCounts) {
        self.moto
            .wait_for_queue_counts(&self.queue, expected, WAIT)
            .await;
    }

    /// Sends a message body to the queue as an event source would.
    pub async fn send_message(&self, body: &str) {
        self.moto
            .sqs()
            .send_message()
            .queue_url(&self.queue.url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage to moto");
    }

    /// Receives the next message body, waiting up to [`WAIT`] for one to become visible.
    pub async fn receive_body(&self) -> String {
        self.receive_message()
            .await
            .body
            .expect("a message with a body")
    }

    /// Receives the next message, waiting up to [`WAIT`] for one to become visible.
    pub async fn receive_message(&self) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(message) = self.moto.receive_messages(&self.queue, 1).await.pop() {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no message became visible within {WAIT:?}"
            );
        }
    }
}

/// The keys of the configuration the tests vary.
pub struct Settings {
    pub queue_url: String,
    pub endpoint_url: String,
    pub sink_url: String,
    pub wait_time_secs: u32,
    pub visibility_timeout_secs: u32,
    pub heartbeat_interval_secs: u32,
    pub max_receive_count: u32,
    pub concurrency: u32,
    pub grace_period_secs: u64,
    pub batch_max_records: u64,
    /// `(key_regex, parser)`, first match wins.
    pub routes: Vec<(String, String)>,
    pub parser_paths: Vec<String>,
    /// `log.level`.
    pub log_level: String,
    /// More configuration, appended as it is: other sinks, `[dead_letter]`,
    /// routes naming sinks.
    pub extra: String,
    /// Environment variables of the process, set after the test AWS
    /// credentials (so they may replace them).
    pub env: Vec<(String, String)>,
}

impl Settings {
    /// The configuration file, serving `/metrics` on `metrics`.
    pub fn to_toml(&self, metrics: SocketAddr) -> String {
        let text = |value: &str| toml::Value::from(value).to_string();
        let list = |values: &[String]| {
            toml::Value::Array(
                values
                    .iter()
                    .map(|v| toml::Value::from(v.as_str()))
                    .collect(),
            )
            .to_string()
        };
        let mut routes = String::new();
        for (key_regex, parser) in &self.routes {
            routes += &format!(
                "[[routes]]\nkey_regex = {}\nparser = {}\n\n",
                text(key_regex),
                text(parser)
            );
        }
        format!(
            r#"[queue]
url = {queue_url}
wait_time_secs = {wait_time}
visibility_timeout_secs = {visibility}
heartbeat_interval_secs = {heartbeat}
max_receive_count = {max_receive_count}
concurrency = {concurrency}

[aws]
region = "us-east-1"
endpoint_url = {endpoint_url}

{routes}[enrich]
key_regex = '/(?P<year>\d{{4}})/(?P<month>\d\d)/(?P<day>\d\d)/'

[parsers]
paths = {parser_paths}

[sink.victorialogs]
url = {sink_url}
batch_max_records = {batch_max_records}
batch_max_age_ms = 100
request_timeout_secs = 30

[metrics]
listen = "{metrics}"

[log]
level = {log_level}

[shutdown]
grace_period_secs = {grace}

{extra}
"#,
            queue_url = text(&self.queue_url),
            wait_time = self.wait_time_secs,
            visibility = self.visibility_timeout_secs,
            heartbeat = self.heartbeat_interval_secs,
            max_receive_count = self.max_receive_count,
            concurrency = self.concurrency,
            endpoint_url = text(&self.endpoint_url),
            parser_paths = list(&self.parser_paths),
            sink_url = text(&self.sink_url),
            batch_max_records = self.batch_max_records,
            grace = self.grace_period_secs,
            log_level = text(&self.log_level),
            extra = self.extra,
        )
    }
}

/// A log object as uploaded: its key and lines (without their `\n`).
pub struct LogObject {
    pub key: String,
    pub lines: Vec<String>,
}

impl LogObject {
    pub fn alb(key: &str, seed: u64, count: usize) -> LogObject {
        let text = s3logd_test_support::alb::lines(seed, count);
        LogObject {
            key: key.to_owned(),
            lines: text.lines().map(String::from).collect(),
        }
    }

    /// The object's content, one `\n` after every line.
    pub fn text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// An AWS-style ALB log key, unique per `n`.
pub fn alb_key(n: u32) -> String {
    format!(
        "AWSLogs/{ACCOUNT}/elasticloadbalancing/{LOG_REGION}/2024/03/01/\
         {ACCOUNT}_elasticloadbalancing_{LOG_REGION}_app.web-prod.50dc6c495c0c9188_20240301T12{n:02}Z_10.0.1.{n}_5x4k2m{n}.log.gz"
    )
}

/// The body of an S3 event notification for one object, its key written
/// as given (S3 URL-encodes keys in events, `+` for a space).
pub fn s3_event(event_name: &str, bucket: &str, key: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-03-01T12:00:00.000Z",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}}
    }]})
    .to_string()
}

pub fn gzip(data: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(data.as_bytes())
        .expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// How many stored rows carry each line of `objects` as `_msg`. Rows of
/// other lines are left out: failed objects may have stored a part.
pub fn copies_of_lines(rows: &[StoredRow], objects: &[&LogObject]) -> HashMap<String, usize> {
    let mut copies: HashMap<String, usize> = objects
        .iter()
        .flat_map(|object| object.lines.iter().map(|line| (line.clone(), 0)))
        .collect();
    for row in rows {
        if let Some(count) = copies.get_mut(&row.msg) {
            *count += 1;
        }
    }
    copies
}

/// Waits until every line of `objects` is stored and returns the rows.
pub async fn wait_for_lines(receiver: &VictoriaLogs, objects: &[&LogObject]) -> Vec<StoredRow> {
    wait_for_copies(receiver, objects, 1).await
}

/// Waits until every line of `objects` is stored at least `copies` times
/// and returns the rows.
pub async fn wait_for_copies(
    receiver: &VictoriaLogs,
    objects: &[&LogObject],
    copies: usize,
) -> Vec<StoredRow> {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = receiver.rows();
        let missing = copies_of_lines(&rows, objects)
            .values()
            .filter(|&&n| n < copies)
            .count();
        if missing == 0 {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} lines stored fewer than {copies} times after {WAIT:?}; receiver {:?}",
            receiver.counters()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The stored rows once every request that arrived has been answered, so
/// that rows of delayed requests are among them.
pub async fn settled_rows(receiver: &VictoriaLogs) -> Vec<StoredRow> {
    let deadline = Instant::now() + WAIT;
    while receiver.requests().len() as u64 != receiver.counters().requests {
        assert!(
            Instant::now() < deadline,
            "requests still unanswered after {WAIT:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    receiver.rows()
}

/// How often SQS had handed `message` out when it was received.
pub fn receive_count(message: &Message) -> u32 {
    message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|count| count.parse().ok())
        .expect("the message carries its ApproximateReceiveCount")
}

/// Asserts every line of `objects` was stored exactly once.
pub fn assert_stored_once(rows: &[StoredRow], objects: &[&LogObject]) {
    let copies = copies_of_lines(rows, objects);
    let wrong: Vec<(&String, &usize)> = copies.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} lines not stored exactly once, e.g. {:?}",
        wrong.len(),
        copies.len(),
        wrong.first()
    );
}

/// A running `s3logd run` (or `listen`), killed (SIGKILL) when dropped. Its
/// output goes to a log file that is printed when a test fails.
pub struct Collector {
    process: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Collector {
    fn spawn(
        subcommand: &str,
        config: &std::path::Path,
        log: PathBuf,
        metrics: SocketAddr,
        env: &[(String, String)],
    ) -> Collector {
        let output = std::fs::File::create(&log).expect("cannot create the collector log");
        let errors = output.try_clone().expect("cannot duplicate a file handle");
        let process = moto::aws_env(
            Command::new(env!("CARGO_BIN_EXE_s3logd"))
                .arg(subcommand)
                .arg("--config")
                .arg(config),
        )
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .expect("cannot start s3logd");
        Collector {
            process,
            metrics,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Waits until `/healthz` answers 200.
    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok((200, _)) = http_get(self.metrics, "/healthz").await {
                return;
            }
            if let Some(status) = self.process.try_wait().expect("cannot poll s3logd") {
                panic!(
                    "s3logd exited with {status} at start; its log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "s3logd did not serve /healthz on {} within {WAIT:?}; its log:\n{}",
                self.metrics,
                self.log_text()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The current `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        match http_get(self.metrics, "/metrics").await {
            Ok((200, body)) => Metrics(body),
            other => panic!("GET /metrics answered {other:?}"),
        }
    }

    /// Waits until the metric `series` is at least `at_least` and returns all metrics.
    pub async fn wait_for_metric(&self, series: &str, at_least: f64) -> Metrics {
        let deadline = Instant::now() + WAIT;
        loop {
            let metrics = self.metrics().await;
            if metrics.value(series) >= at_least {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "{series} = {} after {WAIT:?}, expected at least {at_least}; metrics:\n{}",
                metrics.value(series),
                metrics.0
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends `signal` (such as `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) takes plain integers; the pid is our own child,
        // not yet reaped, so it cannot name another process.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the process to exit by itself, at most `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait().expect("cannot poll s3logd") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "s3logd still running {timeout:?} later; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        // An already-exited process makes kill fail; it is dead either way.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(unreadable: {e})"))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- s3logd log ---\n{}", self.log_text());
        }
    }
}

/// A `/metrics` page in Prometheus text format.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of `series`, written as it appears on the page
    /// (`s3logd_objects_failed_total{reason="read"}`); 0 when absent, as a
    /// counter or gauge that was never touched may not be exported yet.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().expect("a numeric metric value"))
            })
            .unwrap_or(0.0)
    }
}

fn free_port() -> u16 {
    // The port is free once the probe closes; s3logd binds it right after.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .expect("cannot find a free port")
        .port()
}

/// A plain HTTP/1.0 GET (so the body comes unchunked): the status and the body.
async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "GET timed out"))??;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:.80}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
