//! The S3 archive sink: names, the spool's crash recovery, and what
//! arrives in a real moto_server's S3 (rotation, restarts, outages,
//! multipart uploads, acknowledgement only once the spool holds a batch).

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use s3logd_test_support::fault_proxy::FaultProxy;
use s3logd_test_support::moto::MotoServer;

use super::naming::{file_name, finished_of_part, is_finished, key_prefix, object_key, part_of};
use super::spool::{Spool, recover_part};
use super::*;
use crate::config::{BatchConfig, S3ArchiveConfig, S3ArchiveOptions, SinkConfig};
use crate::sink::testing::{PATIENCE, TestRecord, TestSink, origin, resolve, test_aws_config};

const BUCKET: &str = "archive";

/// The `ndjson` parser's key pattern, read from its source: the names must
/// be the ones it claims.
fn ndjson_key_pattern() -> regex::Regex {
    let source = include_str!("../../../../guest-parsers/ndjson/src/lib.rs");
    let pattern = source
        .split(".key_pattern(r\"")
        .nth(1)
        .and_then(|rest| rest.split("\")").next())
        .expect("the ndjson parser declares a key pattern");
    regex::Regex::new(pattern).expect("a valid pattern")
}

// ---- Names ----

#[test]
fn names_follow_s3loggers_scheme_and_the_ndjson_parsers_key_pattern() {
    // 2018-02-09T21:38:03Z, s3logger's own example.
    let name = file_name(1_518_212_283, 0xdf71_8a78_18e5_3243);
    assert_eq!(name, "20180209T213803_df718a7818e53243.json.gz");
    assert!(is_finished(&name));
    assert_eq!(part_of(&name), format!("{name}.part"));
    assert_eq!(finished_of_part(&part_of(&name)).as_deref(), Some(&*name));
    assert_eq!(finished_of_part(&name), None);
    assert!(!is_finished("20180209T213803_DF718A7818E53243.json.gz"));
    assert!(!is_finished("notes.json.gz"));
    let pattern = ndjson_key_pattern();
    for (prefix, key) in [
        ("", "dt=2018-02-09/20180209T213803_df718a7818e53243.json.gz"),
        (
            "logs",
            "logs/dt=2018-02-09/20180209T213803_df718a7818e53243.json.gz",
        ),
        (
            "a/b/",
            "a/b/dt=2018-02-09/20180209T213803_df718a7818e53243.json.gz",
        ),
    ] {
        let made = object_key(&key_prefix(prefix), &name).unwrap();
        assert_eq!(made, key);
        assert!(pattern.is_match(&made), "{made}");
    }
    // Small values keep their 16 digits; the date rolls at midnight UTC.
    let name = file_name(1_709_251_199, 1);
    assert_eq!(name, "20240229T235959_0000000000000001.json.gz");
    assert!(pattern.is_match(&object_key("", &name).unwrap()));
}

// ---- The spool on its own ----

fn member(lines: &[String]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        encoder.write_all(line.as_bytes()).unwrap();
        encoder.write_all(b"\n").unwrap();
    }
    encoder.finish().unwrap()
}

fn lines(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|n| format!("{{\"_msg\":\"line {n}\"}}"))
        .collect()
}

/// The lines of multi-member gzip `bytes` and how many members it has.
fn gunzip(bytes: &[u8]) -> (Vec<String>, usize) {
    let mut reader = bytes;
    let mut text = String::new();
    let mut members = 0;
    while !reader.fill_buf().unwrap().is_empty() {
        flate2::bufread::GzDecoder::new(&mut reader)
            .read_to_string(&mut text)
            .expect("a complete gzip member");
        members += 1;
    }
    (text.lines().map(String::from).collect(), members)
}

#[test]
fn a_torn_part_file_is_cut_back_to_its_complete_members() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("a.part");
    let finished = dir.path().join("a.json.gz");
    let mut bytes = member(&lines(0, 3));
    bytes.extend(member(&lines(3, 5)));
    let torn = member(&lines(5, 9));
    bytes.extend(&torn[..torn.len() / 2]);
    std::fs::write(&part, &bytes).unwrap();
    recover_part(&part, &finished).unwrap();
    assert!(!part.exists());
    let (got, members) = gunzip(&std::fs::read(&finished).unwrap());
    assert_eq!(got, lines(0, 5));
    assert_eq!(members, 2);
    // Nothing complete: nothing to upload.
    std::fs::write(&part, &torn[..10]).unwrap();
    recover_part(&part, &dir.path().join("b.json.gz")).unwrap();
    assert!(!part.exists() && !dir.path().join("b.json.gz").exists());
}

