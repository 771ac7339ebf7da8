//! `s3logd` as a Lambda function, run as Lambda runs it (`bootstrap` with
//! no arguments) against a Runtime API emulator, with moto for S3 and
//! CloudWatch Logs and the store receivers: which events it recognizes,
//! what it answers for each (partial batch responses for SQS, an error
//! for any other event that was not stored whole), what it does when the
//! deadline comes mid-object, and the two Lambda forwarders it replaces:
//! ALB access logs into CloudWatch Logs, and CloudWatch Logs delivered by
//! Firehose into Elasticsearch.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{LogObject, WAIT, alb_key, assert_stored_once, gzip, wait_for_lines};
use s3logd_test_support::elasticsearch::Elasticsearch;
use s3logd_test_support::lambda_runtime::{Outcome, RuntimeApi};
use s3logd_test_support::moto::{self, MotoServer};
use s3logd_test_support::victorialogs::VictoriaLogs;
use serde_json::{Value, json};
use tempfile::TempDir;

const BUCKET: &str = "alb-logs";
/// Long enough for any invocation here that is not about the deadline.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A function process and what it was started with; killed when dropped.
struct Function {
    process: Child,
    log: PathBuf,
    api: RuntimeApi,
    _dir: TempDir,
}

impl Function {
    /// Starts `s3logd` as `bootstrap` with `config` (TOML) and
    /// `[aws]` pointing at moto.
    fn start(moto: &MotoServer, config: &str) -> Function {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config_path = dir.path().join("s3logd.toml");
        let dead_letter = dir.path().join("dead-letter.ndjson");
        std::fs::write(
            &config_path,
            format!(
                "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n\
                 [dead_letter]\npath = {}\n\n{config}",
                moto.endpoint(),
                toml::Value::from(dead_letter.to_str().unwrap()),
            ),
        )
        .unwrap();
        let api = RuntimeApi::start();
        let log = dir.path().join("function.log");
        let output = std::fs::File::create(&log).unwrap();
        let process = moto::aws_env(&mut Command::new(env!("CARGO_BIN_EXE_s3logd")))
            .envs(api.function_env(512))
            // What Lambda sets: the package is the working directory, and a
            // bundled configuration is found there.
            .env("LAMBDA_TASK_ROOT", dir.path())
            .current_dir(dir.path())
            // As in Lambda without a shipped cache: parsers compiled in memory.
            .env_remove("S3LOGD_CACHE_DIR")
            .env("S3LOGD_LAMBDA_DEADLINE_RESERVE_MS", "1000")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("cannot start s3logd");
        Function {
            process,
            log,
            api,
            _dir: dir,
        }
    }

    /// Invokes the function with `event` and waits for its answer.
    async fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        let invocation = self.api.invoke(event, timeout);
        invocation.answered(timeout + WAIT).await.outcome
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::thread::panicking() {
            eprintln!("--- the function's log ---\n{}", self.log_text());
        }
    }
}

/// The S3 event S3 sends for a new object, as it invokes a function.
fn s3_event(bucket: &str, key: &str) -> Value {
    serde_json::from_str(&common::s3_event("ObjectCreated:Put", bucket, key))
        .expect("the harness's S3 event is JSON")
}

/// An SQS record of a Lambda event source mapping, its body `body`.
fn sqs_record(message_id: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1709294700000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:s3logd",
        "awsRegion": "us-east-1",
    })
}

fn sqs_batch(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// An SNS event whose message is `message`, as SNS invokes a function.
fn sns_event(message: &Value) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:s3-events:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:s3-events",
            "Subject": "Amazon S3 Notification",
            "Message": message.to_string(),
            "Timestamp": "2024-03-01T12:05:00.000Z",
        },
    }]})
}

fn victorialogs_config(receiver: &VictoriaLogs, extra: &str) -> String {
    format!(
        "[sink.victorialogs]\nurl = \"{}\"\nbatch_max_age_ms = 100\n\n{extra}",
        receiver.url()
    )
}

async fn upload(moto: &MotoServer, object: &LogObject) {
    moto.put_object(BUCKET, &object.key, gzip(&object.text()))
        .await;
}

