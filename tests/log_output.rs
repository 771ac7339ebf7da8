//! What `s3logd run` writes when what it handles comes from outside
//! (issue 16): object keys, bucket names, message bodies and parser errors
//! holding newlines and other control characters never forge a line of its
//! log, in the text format nor in JSON; no credential of the configuration
//! or the environment appears in any output, at trace level, through
//! failing stores, the dead-letter output, `/metrics` and `check-config`;
//! and `objects.expected_bucket_owner` goes with every GetObject, S3's
//! refusal failing the object, counted, its message kept.
//!
//! moto_server does not check `ExpectedBucketOwner`, so a [`FaultProxy`] in
//! front of it answers as S3 does for a bucket of another account.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use common::{
    ACCOUNT, BUCKET, Harness, LOG_REGION, LogObject, Notify, WAIT, alb_key, gzip, s3_event,
};
use regex::Regex;
use s3logd_test_support::elasticsearch::Elasticsearch;
use s3logd_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use s3logd_test_support::victorialogs::VictoriaLogs;

/// A line of s3logd's text log, as outside text would forge it.
const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR s3logd::ack: forged";
/// An `elb_status_code` that the ALB parser quotes in its line error.
const BAD_STATUS: &str = "200\r\u{1b}[2K\u{b}\u{85}\u{2028}FORGEDSTATUS";

/// The outside values one run was fed.
struct Fed {
    /// An object that is stored, announced with its key URL-encoded.
    stored_key: String,
    /// A missing object, announced with its key as it is.
    missing_key: String,
    bucket: String,
    /// The collector's output, stdout and stderr.
    log: String,
}

/// Runs the collector (`log.format` = `format`) over outside text in every
/// place it logs: a key, a bucket name, a message body and a parser error.
async fn run_with_outside_text(format: &str) -> Fed {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let stored_key = format!(
        "AWSLogs/{ACCOUNT}/elasticloadbalancing/{LOG_REGION}/2024/03/01/forged\r{FORGED}\u{1b}[2K.log.gz"
    );
    let mut object = LogObject::alb(&stored_key, 1, 4);
    object.lines[1] = with_status(&object.lines[1], BAD_STATUS);
    harness
        .moto
        .put_object(BUCKET, &stored_key, gzip(&object.text()))
        .await;
    let encoded: String = url::form_urlencoded::byte_serialize(stored_key.as_bytes()).collect();
    let missing_key = format!("missing\n{FORGED}");
    let bucket = format!("alb-logs\n{FORGED}\u{7f}");

    let mut settings = harness.settings();
    settings.routes = vec![("elasticloadbalancing".to_owned(), "alb".to_owned())];
    settings.env = vec![("S3LOGD_LOG_FORMAT".to_owned(), format.to_owned())];
    settings.extra = dead_letter_section(&dir);
    let mut collector = harness.run(&settings).await;
    for body in [
        s3_event("ObjectCreated:Put", BUCKET, &encoded),
        s3_event("ObjectCreated:Put", BUCKET, &missing_key),
        s3_event("ObjectCreated:Put", &bucket, "object.log"),
        format!("not a notification\n{FORGED}\r\u{1b}[2K"),
    ] {
        harness.send_message(&body).await;
    }
    collector
        .wait_for_metric("s3logd_objects_processed_total", 1.0)
        .await;
    collector
        .wait_for_metric("s3logd_objects_failed_total{reason=\"read\"}", 2.0)
        .await;
    collector
        .wait_for_metric("s3logd_messages_unrecognized_total", 1.0)
        .await;
    collector
        .wait_for_metric("s3logd_parse_errors_total", 1.0)
        .await;
    // Stopped, so that every line of what was counted is written.
    collector.signal(libc::SIGTERM);
    assert!(collector.wait_for_exit(WAIT).await.success());
    Fed {
        stored_key,
        missing_key,
        bucket,
        log: collector.log_text(),
    }
}

/// `line` with its `elb_status_code` (the ninth field) replaced.
fn with_status(line: &str, status: &str) -> String {
    let mut fields: Vec<&str> = line.splitn(10, ' ').collect();
    fields[8] = status;
    fields.join(" ")
}

fn dead_letter_section(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("dead-letter.ndjson");
    format!(
        "[dead_letter]\npath = {}\n",
        toml::Value::from(path.display().to_string())
    )
}

