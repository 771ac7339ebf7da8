//! `s3logd import` as a black box against a real moto_server S3 and the
//! VictoriaLogs receiver: which objects a time range selects and which
//! prefixes are listed for it, resuming after an interruption without
//! sending finished objects again, odd keys, pagination, a corrupt object,
//! a local directory, `--dry-run`, and `--enqueue` drained by `s3logd run`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, LogObject, Notify, WAIT, assert_stored_once, gzip, wait_for_lines};
use s3logd_test_support::moto::{self, MotoServer};
use s3logd_test_support::victorialogs::{StoredRow, VictoriaLogs};
use tempfile::TempDir;

const BUCKET: &str = "backfill";
const ACCOUNT: &str = "123456789012";

fn alb_key(account: &str, region: &str, day: &str, time: &str, n: u32) -> String {
    format!(
        "AWSLogs/{account}/elasticloadbalancing/{region}/{day}/{account}_elasticloadbalancing_{region}_app.web.50dc6c495c0c9188_{time}_10.0.0.{n}_k{n}.log.gz"
    )
}

/// Every object holds ALB lines; a route reads them all as ALB, whatever
/// their names say, so that the tests are about selection.
fn config(dir: &Path, moto: &MotoServer, receiver: &VictoriaLogs, extra: &str) -> PathBuf {
    let path = dir.join("s3logd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[[routes]]
key_regex = ".*"
parser = "alb"

[sink.victorialogs]
url = "{sink}"
compression = "none"
batch_max_age_ms = 50

[log]
format = "json"
level = "info,s3logd=debug"

[shutdown]
grace_period_secs = 20
{extra}
"#,
            endpoint = moto.endpoint(),
            sink = receiver.url(),
        ),
    )
    .unwrap();
    path
}

/// A running `s3logd import`, its output in files: a pipe nobody reads
/// would fill and stop it.
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: TempDir,
}