fn batch_item_failures(outcome: &Outcome) -> Vec<String> {
    let Outcome::Response(response) = outcome else {
        panic!("an SQS batch is answered, not failed: {outcome:?}");
    };
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {response}"))
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_configuration_that_cannot_start_is_reported_as_an_init_error() {
    let moto = MotoServer::start();
    let mut function = Function::start(
        &moto,
        "[sink.archive]\ntype = \"s3_archive\"\nbucket = \"archive\"\nspool_dir = \"/tmp/spool\"\n",
    );

    let exited = tokio::task::spawn_blocking(move || {
        let status = function.process.wait().unwrap();
        (status, function)
    });
    let (status, function) = tokio::time::timeout(WAIT, exited).await.unwrap().unwrap();
    assert!(!status.success(), "{}", function.log_text());
    let report = function.api.init_error().expect("an init error was posted");
    assert_eq!(report["errorType"], "S3logd.InitError");
    let message = report["errorMessage"].as_str().unwrap();
    assert!(message.contains("sink.archive"), "{message}");
}

#[tokio::test]
async fn an_s3_event_stores_every_line_then_the_invocation_succeeds() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start();
    let object = LogObject::alb(&alb_key(1), 1, 300);
    upload(&moto, &object).await;
    let function = Function::start(&moto, &victorialogs_config(&receiver, ""));

    let outcome = function
        .invoke(s3_event(BUCKET, &object.key), TIMEOUT)
        .await;

    assert_eq!(outcome, Outcome::Response(json!({"stored": 1})));
    // Stored before the answer: nothing is left to deliver after it.
    assert_stored_once(&receiver.rows(), &[&object]);
}

#[tokio::test]
async fn an_sqs_batch_names_exactly_the_message_whose_object_is_corrupt() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start();
    let first = LogObject::alb(&alb_key(1), 1, 200);
    let second = LogObject::alb(&alb_key(3), 3, 200);
    upload(&moto, &first).await;
    upload(&moto, &second).await;
    // A gzip header, then bytes that are no deflate stream.
    let corrupt = alb_key(2);
    let mut bytes = gzip("")[..10].to_vec();
    bytes.extend_from_slice(&[0xff; 64]);
    moto.put_object(BUCKET, &corrupt, bytes).await;
    let function = Function::start(&moto, &victorialogs_config(&receiver, ""));

    let batch = sqs_batch(&[
        sqs_record("m-first", &s3_event(BUCKET, &first.key)),
        sqs_record("m-corrupt", &s3_event(BUCKET, &corrupt)),
        sqs_record("m-second", &s3_event(BUCKET, &second.key)),
        // S3's test event asks for nothing and is done at once.
        sqs_record(
            "m-test",
            &json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
        ),
    ]);
    let outcome = function.invoke(batch, TIMEOUT).await;

    assert_eq!(batch_item_failures(&outcome), ["m-corrupt"]);
    assert_stored_once(&receiver.rows(), &[&first, &second]);
}

#[tokio::test]
async fn an_unrecognized_message_of_a_batch_is_failed_for_the_queues_redrive_policy() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start();
    let object = LogObject::alb(&alb_key(1), 1, 50);
    upload(&moto, &object).await;
    let function = Function::start(&moto, &victorialogs_config(&receiver, ""));

    let batch = sqs_batch(&[
        sqs_record("m-good", &s3_event(BUCKET, &object.key)),
        sqs_record("m-odd", &json!({"hello": "world"})),
    ]);
    let outcome = function.invoke(batch, TIMEOUT).await;

    assert_eq!(batch_item_failures(&outcome), ["m-odd"]);
    assert_stored_once(&receiver.rows(), &[&object]);
}

#[tokio::test]
async fn an_sns_event_is_stored_and_one_naming_a_missing_object_fails_the_invocation() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start();
    let object = LogObject::alb(&alb_key(1), 1, 100);
    upload(&moto, &object).await;
    let function = Function::start(&moto, &victorialogs_config(&receiver, ""));

    let stored = function
        .invoke(sns_event(&s3_event(BUCKET, &object.key)), TIMEOUT)
        .await;
    let missing = function
        .invoke(sns_event(&s3_event(BUCKET, &alb_key(9))), TIMEOUT)
        .await;
    let unrelated = function
        .invoke(
            json!({"Records": [{"eventSource": "aws:dynamodb"}]}),
            TIMEOUT,
        )
        .await;

    assert_eq!(stored, Outcome::Response(json!({"stored": 1})));
    assert_stored_once(&receiver.rows(), &[&object]);
    let Outcome::Error {
        error_type,
        message,
    } = missing
    else {
        panic!("a missing object was reported stored: {missing:?}");
    };
    assert_eq!(error_type, "ObjectsNotStored");
    assert!(
        message.starts_with("1 of 1 objects not stored"),
        "{message}"
    );
    assert!(
        matches!(&unrelated, Outcome::Error { error_type, .. } if error_type == "UnrecognizedEvent"),
        "{unrelated:?}"
    );
}