/// Asserts that every forged line in `log` is inside another, its newline
/// escaped, and that there are at least `expected` of them.
fn assert_forged_lines_escaped(log: &str, expected: usize) {
    let found: Vec<usize> = log.match_indices(FORGED).map(|(at, _)| at).collect();
    for &at in &found {
        assert!(
            log[..at].ends_with(r"\n") || log[..at].ends_with(r"\r"),
            "a forged line not escaped at byte {at}:\n{log}"
        );
    }
    assert!(
        found.len() >= expected,
        "{} escaped forged lines, expected at least {expected}:\n{log}",
        found.len()
    );
}

/// Asserts that every line of `log` is one event of the text format: a
/// timestamp and a level first, and no control character in it.
fn assert_text_events(log: &str) {
    let event =
        Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z +(TRACE|DEBUG|INFO|WARN|ERROR) \S")
            .expect("a valid regex");
    for line in log.split_terminator('\n') {
        assert!(event.is_match(line), "not a log line: {line:?}");
        assert!(!line.starts_with(&FORGED[..20]), "a forged line: {line:?}");
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
            "a control character in {line:?}"
        );
    }
}

/// Every line of `log` as a JSON event with a timestamp and a level.
fn json_events(log: &str) -> Vec<serde_json::Value> {
    log.split_terminator('\n')
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line:?}"));
            assert!(
                event["timestamp"].is_string() && event["level"].is_string(),
                "{line}"
            );
            event
        })
        .collect()
}

#[tokio::test]
async fn outside_text_cannot_forge_a_line_of_the_text_log() {
    let fed = run_with_outside_text("text").await;
    let log = &fed.log;
    assert_text_events(log);
    // The stored key, the missing key, the bucket and the message body.
    assert_forged_lines_escaped(log, 4);
    let has_line = |needles: &[&str]| {
        log.lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    };
    assert!(
        has_line(&[
            "object stored",
            r"forged\r2026-01-01T00:00:00.000000Z",
            r"\u{1b}[2K.log.gz"
        ]),
        "{log}"
    );
    assert!(
        has_line(&["object failed", r"missing\n2026-01-01T00:00:00.000000Z"]),
        "{log}"
    );
    assert!(
        has_line(&[
            "object failed",
            r"alb-logs\n2026-01-01T00:00:00.000000Z",
            r"\u{7f}"
        ]),
        "{log}"
    );
    assert!(
        has_line(&[
            "line not parsed",
            r"200\r\u{1b}[2K\u{b}\u{85}\u{2028}FORGEDSTATUS"
        ]),
        "{log}"
    );
    assert!(has_line(&["unrecognized message"]), "{log}");
}

