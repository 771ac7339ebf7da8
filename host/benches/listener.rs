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

use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "common/process.rs"]
mod process;

use common::listen::Listen;
use process::{cpu_seconds, proc_status_kib};
use s3logd_test_support::env_number;
use s3logd_test_support::victorialogs::VictoriaLogs;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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
    let listen = Arc::new(Listen::start(&receiver, "", "").await);
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