#[tokio::test]
async fn the_deadline_mid_object_fails_its_message_and_the_retry_stores_it() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = VictoriaLogs::start();
    // Far more records than the in-flight budget holds: with the store
    // down, parsing waits mid-object until the deadline.
    let big = LogObject::alb(&alb_key(1), 1, 20_000);
    let waiting = LogObject::alb(&alb_key(2), 2, 100);
    upload(&moto, &big).await;
    upload(&moto, &waiting).await;
    let function = Function::start(
        &moto,
        &victorialogs_config(
            &receiver,
            "[queue]\nconcurrency = 1\n\n[objects]\nin_flight_bytes = 8388608\nmax_line_bytes = 1048576\n",
        ),
    );
    let batch = sqs_batch(&[
        sqs_record("m-big", &s3_event(BUCKET, &big.key)),
        sqs_record("m-waiting", &s3_event(BUCKET, &waiting.key)),
    ]);
    receiver.set_down(true);

    let cut_short = function.invoke(batch.clone(), Duration::from_secs(5)).await;
    // Answered while the store is still down: the function gave up on
    // the object in work and on the one it had not started.
    assert_eq!(batch_item_failures(&cut_short), ["m-big", "m-waiting"]);
    assert!(
        function.log_text().contains("the deadline drew near"),
        "{}",
        function.log_text()
    );

    receiver.set_down(false);
    let retried = function.invoke(batch, TIMEOUT).await;
    assert_eq!(batch_item_failures(&retried), Vec::<String>::new());
    // At least once: what reached the store before the deadline may be
    // there twice.
    wait_for_lines(&receiver, &[&big, &waiting]).await;
}

/// `count` ALB lines stamped a few minutes ago: CloudWatch Logs refuses
/// events older than 14 days.
fn recent_alb_lines(count: usize) -> LogObject {
    let now = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("date runs");
    let now = String::from_utf8(now.stdout).unwrap();
    let template = LogObject::alb(&alb_key(4), 4, count);
    let lines = template
        .lines
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let mut fields: Vec<&str> = line.splitn(3, ' ').collect();
            let time = format!("{}.{:06}Z", now.trim(), n);
            fields[1] = &time;
            fields.join(" ")
        })
        .collect();
    LogObject {
        key: template.key,
        lines,
    }
}

#[tokio::test]
async fn seed_elb_access_logs_reach_cloudwatch_logs_one_event_per_line() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let object = recent_alb_lines(500);
    upload(&moto, &object).await;
    let function = Function::start(
        &moto,
        "[sink.cloudwatch]\ntype = \"cloudwatch_logs\"\nlog_group = \"/aws/elb/{load_balancer}\"\n\
         log_stream = \"access\"\nmessage = \"raw\"\ncreate_missing = true\nbatch_max_age_ms = 100\n",
    );

    let outcome = function
        .invoke(s3_event(BUCKET, &object.key), TIMEOUT)
        .await;
    assert_eq!(outcome, Outcome::Response(json!({"stored": 1})));

    let logs = aws_sdk_cloudwatchlogs::Client::new(moto.sdk_config());
    let mut messages = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .get_log_events()
            .log_group_name("/aws/elb/app/web-prod/50dc6c495c0c9188")
            .log_stream_name("access")
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("the log stream exists");
        let events = page.events.unwrap_or_default();
        if events.is_empty() {
            break;
        }
        messages.extend(events.into_iter().filter_map(|event| event.message));
        token = page.next_forward_token;
    }
    messages.sort();
    let mut expected = object.lines.clone();
    expected.sort();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn seed_cloudwatch_logs_via_firehose_objects_reach_elasticsearch() {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET).await;
    let receiver = Elasticsearch::start();
    // Firehose writes the subscription records back to back, gzipped,
    // under a key without extension.
    // In the order CloudWatch Logs writes the fields, which detection
    // reads.
    let records: String = (0..3)
        .map(|record| {
            let events: Vec<String> = (0..4)
                .map(|n| {
                    format!(
                        r#"{{"id":"{record}-{n}","timestamp":{},"message":"request {record}-{n} done"}}"#,
                        1_709_294_700_000u64 + n
                    )
                })
                .collect();
            format!(
                r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/ecs/web","logStream":"task-{record}","subscriptionFilters":["to-firehose"],"logEvents":[{}]}}"#,
                events.join(",")
            )
        })
        .collect();
    let key = "firehose/2024/03/01/12/cwl-to-s3-1-2024-03-01-12-05-00-6a1b";
    moto.put_object(BUCKET, key, gzip(&records)).await;
    let function = Function::start(
        &moto,
        &format!(
            "[sink.es]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"cwl-%Y.%m.%d\"\nbatch_max_age_ms = 100\n",
            receiver.url()
        ),
    );

    let outcome = function.invoke(s3_event(BUCKET, key), TIMEOUT).await;

    assert_eq!(outcome, Outcome::Response(json!({"stored": 1})));
    let documents = receiver.documents_in("cwl-2024.03.01");
    let mut messages: Vec<&str> = documents
        .iter()
        .map(|document| document.source["message"].as_str().unwrap_or_default())
        .collect();
    messages.sort();
    let mut expected: Vec<String> = (0..3)
        .flat_map(|record| (0..4).map(move |n| format!("request {record}-{n} done")))
        .collect();
    expected.sort();
    assert_eq!(messages, expected);
    assert!(
        documents
            .iter()
            .all(|document| document.source["logGroup"] == "/ecs/web"),
        "{:?}",
        documents.first()
    );
}