#[tokio::test]
async fn outside_text_stays_inside_its_json_event() {
    let fed = run_with_outside_text("json").await;
    let events = json_events(&fed.log);
    assert_forged_lines_escaped(&fed.log, 3);
    let logged = |message: &str, field: &str, value: &str| {
        events
            .iter()
            .any(|event| event["message"] == message && event[field] == value)
    };
    assert!(
        logged("object stored", "key", &fed.stored_key),
        "{}",
        fed.log
    );
    assert!(
        logged("object failed", "key", &fed.missing_key),
        "{}",
        fed.log
    );
    assert!(
        logged("object failed", "bucket", &fed.bucket),
        "{}",
        fed.log
    );
    assert!(
        events
            .iter()
            .any(|event| event["message"] == "line not parsed"
                && event["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains(BAD_STATUS))),
        "{}",
        fed.log
    );
}

/// Distinctive credentials, each of which must never be shown.
const PASSWORD: &str = "pw-Qz7vK2mX9tLr4W";
const URL_PASSWORD: &str = "urlpw-Hc3nB8sD5yTe";
const BEARER_TOKEN: &str = "bearer-Jf6gN1pV7kZa";
const API_KEY: &str = "apikey-Rm2xE9wQ4uYc";
const HEADER_SECRET: &str = "header-Ls8dF3hG6jKb";
const AWS_SECRET: &str = "awssecret-Pt5cV0bN2mXq";

/// Every form in which a credential above could leak.
fn secret_forms() -> Vec<String> {
    let base64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    let mut forms: Vec<String> = [
        PASSWORD,
        URL_PASSWORD,
        BEARER_TOKEN,
        API_KEY,
        HEADER_SECRET,
        AWS_SECRET,
    ]
    .map(String::from)
    .to_vec();
    forms.push(base64(format!("s3logd:{PASSWORD}")));
    forms.push(base64(format!("s3logd:{URL_PASSWORD}")));
    forms
}

/// The stores, each with other credentials and each failing its own way.
struct Stores {
    /// Basic auth and a secret header; answers 401.
    basic: VictoriaLogs,
    /// Credentials in its URL; drops connections, then stores.
    userinfo: VictoriaLogs,
    /// A bearer token; answers 500, then stores.
    bearer: VictoriaLogs,
    /// An Elasticsearch API key; answers 401.
    search: Elasticsearch,
}

impl Stores {
    fn start() -> Stores {
        let stores = Stores {
            basic: VictoriaLogs::start(),
            userinfo: VictoriaLogs::start(),
            bearer: VictoriaLogs::start(),
            search: Elasticsearch::start(),
        };
        stores.basic.fail_next(1000, 401);
        stores.userinfo.drop_connection_next(3);
        stores.bearer.fail_next(3, 500);
        stores.search.fail_next(1000, 401);
        stores
    }

    fn sections(&self) -> String {
        let userinfo =
            self.userinfo
                .url()
                .replacen("http://", &format!("http://s3logd:{URL_PASSWORD}@"), 1);
        format!(
            r#"
[sink.basic]
type = "victorialogs"
url = "{basic}"
username = "s3logd"
password = "{PASSWORD}"
headers = {{ "X-Api-Key" = "{HEADER_SECRET}" }}
batch_max_age_ms = 100

[sink.userinfo]
type = "victorialogs"
url = "{userinfo}"
batch_max_age_ms = 100

[sink.bearer]
type = "victorialogs"
url = "{bearer}"
bearer_token = "{BEARER_TOKEN}"
batch_max_age_ms = 100

[sink.search]
type = "elasticsearch"
url = "{search}"
api_key = "{API_KEY}"
batch_max_age_ms = 100
"#,
            basic = self.basic.url(),
            bearer = self.bearer.url(),
            search = self.search.url(),
        )
    }
}

/// `s3logd check-config FILE` with the credentials' environment.
fn check_config(path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .arg("check-config")
        .arg(path)
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
        .output()
        .expect("cannot run s3logd check-config")
}

#[tokio::test]
async fn no_credential_appears_in_any_output_at_trace_level() {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let stores = Stores::start();
    let object = harness.upload_alb(&alb_key(1), 7, 20).await;
    let mut settings = harness.settings();
    settings.log_level = "trace".to_owned();
    settings.extra = format!("{}\n{}", dead_letter_section(&dir), stores.sections());
    settings.env = vec![("AWS_SECRET_ACCESS_KEY".to_owned(), AWS_SECRET.to_owned())];
    let mut collector = harness.run(&settings).await;
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &object.key))
        .await;
    for series in [
        "s3logd_sink_failures_total{sink=\"basic\"}",
        "s3logd_sink_failures_total{sink=\"search\"}",
        "s3logd_sink_retries_total{sink=\"userinfo\"}",
        "s3logd_sink_retries_total{sink=\"bearer\"}",
        "s3logd_sink_records_total{sink=\"bearer\"}",
    ] {
        collector.wait_for_metric(series, 1.0).await;
    }
    // Then the bearer store refuses a second object's batch (VictoriaLogs
    // answers 400 when no line of a request could be stored), so that the
    // dead-letter output holds letters of a store that saw a credential.
    let refused_object = harness.upload_alb(&alb_key(2), 8, 5).await;
    let refused = Regex::new(r#"Root=[^\s"]+"#)
        .expect("a valid regex")
        .find(&refused_object.lines[0])
        .expect("an ALB line carries a trace id")
        .as_str()
        .to_owned();
    stores.bearer.refuse_bodies_containing(&refused, 400);
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &refused_object.key))
        .await;
    collector
        .wait_for_metric("s3logd_sink_dead_lettered_total{sink=\"bearer\"}", 1.0)
        .await;
    let metrics = collector.metrics().await.0;
    collector.signal(libc::SIGTERM);
    collector.wait_for_exit(WAIT).await;
    let log = collector.log_text();
    assert_text_events(&log);
    let dead_letters = std::fs::read_to_string(dir.path().join("dead-letter.ndjson"))
        .expect("the refused record is in the dead-letter output");
    assert!(dead_letters.contains(&refused), "{dead_letters}");

    // The credentials went where they belong, so the search below is not
    // vacuous.
    let authorization = |store: &VictoriaLogs| {
        store.requests()[0]
            .headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("s3logd:{PASSWORD}"));
    assert_eq!(authorization(&stores.basic), Some(format!("Basic {basic}")));
    assert_eq!(
        authorization(&stores.bearer),
        Some(format!("Bearer {BEARER_TOKEN}"))
    );
    assert!(authorization(&stores.userinfo).is_some());

    let config = dir.path().join("s3logd.toml");
    let text = settings.to_toml("127.0.0.1:9".parse().unwrap());
    std::fs::write(&config, &text).expect("cannot write the config");
    let checked = check_config(&config);
    assert!(checked.status.success(), "{checked:?}");
    // Every credential at once where it is not allowed, and a URL that
    // does not parse.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "{text}\n[sink.broken]\ntype = \"victorialogs\"\nurl = \"http://s3logd:{URL_PASSWORD}@[::1\"\nusername = \"s3logd\"\npassword = \"{PASSWORD}\"\nbearer_token = \"{BEARER_TOKEN}\"\n"
        ),
    )
    .expect("cannot write the config");
    let refused = check_config(&broken);
    assert!(!refused.status.success(), "{refused:?}");
    let refused_text = String::from_utf8_lossy(&refused.stderr);
    assert!(refused_text.contains("sink.broken.url"), "{refused_text}");

    let outputs = [
        ("the collector's output", log),
        ("/metrics", metrics),
        ("the dead-letter output", dead_letters),
        (
            "check-config",
            format!(
                "{}{}",
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            ),
        ),
        (
            "check-config of a broken file",
            format!(
                "{}{}",
                String::from_utf8_lossy(&refused.stdout),
                refused_text
            ),
        ),
    ];
    for (what, text) in &outputs {
        for secret in secret_forms() {
            assert!(!text.contains(&secret), "{what} shows {secret:?}:\n{text}");
        }
    }
}