fn spawn(args: &[&str]) -> Running {
    let dir = TempDir::new().unwrap();
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let child = command(args)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start s3logd import");
    Running {
        child,
        stdout,
        stderr,
        _dir: dir,
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_s3logd"));
    moto::aws_env(command.arg("import").args(args)).stdin(Stdio::null());
    command
}

/// Runs `s3logd import` to its end (bounded by [`WAIT`]).
fn import(args: &[&str]) -> Output {
    wait_with_timeout(spawn(args))
}

fn wait_with_timeout(mut running: Running) -> Output {
    let deadline = Instant::now() + WAIT * 2;
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            running.child.kill().unwrap();
            running.child.wait().unwrap();
            panic!(
                "s3logd import did not finish; stderr:\n{}",
                std::fs::read_to_string(&running.stderr).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&running.stdout).unwrap(),
        stderr: std::fs::read(&running.stderr).unwrap(),
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON log lines of a run.
fn log_events(output: &Output) -> Vec<serde_json::Value> {
    stderr(output)
        .lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// (prefix, delimited) of every list request.
fn list_requests(output: &Output) -> Vec<(String, bool, String)> {
    log_events(output)
        .into_iter()
        .filter(|event| event["message"] == "list")
        .map(|event| {
            (
                event["prefix"].as_str().unwrap().to_owned(),
                event["delimited"].as_bool().unwrap(),
                event["start_after"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The number in the summary line starting with `label` before `word`
/// (right after the label when `word` is the label).
fn summary_number(output: &Output, label: &str, word: &str) -> u64 {
    let text = stderr(output);
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no summary line {label:?} in\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    if word == label {
        return words[1].parse().unwrap();
    }
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    words[at - 1].parse().unwrap()
}

fn rows_by_key(rows: &[StoredRow]) -> BTreeMap<String, usize> {
    let mut by_key = BTreeMap::new();
    for row in rows {
        *by_key.entry(row.fields["key"].clone()).or_default() += 1;
    }
    by_key
}

/// Waits until the receiver has answered every request, then its rows.
async fn settled(receiver: &VictoriaLogs) -> Vec<StoredRow> {
    receiver.settle(WAIT).await;
    receiver.rows()
}

async fn put_alb(moto: &MotoServer, key: &str, seed: u64, lines: usize) -> LogObject {
    let object = LogObject::alb(key, seed, lines);
    moto.put_object(BUCKET, key, gzip(&object.text())).await;
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_range_selects_exactly_the_objects_in_it_and_lists_only_its_days() {
    let moto = MotoServer::start();
    let receiver = VictoriaLogs::start();
    moto.create_bucket(BUCKET).await;
    let dir = TempDir::new().unwrap();
    // The range crosses midnight and a month end:
    // [2024-01-31T23:00Z, 2024-02-02T00:00Z).
    let keys_in = [
        alb_key(ACCOUNT, "us-east-1", "2024/01/31", "20240131T2355Z", 1),
        // Just past midnight in the name, still in the day-before folder.
        alb_key(ACCOUNT, "us-east-1", "2024/01/31", "20240201T0000Z", 2),
        alb_key(ACCOUNT, "us-east-1", "2024/02/01", "20240201T1200Z", 3),
        alb_key(ACCOUNT, "eu-west-1", "2024/02/01", "20240201T2359Z", 4),
        alb_key(
            "210987654321",
            "us-east-1",
            "2024/02/01",
            "20240201T0005Z",
            5,
        ),
        "cf/E2EXAMPLE01.2024-01-31-23.abc.gz".to_owned(),
        "cf/E2EXAMPLE01.2024-02-01-00.def.gz".to_owned(),
        "cf/E3OTHER0002.2024-02-01-05.ghi.gz".to_owned(),
        "s3-access/2024-01-31-23-59-59-0A1B2C3D4E5F6A7B".to_owned(),
        "s3-access/2024-02-01-00-00-00-1A1B2C3D4E5F6A7B".to_owned(),
    ];
    let keys_out = [
        alb_key(ACCOUNT, "us-east-1", "2024/01/30", "20240130T1200Z", 11),
        alb_key(ACCOUNT, "us-east-1", "2024/01/31", "20240131T2255Z", 12),
        alb_key(ACCOUNT, "us-east-1", "2024/02/02", "20240202T0000Z", 13),
        alb_key(ACCOUNT, "us-east-1", "2024/03/01", "20240301T0000Z", 14),
        alb_key(ACCOUNT, "us-east-1", "2023/12/31", "20231231T2355Z", 15),
        "cf/E2EXAMPLE01.2024-01-01-00.aaa.gz".to_owned(),
        "cf/E2EXAMPLE01.2024-01-31-22.bbb.gz".to_owned(),
        "cf/E2EXAMPLE01.2024-02-02-00.ccc.gz".to_owned(),
        "cf/E2EXAMPLE01.2024-03-05-10.ddd.gz".to_owned(),
        "s3-access/2023-06-01-00-00-00-2A1B2C3D4E5F6A7B".to_owned(),
        "s3-access/2024-01-31-22-59-59-3A1B2C3D4E5F6A7B".to_owned(),
        "s3-access/2024-02-02-00-00-00-4A1B2C3D4E5F6A7B".to_owned(),
        // No time in the key; LastModified (now) is outside the range.
        "exports/notes.log".to_owned(),
    ];
    let mut objects = Vec::new();
    for (n, key) in keys_in.iter().chain(&keys_out).enumerate() {
        objects.push(put_alb(&moto, key, n as u64, 3).await);
    }
    let config = config(dir.path(), &moto, &receiver, "");
    let output = import(&[
        "--config",
        config.to_str().unwrap(),
        &format!("s3://{BUCKET}"),
        "--since",
        "2024-01-31T23:00:00Z",
        "--until",
        "2024-02-02",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let rows = settled(&receiver).await;
    let imported: BTreeSet<String> = rows_by_key(&rows).into_keys().collect();
    let expected: BTreeSet<String> = keys_in.iter().cloned().collect();
    assert_eq!(imported, expected);
    let selected: Vec<&LogObject> = objects
        .iter()
        .filter(|object| expected.contains(&object.key))
        .collect();
    assert_stored_once(&rows, &selected);
    let alb = rows
        .iter()
        .find(|row| row.fields["key"] == keys_in[3])
        .unwrap();
    assert_eq!(alb.fields["bucket"], BUCKET);
    assert_eq!(alb.fields["account"], ACCOUNT);
    assert_eq!(alb.fields["region"], "eu-west-1");
    assert_eq!(summary_number(&output, "objects", "imported"), 10);
    assert_eq!(summary_number(&output, "records", "records"), 30);

    // What was listed: folders level by level with a delimiter, then only
    // the range's days (and the day before it) under each region.
    let requests = list_requests(&output);
    let flat: BTreeSet<&str> = requests
        .iter()
        .filter(|(_, delimited, _)| !delimited)
        .map(|(prefix, _, _)| prefix.as_str())
        .collect();
    let days = |account: &str, region: &str| {
        ["2024/01/30/", "2024/01/31/", "2024/02/01/"]
            .map(|day| format!("AWSLogs/{account}/elasticloadbalancing/{region}/{day}"))
    };
    let expected_flat: BTreeSet<String> = days(ACCOUNT, "us-east-1")
        .into_iter()
        .chain(days(ACCOUNT, "eu-west-1"))
        .chain(days("210987654321", "us-east-1"))
        .collect();
    assert_eq!(
        flat,
        expected_flat.iter().map(String::as_str).collect(),
        "{requests:#?}"
    );
    let delimited: BTreeSet<&str> = requests
        .iter()
        .filter(|(_, delimited, _)| *delimited)
        .map(|(prefix, _, _)| prefix.as_str())
        .collect();
    let expected_delimited: BTreeSet<&str> = [
        "",
        "AWSLogs/",
        "AWSLogs/123456789012/",
        "AWSLogs/210987654321/",
        "AWSLogs/123456789012/elasticloadbalancing/",
        "AWSLogs/210987654321/elasticloadbalancing/",
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/",
        "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/",
        "AWSLogs/210987654321/elasticloadbalancing/us-east-1/",
        "cf/",
        "exports/",
        "s3-access/",
    ]
    .into();
    assert_eq!(delimited, expected_delimited, "{requests:#?}");
    // The flat-dated folders were entered at the range, not read from
    // their start: CloudFront per distribution, access logs by time.
    let seeks: BTreeSet<&str> = requests
        .iter()
        .map(|(_, _, after)| after.as_str())
        .filter(|after| !after.is_empty())
        .collect();
    for seek in [
        "cf/E2EXAMPLE01.2024-01-31-23",
        "cf/E2EXAMPLE01.~",
        "s3-access/2024-01-31-23-00-00",
        "s3-access/2024-~",
    ] {
        assert!(seeks.contains(seek), "no seek to {seek}: {requests:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_without_sending_finished_objects_again() {
    let moto = MotoServer::start();
    let receiver = VictoriaLogs::start();
    moto.create_bucket(BUCKET).await;
    let dir = TempDir::new().unwrap();
    let mut objects = Vec::new();
    for n in 0..16 {
        let key = alb_key(
            ACCOUNT,
            "us-east-1",
            "2024/05/01",
            &format!("20240501T00{n:02}Z"),
            n,
        );
        objects.push(put_alb(&moto, &key, 100 + u64::from(n), 20).await);
    }
    let config = config(dir.path(), &moto, &receiver, "");
    let checkpoint = dir.path().join("import.checkpoint");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "s3://backfill/AWSLogs/",
        "--concurrency",
        "1",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    // Slow deliveries leave time to interrupt mid-way.
    receiver.delay_next(10_000, Duration::from_millis(250));
    let running = spawn(&args);
    let deadline = Instant::now() + WAIT;
    while receiver.rows().len() < 4 * 20 {
        assert!(
            Instant::now() < deadline,
            "nothing imported: {}",
            std::fs::read_to_string(&running.stderr).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let first = wait_with_timeout(running);
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    assert!(stderr(&first).contains("interrupted"), "{}", stderr(&first));
    let first_done = summary_number(&first, "objects", "imported");
    assert!(
        (4..16).contains(&first_done),
        "interrupted mid-way: {}",
        stderr(&first)
    );
    let rows_after_first = settled(&receiver).await.len();
    assert_eq!(
        rows_after_first as u64,
        first_done * 20,
        "in-flight objects finished before the exit, nothing more"
    );

    let second = import(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        summary_number(&second, "objects", "imported"),
        16 - first_done
    );
    assert_eq!(summary_number(&second, "objects", "already"), first_done);
    let rows = settled(&receiver).await;
    let all: Vec<&LogObject> = objects.iter().collect();
    assert_stored_once(&rows, &all);
    assert_eq!(rows.len(), 16 * 20, "no object was sent twice");

    // A third run finds nothing to do.
    let third = import(&args);
    assert!(third.status.success());
    assert_eq!(summary_number(&third, "objects", "imported"), 0);
    assert_eq!(settled(&receiver).await.len(), 16 * 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_pages_of_a_thousand_and_a_corrupt_object() {
    let moto = MotoServer::start();
    let receiver = VictoriaLogs::start();
    moto.create_bucket(BUCKET).await;
    let dir = TempDir::new().unwrap();
    let mut objects = Vec::new();
    let odd = [
        "bulk/with space/a b.log".to_owned(),
        "bulk/plus+sign+key.log".to_owned(),
        "bulk/percent%41 and ü.log".to_owned(),
    ];
    let keys: Vec<String> = odd
        .iter()
        .cloned()
        .chain((0..1010).map(|n| format!("bulk/many/{n:05}.log")))
        .collect();
    let mut uploads = tokio::task::JoinSet::new();
    for (n, key) in keys.iter().enumerate() {
        let object = LogObject::alb(key, 1000 + n as u64, 1);
        let put = moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(object.text().into_bytes().into());
        uploads.spawn(async move { put.send().await.expect("put an object") });
        objects.push(object);
        if uploads.len() >= 32 {
            uploads.join_next().await;
        }
    }
    uploads.join_all().await;
    moto.put_object(
        BUCKET,
        "bulk/corrupt.log.gz",
        b"\x1f\x8b\x08\x00 not gzip at all".to_vec(),
    )
    .await;
    let config = config(dir.path(), &moto, &receiver, "");
    let checkpoint = dir.path().join("bulk.checkpoint");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "s3://backfill/bulk/",
        "--concurrency",
        "8",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    let output = import(&args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("failed objects") && text.contains("  s3://backfill/bulk/corrupt.log.gz: "),
        "{text}"
    );
    assert_eq!(
        summary_number(&output, "objects", "imported"),
        keys.len() as u64
    );
    assert_eq!(summary_number(&output, "objects", "failed"), 1);
    // 1,000 objects per page: the folder of 1,010 took two pages.
    let requests = list_requests(&output);
    let many_pages = requests
        .iter()
        .filter(|(prefix, _, _)| prefix == "bulk/many/")
        .count();
    assert_eq!(many_pages, 2, "{requests:#?}");

    let rows = settled(&receiver).await;
    let all: Vec<&LogObject> = objects.iter().collect();
    assert_stored_once(&rows, &all);
    let by_key = rows_by_key(&rows);
    for key in &odd {
        assert_eq!(by_key.get(key), Some(&1), "{key}");
    }

    // The rerun retries only the failed object.
    let again = import(&args);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(summary_number(&again, "objects", "imported"), 0);
    assert_eq!(summary_number(&again, "objects", "failed"), 1);
    assert_eq!(
        summary_number(&again, "objects", "already"),
        keys.len() as u64
    );
    assert_eq!(settled(&receiver).await.len(), rows.len());
}

#[test]
fn a_local_directory_imports_to_stdout_without_configuration_and_dry_runs_count() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("sample-bucket");
    let keys = [
        alb_key(ACCOUNT, "us-east-2", "2024/05/01", "20240501T0005Z", 1),
        alb_key(ACCOUNT, "us-east-2", "2024/05/02", "20240502T0005Z", 2),
        alb_key(ACCOUNT, "us-east-2", "2024/05/03", "20240503T0005Z", 3),
    ];
    let mut bytes = 0;
    for (n, key) in keys.iter().enumerate() {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = gzip(&LogObject::alb(key, n as u64, 5).text());
        if n < 2 {
            bytes += body.len();
        }
        std::fs::write(path, body).unwrap();
    }
    let checkpoint = dir.path().join("local.checkpoint");
    let common = [
        root.to_str().unwrap(),
        "--until",
        "2024-05-03",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    let dry = import(&[&common[..], &["--dry-run"]].concat());
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains(&format!("would import 2 objects ({bytes} bytes")),
        "{}",
        stderr(&dry)
    );
    assert!(dry.stdout.is_empty());
    assert!(!checkpoint.exists(), "a dry run writes no checkpoint");

    let output = import(&common);
    assert!(output.status.success(), "{}", stderr(&output));
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record per line"))
        .collect();
    assert_eq!(records.len(), 10);
    let keys_seen: BTreeSet<&str> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys_seen, keys[..2].iter().map(String::as_str).collect());
    for record in &records {
        assert_eq!(record["bucket"], "sample-bucket");
        assert_eq!(record["account"], ACCOUNT);
        assert_eq!(record["region"], "us-east-2");
        assert_eq!(record["log_type"], "alb");
    }
    assert_eq!(summary_number(&output, "records", "records"), 10);

    // A subfolder of the tree keeps the keys as in the bucket.
    let day = root.join(format!(
        "AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-2/2024/05/03"
    ));
    let output = import(&[
        day.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(text.contains(&keys[2]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_objects_are_collected_by_run_like_s3_events() {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(30)).await;
    let keys = [
        common::alb_key(1),
        common::alb_key(2),
        format!(
            "AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-2/2024/03/01/odd key+plus_20240301T1203Z.log.gz"
        ),
    ];
    let mut objects = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        objects.push(harness.upload_alb(key, 500 + n as u64, 25).await);
    }
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("enqueue.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n[log]\nformat = \"json\"\n",
            harness.moto.endpoint()
        ),
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "s3://alb-logs/AWSLogs/",
        "--enqueue",
        harness.queue.url.as_str(),
    ];
    let output = import(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary_number(&output, "objects", "enqueued"), 3);
    assert_eq!(harness.queue_counts().await.visible, 3);
    assert!(
        harness.receiver.rows().is_empty(),
        "enqueue processes nothing itself"
    );

    let _collector = harness.run(&harness.settings()).await;
    let all: Vec<&LogObject> = objects.iter().collect();
    let rows = wait_for_lines(&harness.receiver, &all).await;
    harness.wait_for_empty_queue().await;
    assert_stored_once(&rows, &all);

    // The checkpoint remembers what was enqueued.
    let again = import(&args);
    assert!(again.status.success());
    assert_eq!(summary_number(&again, "objects", "enqueued"), 0);
    assert_eq!(summary_number(&again, "objects", "already"), 3);
    assert_eq!(harness.queue_counts().await.visible, 0);
}

/// The bucket-shaped folder README's first command imports.
const SAMPLE_BUCKET: &str = "samples/my-log-bucket";

/// `--keys-from`: exactly the keys of the file, not a listing; a missing
/// key is a failed object; the rerun skips the imported ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_file_imports_exactly_them_and_fails_the_missing_one() {
    let moto = MotoServer::start();
    let receiver = VictoriaLogs::start();
    moto.create_bucket(BUCKET).await;
    let dir = TempDir::new().unwrap();
    let existing = [
        alb_key(ACCOUNT, "eu-west-1", "2024/05/01", "20240501T0005Z", 1),
        "retry/with space+plus sign.log.gz".to_owned(),
        "retry/ü%41.log.gz".to_owned(),
    ];
    let mut objects = Vec::new();
    for (n, key) in existing.iter().enumerate() {
        objects.push(put_alb(&moto, key, 7000 + n as u64, 3).await);
    }
    // In the bucket, under the same prefix, but not in the file.
    put_alb(&moto, "retry/not listed.log.gz", 7100, 3).await;
    let missing = "retry/gone away.log.gz";
    let keys_file = dir.path().join("failed-keys.txt");
    std::fs::write(
        &keys_file,
        format!(
            "# keys that failed last time\n{}\n\n{}\r\n{missing}\n# end\n{}\n",
            existing[0], existing[1], existing[2]
        ),
    )
    .unwrap();
    let config = config(dir.path(), &moto, &receiver, "");
    let checkpoint = dir.path().join("keys.checkpoint");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "s3://backfill",
        "--keys-from",
        keys_file.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    // A dry run asks S3 for each key (HeadObject): sizes, and the missing one.
    let dry = import(&[&args[..], &["--dry-run"]].concat());
    let text = stderr(&dry);
    assert_eq!(dry.status.code(), Some(1), "{text}");
    assert!(text.contains("would import 3 objects ("), "{text}");
    assert!(
        text.contains(&format!("  s3://backfill/{missing}: no such key")),
        "{text}"
    );
    assert!(!checkpoint.exists(), "a dry run writes no checkpoint");

    let output = import(&args);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(summary_number(&output, "objects", "imported"), 3, "{text}");
    assert_eq!(summary_number(&output, "objects", "failed"), 1, "{text}");
    assert!(
        text.contains("failed objects") && text.contains(&format!("  s3://backfill/{missing}: ")),
        "{text}"
    );
    assert!(list_requests(&output).is_empty(), "nothing is listed");
    let rows = settled(&receiver).await;
    let all: Vec<&LogObject> = objects.iter().collect();
    assert_stored_once(&rows, &all);
    let by_key = rows_by_key(&rows);
    assert_eq!(by_key.len(), 3, "{by_key:?}");
    for key in &existing {
        assert_eq!(by_key.get(key), Some(&3), "{key}");
    }
    let saved = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(saved.contains(missing), "{saved}");

    // The rerun skips the three and fails the missing one again.
    let again = import(&args);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert_eq!(summary_number(&again, "objects", "imported"), 0);
    assert_eq!(summary_number(&again, "objects", "failed"), 1);
    assert_eq!(summary_number(&again, "objects", "already"), 3);
    assert_eq!(settled(&receiver).await.len(), rows.len());
}

/// Keys from standard input, relative to a local directory; a missing file
/// fails; `--since` with `--keys-from` is refused.
#[test]
fn keys_from_stdin_for_a_local_directory_and_no_time_range() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("bucket");
    let keys = ["logs/a b+c.log", "logs/two.log"];
    for (n, key) in keys.iter().enumerate() {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, LogObject::alb(key, 7200 + n as u64, 2).text()).unwrap();
    }
    std::fs::write(
        root.join("logs/other.log"),
        LogObject::alb("x", 7300, 2).text(),
    )
    .unwrap();
    let checkpoint = dir.path().join("local-keys.checkpoint");
    let mut child = command(&[
        root.to_str().unwrap(),
        "--keys-from",
        "-",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"logs/a b+c.log\nlogs/missing.log\nlogs/two.log\n")
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(summary_number(&output, "objects", "imported"), 2, "{text}");
    assert_eq!(summary_number(&output, "objects", "failed"), 1, "{text}");
    assert!(text.contains("logs/missing.log: no such file"), "{text}");
    let records = String::from_utf8(output.stdout).unwrap();
    let seen: BTreeSet<&str> = records
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|record| keys.iter().copied().find(|k| record["key"] == *k).unwrap())
        .collect();
    assert_eq!(seen, keys.iter().copied().collect());
    assert_eq!(records.lines().count(), 4);

    let refused = import(&[
        root.to_str().unwrap(),
        "--keys-from",
        "-",
        "--since",
        "2024-05-01",
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--since/--until do not apply"),
        "{}",
        stderr(&refused)
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every sample of the bundled parsers that parses without a line error,
/// with the S3 key it would have in a real bucket and its record count
/// (`guest-parsers/*/samples/keys.tsv`).
fn clean_samples() -> BTreeMap<String, (PathBuf, u64)> {
    let mut samples = BTreeMap::new();
    for entry in std::fs::read_dir(workspace().join("guest-parsers")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(index) = std::fs::read_to_string(dir.join("samples/keys.tsv")) else {
            continue;
        };
        for line in index.lines().filter(|line| !line.trim().is_empty()) {
            let [file, key, records, errors] = line.split('\t').collect::<Vec<_>>()[..] else {
                panic!("{}: {line:?}", dir.display());
            };
            if errors == "0" && records != "0" {
                let previous = samples.insert(
                    key.to_string(),
                    (dir.join("samples").join(file), records.parse().unwrap()),
                );
                assert!(previous.is_none(), "two samples share the key {key}");
            }
        }
    }
    samples
}

/// The sample bucket is links to the parsers' own samples, so that it can
/// never drift from them; `S3LOGD_BLESS=1` lays it out anew.
#[test]
fn the_sample_bucket_holds_every_clean_sample_under_its_real_key() {
    let bucket = workspace().join(SAMPLE_BUCKET);
    let samples = clean_samples();
    assert!(samples.len() >= 15, "{} clean samples", samples.len());
    if std::env::var_os("S3LOGD_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&bucket);
        for (key, (file, _)) in &samples {
            let link = bucket.join(key);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            let target = pathdiff(file, link.parent().unwrap());
            std::os::unix::fs::symlink(target, &link).unwrap();
        }
    }
    let mut found = BTreeSet::new();
    let mut pending = vec![bucket.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("the sample bucket exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let key = path
                .strip_prefix(&bucket)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let (file, _) = samples.get(&key).unwrap_or_else(|| {
                panic!("{key} is no clean sample's key; rerun with S3LOGD_BLESS=1")
            });
            assert_eq!(
                std::fs::canonicalize(&path).unwrap(),
                std::fs::canonicalize(file).unwrap(),
                "{key}"
            );
            found.insert(key);
        }
    }
    let missing: Vec<&String> = samples.keys().filter(|key| !found.contains(*key)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}; rerun with S3LOGD_BLESS=1"
    );
}

/// `target` relative to `from` (both under the workspace).
fn pathdiff(target: &Path, from: &Path) -> PathBuf {
    let root = workspace();
    let up = from.strip_prefix(&root).unwrap().components().count();
    let mut relative: PathBuf = std::iter::repeat_n("..", up).collect();
    relative.push(target.strip_prefix(&root).unwrap());
    relative
}

#[test]
fn importing_the_sample_bucket_prints_every_record_of_its_samples() {
    let dir = TempDir::new().unwrap();
    let checkpoint = dir.path().join("sample.checkpoint");
    let bucket = workspace().join(SAMPLE_BUCKET);
    let args = [
        bucket.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    let output = import(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON record per line");
        assert_eq!(record["bucket"], "my-log-bucket");
        *per_key
            .entry(record["key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, u64> = clean_samples()
        .into_iter()
        .map(|(key, (_, records))| (key, records))
        .collect();
    assert_eq!(per_key, expected);
    // The checkpoint has them all: a second run sends nothing again.
    let again = import(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(again.stdout.is_empty());
    assert!(
        stderr(&again).contains("--restart imports them again"),
        "{}",
        stderr(&again)
    );
}
