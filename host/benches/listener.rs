//! Throughput of `s3logd listen`: clients send about 200-byte JSON log
//! lines over TCP, the listener stores them in a VictoriaLogs receiver that
//! only counts rows. Reported: messages/s and MB/s on the wall clock and per
//! core (the listener's own user+system CPU time), and its peak RSS
//! (VmHWM).
//!
//!     cargo bench -p s3logd --bench listener
//!
//! `S3LOGD_LISTEN_BENCH_MESSAGES` (default 200000, split across the
//! connections) and `S3LOGD_LISTEN_BENCH_CONNECTIONS` (default 4) change
//! the load.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/process.rs"]
mod process;

use process::{cpu_seconds, proc_status_kib};
use s3logd_test_support::env_number;
use s3logd_test_support::victorialogs::VictoriaLogs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn main() {
    let messages = env_number("S3LOGD_LISTEN_BENCH_MESSAGES", 200_000);
    let connections = env_number("S3LOGD_LISTEN_BENCH_CONNECTIONS", 4).max(1);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench(messages, connections));
}

async fn bench(messages: usize, connections: usize) {
    let receiver = VictoriaLogs::start_counting();
    let listen = Arc::new(Listen::start(&receiver).await);
    let per_connection = messages / connections;
    let payloads: Vec<String> = (0..connections)
        .map(|c| (0..per_connection).map(|seq| line(c, seq)).collect())
        .collect();
    let bytes: usize = payloads.iter().map(String::len).sum();
    let total = per_connection * connections;

    let cpu_before = cpu_seconds(listen.pid());
    let started = Instant::now();
    let mut senders = Vec::new();
    for payload in payloads {
        let address = listen.address;
        senders.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.expect("connects");
            stream.write_all(payload.as_bytes()).await.expect("sends");
            stream.shutdown().await.expect("shuts down");
        }));
    }
    for sender in senders {
        sender.await.expect("a sender");
    }
    let deadline = started + RUN_TIMEOUT;
    while receiver.counters().rows_stored < total as u64 {
        assert!(
            Instant::now() < deadline,
            "only {:?} after {RUN_TIMEOUT:?}\n{}",
            receiver.counters(),
            listen.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(listen.pid()) - cpu_before;
    let peak_rss = proc_status_kib(listen.pid(), "VmHWM");
    let mb = bytes as f64 / 1e6;
    println!(
        "listener: {total} messages, {mb:.1} MB over {connections} connections\n\
         wall {wall:.2} s: {:.0} messages/s, {:.1} MB/s\n\
         s3logd CPU {cpu:.2} s: {:.0} messages/s, {:.1} MB/s per core\n\
         peak RSS {:.1} MiB",
        total as f64 / wall,
        mb / wall,
        total as f64 / cpu,
        mb / cpu,
        peak_rss as f64 / 1024.0,
    );
}

/// A typical application log line of about 200 bytes.
fn line(connection: usize, seq: usize) -> String {
    format!(
        "{{\"time\":\"2024-05-01T12:00:00.{seq:06}Z\",\"level\":\"info\",\"conn\":{connection},\"seq\":{seq},\"msg\":\"request served\",\"http\":{{\"method\":\"GET\",\"path\":\"/api/v1/items/{seq}\",\"status\":200}},\"duration_ms\":12.5}}\n"
    )
}

/// A running `s3logd listen` into the receiver, killed when dropped.
struct Listen {
    process: Child,
    address: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .expect("a free port")
        .port()
}

impl Listen {
    async fn start(receiver: &VictoriaLogs) -> Listen {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let config = format!(
            r#"[listen]
address = "{address}"

[sink.vl]
type = "victorialogs"
url = "{url}"
batch_max_age_ms = 50

[dead_letter]
path = "{dead_letter}"

[metrics]
listen = "{metrics}"
"#,
            url = receiver.url(),
            dead_letter = dir.path().join("dead-letter.ndjson").display(),
        );
        let path = dir.path().join("s3logd.toml");
        std::fs::write(&path, config).expect("the configuration is written");
        let log = dir.path().join("s3logd.log");
        let process = spawn(&path, &log);
        let mut listen = Listen {
            process,
            address,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !serves_metrics(metrics).await {
            if let Some(status) = listen.process.try_wait().expect("waitpid") {
                panic!("s3logd exited with {status}:\n{}", listen.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "not serving:\n{}",
                listen.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        listen
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn spawn(config: &Path, log: &Path) -> Child {
    let output = std::fs::File::create(log).expect("the log file");
    Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .arg("listen")
        .arg("--config")
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("the log file"))
        .stderr(output)
        .spawn()
        .expect("s3logd starts")
}

/// Whether `/metrics` answers with s3logd's series: the listener is up.
async fn serves_metrics(metrics: SocketAddr) -> bool {
    let get = async {
        let mut stream = TcpStream::connect(metrics).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: s3logd\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), get).await,
        Ok(Ok(response)) if response.contains("\ns3logd_")
    )
}