#[test]
fn a_spool_directory_takes_one_sink_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Spool::open(
            dir.path(),
            0,
            Duration::from_secs(60),
            Arc::default(),
            tokio::sync::mpsc::channel(1).0,
        )
    };
    let first = open().unwrap();
    let error = open().err().expect("locked");
    assert!(error.to_string().contains("in use"), "{error}");
    drop(first);
    open().expect("free again");
}

// ---- Against moto_server ----

fn config(spool: &Path, rotate_bytes: u64, rotate_secs: u64) -> S3ArchiveConfig {
    S3ArchiveConfig {
        batch: BatchConfig {
            batch_max_age_ms: 10,
            ..BatchConfig::default()
        },
        options: S3ArchiveOptions {
            bucket: BUCKET.into(),
            prefix: "s3logger".into(),
            spool_dir: spool.to_owned(),
            rotate_bytes,
            // Tests rotate faster than users may (60 s at least).
            rotate_secs,
            ..S3ArchiveOptions::default()
        },
    }
}

fn start(endpoint: &str, config: S3ArchiveConfig) -> TestSink {
    TestSink::start_with_aws(
        "archive",
        SinkConfig::S3Archive(config),
        test_aws_config(Some(endpoint)),
    )
}

fn stats(sink: &TestSink) -> &ArchiveStats {
    sink.sink.archive.as_deref().expect("an archive sink")
}

async fn moto_with_bucket() -> MotoServer {
    let moto = MotoServer::start();
    moto.s3()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    moto
}

/// Every object of the bucket, by key, with its bytes.
async fn objects(moto: &MotoServer) -> Vec<(String, Vec<u8>)> {
    let listed = moto
        .s3()
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let mut all = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_owned();
        let body = moto
            .s3()
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        all.push((key, body));
    }
    all
}