/// S3's answer to a request whose `ExpectedBucketOwner` is not the bucket's.
fn access_denied() -> Fault {
    Fault::Answer {
        status: 403,
        content_type: "application/xml",
        body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>".to_vec(),
    }
}

fn owner_header(account: &str) -> Match {
    Match::Header {
        name: "x-amz-expected-bucket-owner",
        value: account.to_owned(),
    }
}

/// The harness with S3 and SQS behind a proxy that refuses GetObject as S3
/// does when `expected_bucket_owner` is not moto's account.
async fn run_expecting_owner(
    harness: &Harness,
    proxy: &FaultProxy,
    owner: &str,
) -> common::Collector {
    if owner != ACCOUNT {
        proxy.inject(Rule::new(owner_header(owner), access_denied()));
    }
    let mut settings = harness.settings();
    settings.endpoint_url = proxy.url();
    settings.extra = format!("[objects]\nexpected_bucket_owner = \"{owner}\"\n");
    harness.run(&settings).await
}

fn proxy_for(harness: &Harness) -> FaultProxy {
    let moto = harness.moto.endpoint();
    let address = moto
        .strip_prefix("http://")
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("moto's endpoint {moto} is not http://<ip>:<port>"));
    FaultProxy::start(address)
}

#[tokio::test]
async fn an_object_of_a_bucket_another_account_owns_is_refused_and_counted() {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(300)).await;
    let proxy = proxy_for(&harness);
    let other_account = "111122223333";
    let collector = run_expecting_owner(&harness, &proxy, other_account).await;
    let object = harness.upload_alb(&alb_key(1), 3, 10).await;
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &object.key))
        .await;
    let metrics = collector
        .wait_for_metric(
            "s3logd_objects_failed_total{reason=\"bucket_owner_mismatch\"}",
            1.0,
        )
        .await;
    assert!(proxy.seen(&owner_header(other_account)) >= 1);
    assert_eq!(metrics.value("s3logd_objects_processed_total"), 0.0);
    assert_eq!(metrics.value("s3logd_messages_deleted_total"), 0.0);
    assert!(harness.receiver.rows().is_empty());
    // Kept for the redrive policy, as for a bucket not allowed.
    let counts = harness.queue_counts().await;
    assert_eq!((counts.visible, counts.not_visible), (0, 1));
    let log = collector.log_text();
    assert!(
        log.lines().any(|line| line.contains("object failed")
            && line.contains("bucket_owner_mismatch")
            && line.contains(other_account)),
        "{log}"
    );
}

#[tokio::test]
async fn an_object_of_the_expected_owner_is_stored() {
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(300)).await;
    let proxy = proxy_for(&harness);
    let _collector = run_expecting_owner(&harness, &proxy, ACCOUNT).await;
    let object = harness.upload_alb(&alb_key(1), 4, 10).await;
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &object.key))
        .await;
    harness
        .expect_each_line_once_then_empty_queue(&[&object])
        .await;
    assert!(proxy.seen(&Match::S3GetObject) >= 1);
    assert_eq!(
        proxy.seen(&owner_header(ACCOUNT)),
        proxy.seen(&Match::S3GetObject)
    );
}
