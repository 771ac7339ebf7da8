//! `s3logd listen` end to end: the binary reads JSON objects from TCP
//! clients into the VictoriaLogs receiver. Every test counts what it sent
//! against what was stored. Throughput is measured by the `listener`
//! bench (host/benches/listener.rs), not here.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::WAIT;
use common::listen::Listen;
use s3logd_test_support::victorialogs::VictoriaLogs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn message(connection: usize, seq: usize, padding: usize) -> String {
    format!(
        "{{\"conn\":{connection},\"seq\":{seq},\"text\":\"{}\"}}\n",
        "x".repeat(padding)
    )
}

/// Waits until the server closes `stream` (EOF or reset).
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

/// `(conn, seq)` of every stored row, with how often each was stored.
fn stored_ids(receiver: &VictoriaLogs) -> BTreeMap<(String, String), usize> {
    let mut ids = BTreeMap::new();
    for row in receiver.rows() {
        let id = (
            row.fields.get("conn").cloned().unwrap_or_default(),
            row.fields.get("seq").cloned().unwrap_or_default(),
        );
        *ids.entry(id).or_default() += 1;
    }
    ids
}

#[tokio::test]
async fn a_malformed_or_5_mib_object_closes_only_its_connection() {
    let receiver = VictoriaLogs::start();
    let listen = Listen::start(&receiver, "", "").await;
    let mut good = listen.connect().await;
    good.write_all(message(0, 0, 10).as_bytes()).await.unwrap();

    let mut malformed = listen.connect().await;
    malformed
        .write_all(b"{\"conn\":1,\"seq\":0}\n{\"conn\":1,\"seq\":}\n{\"conn\":1,\"seq\":2}\n")
        .await
        .unwrap();
    assert_closed_by_server(&mut malformed).await;

    let mut large = listen.connect().await;
    let big = message(2, 0, 5 << 20);
    // The server may close before everything is written.
    let _ = large.write_all(big.as_bytes()).await;
    assert_closed_by_server(&mut large).await;

    // The good connection goes on.
    good.write_all(message(0, 1, 10).as_bytes()).await.unwrap();
    good.shutdown().await.unwrap();
    receiver.wait_for_rows(3, WAIT).await;
    let metrics = listen
        .wait_for_metric("s3logd_listen_malformed_total{reason=\"too_large\"}", 1.0)
        .await;
    assert_eq!(
        metrics.value("s3logd_listen_malformed_total{reason=\"invalid_json\"}"),
        1.0
    );
    assert_eq!(metrics.value("s3logd_listen_connections_total"), 3.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = stored_ids(&receiver);
    let expected: BTreeMap<(String, String), usize> = [("0", "0"), ("0", "1"), ("1", "0")]
        .into_iter()
        .map(|(c, s)| ((c.to_owned(), s.to_owned()), 1))
        .collect();
    assert_eq!(ids, expected, "the object before the malformed one is kept");
    let metrics = listen.metrics().await;
    assert_eq!(metrics.value("s3logd_listen_objects_total"), 3.0);
    assert_eq!(metrics.value("s3logd_listen_connections_open"), 0.0);
}

#[tokio::test]
async fn fifty_concurrent_connections_are_all_stored_once() {
    const CONNECTIONS: usize = 50;
    const MESSAGES: usize = 400;
    let receiver = VictoriaLogs::start();
    let listen = Arc::new(Listen::start(&receiver, "", "").await);
    let mut senders = Vec::new();
    for connection in 0..CONNECTIONS {
        let listen = listen.clone();
        senders.push(tokio::spawn(async move {
            let mut stream = listen.connect().await;
            // Several messages per write, some cut mid-object: interleaving
            // across connections must not mix them up.
            let mut text = String::new();
            for seq in 0..MESSAGES {
                text += &message(connection, seq, seq % 97);
            }
            for piece in text.as_bytes().chunks(1000 + connection * 7) {
                stream.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            stream.shutdown().await.unwrap();
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    receiver.wait_for_rows(CONNECTIONS * MESSAGES, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = stored_ids(&receiver);
    assert_eq!(ids.len(), CONNECTIONS * MESSAGES, "every message is stored");
    assert!(ids.values().all(|&n| n == 1), "and stored once");
    let metrics = listen
        .wait_for_metric(
            "s3logd_sink_records_total{sink=\"vl\"}",
            (CONNECTIONS * MESSAGES) as f64,
        )
        .await;
    assert_eq!(
        metrics.value("s3logd_listen_objects_total"),
        (CONNECTIONS * MESSAGES) as f64
    );
    assert_eq!(
        metrics.value("s3logd_listen_connections_total"),
        CONNECTIONS as f64
    );
}

#[tokio::test]
async fn a_slow_sink_blocks_the_sender_and_loses_nothing() {
    const MESSAGES: usize = 40_000;
    let receiver = VictoriaLogs::start();
    // A small buffer budget: two batches of 64 KiB.
    let listen = Listen::start(
        &receiver,
        "",
        "batch_max_bytes = 65536\nmax_requests_in_flight = 1\n",
    )
    .await;
    receiver.delay_next(1, Duration::from_secs(4));
    let written = Arc::new(AtomicU64::new(0));
    let sender = {
        let written = written.clone();
        let mut stream = listen.connect().await;
        tokio::spawn(async move {
            let mut chunk = String::new();
            for seq in 0..MESSAGES {
                chunk += &message(0, seq, 1000);
                if chunk.len() >= 64 << 10 || seq + 1 == MESSAGES {
                    stream.write_all(chunk.as_bytes()).await.unwrap();
                    written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    chunk.clear();
                }
            }
            stream.shutdown().await.unwrap();
        })
    };
    let total = (0..MESSAGES)
        .map(|seq| message(0, seq, 1000).len() as u64)
        .sum::<u64>();
    // While the first request hangs, the sender cannot get everything out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck_at = written.load(Ordering::Relaxed);
    assert!(
        stuck_at < total,
        "the sender wrote all {total} bytes while the sink was stalled"
    );
    println!("sender blocked after {stuck_at} of {total} bytes");
    tokio::time::timeout(WAIT, sender).await.unwrap().unwrap();
    receiver.wait_for_rows(MESSAGES, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = stored_ids(&receiver);
    assert_eq!(ids.len(), MESSAGES);
    assert!(ids.values().all(|&n| n == 1));
}

#[tokio::test]
async fn concatenated_objects_without_newlines_are_records_kept_as_sent() {
    let receiver = VictoriaLogs::start();
    let listen = Listen::start(&receiver, "", "").await;
    let mut stream = listen.connect().await;
    let sent = [
        r#"{"conn":7,"seq":0,"nested":{"a":"}{"}}"#,
        r#"{"conn":7,"seq":1}"#,
        r#"{ "conn" : 7, "seq" : 2 }"#,
    ];
    let text = format!("{}{} {}", sent[0], sent[1], sent[2]);
    for piece in text.as_bytes().chunks(5) {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stream.shutdown().await.unwrap();
    let mut rows = receiver.wait_for_rows(3, WAIT).await;
    rows.sort_by_key(|row| row.fields["seq"].clone());
    let msgs: Vec<&str> = rows.iter().map(|row| row.msg.as_str()).collect();
    assert_eq!(msgs, sent, "_msg is the object as sent");
    assert_eq!(
        rows[0].fields["nested.a"], "}{",
        "keys are fields, flattened"
    );
}

#[tokio::test]
async fn time_comes_from_the_configured_field_else_the_receive_time() {
    let receiver = VictoriaLogs::start();
    let listen = Listen::start(
        &receiver,
        "time_field = \"at\"\ntime_format = \"unix_ms\"",
        "",
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut stream = listen.connect().await;
    stream
        .write_all(
            b"{\"seq\":0,\"at\":1700000000123}\n{\"seq\":1,\"ts\":\"2001-01-01T00:00:00Z\"}\n",
        )
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut rows = receiver.wait_for_rows(2, WAIT).await;
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    rows.sort_by_key(|row| row.fields["seq"].clone());
    assert_eq!(rows[0].time, 1_700_000_000_123_000_000);
    assert!(
        !rows[0].fields.contains_key("at"),
        "the time field is _time"
    );
    // `ts` is not the configured field: a field, and the time is the receive time.
    assert!(
        (before..=after).contains(&rows[1].time),
        "{} not within {before}..={after}",
        rows[1].time
    );
    assert_eq!(rows[1].fields["ts"], "2001-01-01T00:00:00Z");
}

#[tokio::test]
async fn sigterm_reads_what_was_sent_delivers_it_and_exits() {
    const MESSAGES: usize = 5_000;
    let receiver = VictoriaLogs::start();
    let mut listen = Listen::start(&receiver, "", "").await;
    let mut stream = listen.connect().await;
    let mut text = String::new();
    for seq in 0..MESSAGES {
        text += &message(3, seq, 50);
    }
    stream.write_all(text.as_bytes()).await.unwrap();
    listen.signal(libc::SIGTERM);
    let status = listen.wait_for_exit(WAIT).await;
    assert!(status.success(), "{status}");
    // New connections are refused once it stopped.
    assert!(TcpStream::connect(listen.address).await.is_err());
    assert_eq!(receiver.rows().len(), MESSAGES, "delivered before exiting");
}

// ---- TLS ----

/// A self-signed end-entity certificate for `localhost` and 127.0.0.1
/// (webpki refuses a CA one as the server's, so the client trusts it as its
/// own anchor) and its key, written into `dir`: `(cert.pem, key.pem)`.
fn self_signed_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("a self-signed certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A rustls client trusting only `cert`.
fn tls_connector(cert: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_clients_are_stored_and_a_plain_tcp_client_is_refused() {
    const CONNECTIONS: usize = 3;
    const MESSAGES: usize = 200;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_certificate(certs.path());
    let receiver = VictoriaLogs::start();
    let listen = Listen::start(
        &receiver,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        ),
        "",
    )
    .await;
    let connector = tls_connector(&cert);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    for connection in 0..CONNECTIONS {
        let tcp = listen.connect().await;
        let mut stream = connector
            .connect(name.clone(), tcp)
            .await
            .expect("the TLS handshake succeeds");
        let mut text = String::new();
        for seq in 0..MESSAGES {
            text += &message(connection, seq, seq % 31);
        }
        // Records cut across TLS records.
        for piece in text.as_bytes().chunks(777) {
            stream.write_all(piece).await.unwrap();
        }
        stream.shutdown().await.unwrap();
    }

    // Plain JSON to the TLS port: no handshake, the connection is closed.
    let mut plain = listen.connect().await;
    let _ = plain.write_all(message(99, 0, 10).as_bytes()).await;
    // What comes back is at most a TLS alert, then the end.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("the server closes the plain connection");
    assert!(
        read.is_err() || answer.len() < 64,
        "a plain client got {answer:?}"
    );

    receiver.wait_for_rows(CONNECTIONS * MESSAGES, WAIT).await;
    let metrics = listen
        .wait_for_metric("s3logd_listen_tls_failures_total", 1.0)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = stored_ids(&receiver);
    let expected: BTreeMap<(String, String), usize> = (0..CONNECTIONS)
        .flat_map(|c| (0..MESSAGES).map(move |s| ((c.to_string(), s.to_string()), 1)))
        .collect();
    assert_eq!(
        ids, expected,
        "every TLS message once, nothing of the plain client"
    );
    assert_eq!(metrics.value("s3logd_listen_tls_failures_total"), 1.0);
    let metrics = listen.metrics().await;
    assert_eq!(
        metrics.value("s3logd_listen_objects_total"),
        (CONNECTIONS * MESSAGES) as f64
    );
    assert_eq!(metrics.value("s3logd_listen_connections_open"), 0.0);
}

// ---- The S3 archive read back by the ndjson parser ----

const ARCHIVE_BUCKET: &str = "archive";

#[tokio::test]
async fn an_archived_object_parses_back_with_ndjson_to_the_objects_sent() {
    let moto = s3logd_test_support::moto::MotoServer::start();
    moto.create_bucket(ARCHIVE_BUCKET).await;
    let spool = tempfile::tempdir().unwrap();
    let sections = format!(
        r#"[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[sink.archive]
type = "s3_archive"
bucket = "{ARCHIVE_BUCKET}"
prefix = "s3logger"
spool_dir = "{spool}"
batch_max_age_ms = 50
"#,
        endpoint = moto.endpoint(),
        spool = spool.path().join("archive").display(),
    );
    let mut listen = Listen::start_with("", &sections).await;
    let sent: Vec<String> = (0..50)
        .map(|seq| {
            format!(
                r#"{{"conn":5,"seq":{seq},"level":"info","nested":{{"path":"/items/{seq}","ok":true}},"text":"{}"}}"#,
                "y".repeat(seq)
            )
        })
        .collect();
    let mut stream = listen.connect().await;
    for object in &sent {
        stream
            .write_all(format!("{object}\n").as_bytes())
            .await
            .unwrap();
    }
    stream.shutdown().await.unwrap();
    listen
        .wait_for_metric(
            "s3logd_sink_records_total{sink=\"archive\"}",
            sent.len() as f64,
        )
        .await;
    // Stopping finishes the spool's file; the next start uploads what the
    // spool holds (rotation by age takes a minute at least).
    listen.signal(libc::SIGTERM);
    let status = listen.wait_for_exit(WAIT).await;
    assert!(status.success(), "{status}\n{}", listen.log_text());
    drop(listen);
    let listen = Listen::start_with("", &sections).await;
    listen
        .wait_for_metric("s3logd_sink_uploads_total{sink=\"archive\"}", 1.0)
        .await;

    let listed = moto
        .s3()
        .list_objects_v2()
        .bucket(ARCHIVE_BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .map(|object| object.key().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 1, "one object: {keys:?}\n{}", listen.log_text());
    let key = &keys[0];
    assert!(
        s3logger_name(key),
        "{key} is named as s3logger names objects"
    );
    let body = moto
        .s3()
        .get_object()
        .bucket(ARCHIVE_BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let downloaded = spool.path().join("downloaded.json.gz");
    std::fs::write(&downloaded, &body).unwrap();

    // `s3logd parse` as a user runs it, the parser detected from the key.
    let output = Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .args(["parse", "--key", key])
        .arg(&downloaded)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("ok (ndjson, gzip)"),
        "detected as ndjson: {stderr}"
    );
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let messages: Vec<&str> = records
        .iter()
        .map(|record| record["_msg"].as_str().expect("a _msg"))
        .collect();
    // As s3logger's objects do, the archive's lines must read back as the
    // objects sent: `_msg` the object, not a line wrapping it.
    assert_eq!(
        messages, sent,
        "the ndjson parser's records of an archived object are the objects sent"
    );
    assert_eq!(records[3]["nested.path"], "/items/3", "{}", records[3]);
}

/// `s3logger/dt=YYYY-MM-DD/YYYYMMDDTHHMMSS_<16 hex>.json.gz`, the date the same.
fn s3logger_name(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("s3logger/dt=") else {
        return false;
    };
    let Some((date, file)) = rest.split_once('/') else {
        return false;
    };
    let Some((stamp, tail)) = file.split_once('_') else {
        return false;
    };
    let Some(hex) = tail.strip_suffix(".json.gz") else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    date.len() == 10
        && stamp.len() == 15
        && stamp.as_bytes()[8] == b'T'
        && digits(&stamp[..8])
        && digits(&stamp[9..])
        && stamp[..8] == date.replace('-', "")
        && hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