/// Waits until the bucket holds `count` objects (and the spool is empty).
async fn wait_for_objects(moto: &MotoServer, count: usize, spool: &Path) -> Vec<(String, Vec<u8>)> {
    let since = Instant::now();
    loop {
        let found = objects(moto).await;
        if found.len() >= count && spooled(spool).is_empty() {
            return found;
        }
        assert!(
            since.elapsed() < PATIENCE,
            "{} objects of {count}, spool {:?}",
            found.len(),
            spooled(spool)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The spool's data files (finished and being written).
fn spooled(spool: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.contains(".json.gz"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn records(from: usize, to: usize) -> Vec<TestRecord> {
    (from..to)
        .map(|n| TestRecord {
            msg: Some(format!("event {n}")),
            ..TestRecord::at(1_700_000_000_000_000_000 + n as i64 * 1_000_000)
        })
        .collect()
}

/// The `_msg` of every line, checking each is a record as the file sink
/// writes it.
fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert!(record["_time"].as_str().unwrap().starts_with("2023-11-14T"));
            record["_msg"].as_str().expect("a message").to_owned()
        })
        .collect()
}

fn events(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|n| format!("event {n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_size_makes_objects_of_multi_member_gzip_json_lines() {
    let moto = moto_with_bucket().await;
    let spool = tempfile::tempdir().unwrap();
    // Three records are some 180 bytes of JSON lines: two batches fill a file.
    let sink = start(moto.endpoint(), config(spool.path(), 300, 3600));
    for batch in 0..6 {
        let delivery = sink
            .send_records(
                Arc::new(origin("app.log")),
                &[],
                &records(batch * 3, batch * 3 + 3),
            )
            .await;
        resolve(delivery).await.unwrap();
    }
    let found = wait_for_objects(&moto, 3, spool.path()).await;
    assert_eq!(
        found.len(),
        3,
        "{:?}",
        found.iter().map(|(key, _)| key).collect::<Vec<_>>()
    );
    let pattern = ndjson_key_pattern();
    let mut all = Vec::new();
    for (key, body) in &found {
        assert!(key.starts_with("s3logger/dt="), "{key}");
        assert!(pattern.is_match(key), "{key}");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(
            &key["s3logger/dt=".len()..][..10].replace('-', ""),
            &name[..8]
        );
        let (lines, members) = gunzip(body);
        assert_eq!(members, 2, "{key}: one member per batch");
        all.extend(messages(&lines));
    }
    all.sort_by_key(|msg| msg[6..].parse::<u32>().unwrap());
    assert_eq!(all, events(0, 18));
    let stats = stats(&sink);
    assert_eq!(stats.uploads.load(Relaxed), 3);
    assert_eq!(stats.spool_files.load(Relaxed), 0);
    assert_eq!(stats.spool_bytes.load(Relaxed), 0);
    assert!(sink.dead_letters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_time_finishes_a_file_that_gets_no_more_records() {
    let moto = moto_with_bucket().await;
    let spool = tempfile::tempdir().unwrap();
    let sink = start(moto.endpoint(), config(spool.path(), 0, 1));
    let delivery = sink
        .send_records(Arc::new(origin("app.log")), &[], &records(0, 4))
        .await;
    resolve(delivery).await.unwrap();
    let found = wait_for_objects(&moto, 1, spool.path()).await;
    assert_eq!(found.len(), 1);
    let (lines, _) = gunzip(&found[0].1);
    assert_eq!(messages(&lines), events(0, 4));
    // A later record starts a file of its own.
    let delivery = sink
        .send_records(Arc::new(origin("app.log")), &[], &records(4, 5))
        .await;
    resolve(delivery).await.unwrap();
    let found = wait_for_objects(&moto, 2, spool.path()).await;
    assert_eq!(found.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_resolves_once_the_spool_file_holds_its_records() {
    // Nothing listens at the endpoint: nothing leaves the spool.
    let closed = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().join("spool");
    let sink = start(&format!("http://{closed}"), config(&dir, 0, 3600));
    // The spool cannot be written: the delivery waits (retried like an
    // outage) instead of resolving.
    std::fs::remove_dir_all(&dir).unwrap();
    let delivery = sink
        .send_records(Arc::new(origin("app.log")), &[], &records(0, 5))
        .await;
    let mut delivery = delivery;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), &mut delivery)
            .await
            .is_err(),
        "acknowledged without a spool"
    );
    std::fs::create_dir(&dir).unwrap();
    resolve(delivery).await.unwrap();
    // Resolved: the file being written holds the records (fsync'd).
    let files = spooled(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".json.gz.part"), "{files:?}");
    let bytes = std::fs::read(dir.join(&files[0])).unwrap();
    let (lines, members) = gunzip(&bytes);
    assert_eq!(messages(&lines), events(0, 5));
    assert_eq!(members, 1);
    let stats = stats(&sink);
    assert_eq!(stats.spool_files.load(Relaxed), 1);
    assert_eq!(stats.spool_bytes.load(Relaxed), bytes.len() as u64);
    assert_eq!(stats.uploads.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_left_in_the_spool_are_uploaded_once_on_the_next_start() {
    let moto = moto_with_bucket().await;
    let spool = tempfile::tempdir().unwrap();
    // A finished file, and one a crash left while a third batch was written.
    let finished = file_name(1_700_000_000, 0xaaaa);
    let mut bytes = member(&lines(0, 2));
    bytes.extend(member(&lines(2, 4)));
    std::fs::write(spool.path().join(&finished), &bytes).unwrap();
    let torn = file_name(1_700_000_300, 0xbbbb);
    let mut bytes = member(&lines(4, 6));
    bytes.extend(member(&lines(6, 7)));
    let third = member(&lines(7, 9));
    bytes.extend(&third[..third.len() - 5]);
    std::fs::write(spool.path().join(part_of(&torn)), &bytes).unwrap();

    let sink = start(moto.endpoint(), config(spool.path(), 0, 3600));
    let found = wait_for_objects(&moto, 2, spool.path()).await;
    let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("s3logger/dt=2023-11-14/{finished}"),
            format!("s3logger/dt=2023-11-14/{torn}"),
        ]
    );
    assert_eq!(gunzip(&found[0].1), (lines(0, 4), 2));
    assert_eq!(gunzip(&found[1].1), (lines(4, 7), 2));
    assert_eq!(stats(&sink).uploads.load(Relaxed), 2);
    drop(sink);
    // Started again (once the first has let go of the spool): nothing is
    // left to upload, nothing goes up twice.
    let since = Instant::now();
    let sink = loop {
        match TestSink::try_start_with_aws(
            "archive",
            SinkConfig::S3Archive(config(spool.path(), 0, 3600)),
            test_aws_config(Some(moto.endpoint())),
        ) {
            Ok(sink) => break sink,
            Err(error) if since.elapsed() < PATIENCE => {
                assert!(error.to_string().contains("in use"), "{error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{error}"),
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(objects(&moto).await.len(), 2);
    assert_eq!(stats(&sink).uploads.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_s3_is_unreachable_files_wait_in_the_spool_then_go_up() {
    let moto = moto_with_bucket().await;
    let proxy = FaultProxy::start(moto.address());
    // Connections are refused until the spool was checked.
    proxy.set_down(true);
    let spool = tempfile::tempdir().unwrap();
    let sink = start(&proxy.url(), config(spool.path(), 100, 3600));
    for batch in 0..2 {
        let delivery = sink
            .send_records(
                Arc::new(origin("app.log")),
                &[],
                &records(batch * 3, batch * 3 + 3),
            )
            .await;
        resolve(delivery)
            .await
            .expect("stored in the spool while S3 is down");
    }
    let since = Instant::now();
    while stats(&sink).upload_failures.load(Relaxed) == 0 {
        assert!(since.elapsed() < PATIENCE, "no upload was tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = spooled(spool.path());
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting.iter().all(|name| is_finished(name)), "{waiting:?}");
    assert_eq!(stats(&sink).spool_files.load(Relaxed), 2);
    proxy.set_down(false);
    let found = wait_for_objects(&moto, 2, spool.path()).await;
    let mut all: Vec<String> = found
        .iter()
        .flat_map(|(_, body)| messages(&gunzip(body).0))
        .collect();
    all.sort();
    assert_eq!(all, events(0, 6));
    let keys: Vec<String> = found
        .iter()
        .map(|(key, _)| key.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys, waiting,
        "uploaded under the names they were spooled as"
    );
    assert_eq!(stats(&sink).uploads.load(Relaxed), 2);
    assert_eq!(stats(&sink).spool_bytes.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_a_part_goes_up_in_parts_with_the_settings() {
    let moto = moto_with_bucket().await;
    let spool = tempfile::tempdir().unwrap();
    // 11 MiB that gzip cannot shrink (stored blocks of random hex): three
    // parts of 5 MiB at most.
    let mut random = vec![0u8; 11 << 20];
    random.chunks_mut(8).for_each(|chunk| {
        let bytes = fastrand::u64(..).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    });
    let text: String = hex::encode(&random[..(11 << 20) / 2])
        .as_bytes()
        .chunks(1000)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::none());
    encoder.write_all(text.as_bytes()).unwrap();
    let bytes = encoder.finish().unwrap();
    assert!(bytes.len() > 10 << 20);
    let name = file_name(1_700_000_000, 0xcccc);
    std::fs::write(spool.path().join(&name), &bytes).unwrap();
    let mut config = config(spool.path(), 0, 3600);
    config.options.multipart_part_bytes = 5 << 20;
    config.options.storage_class = Some("STANDARD_IA".into());
    config.options.server_side_encryption = Some("AES256".into());
    let sink = start(moto.endpoint(), config);
    let found = wait_for_objects(&moto, 1, spool.path()).await;
    assert_eq!(found[0].0, format!("s3logger/dt=2023-11-14/{name}"));
    assert!(found[0].1 == bytes, "the object is the file");
    let head = moto
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key(&found[0].0)
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
    assert_eq!(
        head.storage_class().map(|class| class.as_str()),
        Some("STANDARD_IA")
    );
    assert_eq!(
        head.server_side_encryption().map(|sse| sse.as_str()),
        Some("AES256")
    );
    assert_eq!(head.content_encoding(), None);
    assert_eq!(stats(&sink).uploads.load(Relaxed), 1);
}

// ---- Settings ----

#[test]
fn settings_are_checked_and_taken_from_the_environment() {
    use crate::config::{Config, ConfigErrors};
    const QUEUE: &str = "[queue]\nurl = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";
    let parse = |sinks: &str, env: &[(&str, &str)]| {
        let env = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()));
        Config::parse(&format!("{QUEUE}{sinks}"), env)
    };
    let Err(ConfigErrors(errors)) = parse(
        "[sink.s3_archive]\nrotate_secs = 30\nstorage_class = \"COLD\"\n\
         server_side_encryption = \"AES\"\nsse_kms_key_id = \"k\"\nupload_concurrency = 0\n",
        &[],
    ) else {
        panic!("accepted");
    };
    let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
    for path in [
        "sink.s3_archive.bucket",
        "sink.s3_archive.spool_dir",
        "sink.s3_archive.rotate_secs",
        "sink.s3_archive.storage_class",
        "sink.s3_archive.server_side_encryption",
        "sink.s3_archive.sse_kms_key_id",
        "sink.s3_archive.upload_concurrency",
    ] {
        assert!(paths.contains(&path), "{path} not in {errors:?}");
    }
    let config = parse(
        "[sink.archive]\ntype = \"s3_archive\"\nspool_dir = \"/var/spool/s3logd\"\n",
        &[
            ("S3LOGD_SINK_ARCHIVE_BUCKET", "logs"),
            ("S3LOGD_SINK_ARCHIVE_SERVER_SIDE_ENCRYPTION", "aws:kms"),
            ("S3LOGD_SINK_ARCHIVE_SSE_KMS_KEY_ID", "alias/logs"),
            ("S3LOGD_SINK_ARCHIVE_ROTATE_SECS", "60"),
        ],
    )
    .unwrap_or_else(|errors| panic!("{errors:?}"));
    let SinkConfig::S3Archive(archive) = &config.sink["archive"] else {
        panic!("{:?}", config.sink);
    };
    assert_eq!(archive.options.bucket, "logs");
    assert_eq!(archive.options.rotate_secs, 60);
    assert_eq!(archive.options.rotate_bytes, 512 << 20);
    assert_eq!(
        archive.options.sse_kms_key_id.as_deref(),
        Some("alias/logs")
    );
    assert!(!archive.options.content_encoding_gzip);
}
