//! A real `moto_server` (PyPI `moto[server]`) serving S3, SQS and SNS on
//! 127.0.0.1, plus the set-up steps s3logd's integration tests repeat.
//!
//! moto delivers genuine S3 event notifications: straight to a queue, or
//! through an SNS topic with raw message delivery on or off. Like AWS it
//! also sends one `s3:TestEvent` message when a notification is configured,
//! so a queue that is notified directly starts with that message in it.
//! Keys in its events are form-encoded with Python's `quote_plus`, which
//! also turns `/` into `%2F` (AWS leaves `/` as is): decode keys before
//! comparing them.
//!
//! Start one server per test: each is its own process with its own state,
//! and the SDK clients it hands out belong to the runtime of the test that
//! first uses them.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

/// Region every client is configured for.
pub const REGION: &str = "us-east-1";
/// Static credentials moto accepts (it checks none).
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

/// Gives `command` moto's credentials and region, with nothing of the
/// developer's AWS set-up (profile, session token) leaking in and the
/// credential chain not waiting for instance metadata.
pub fn aws_env(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// Names the moto_server executable to use instead of the workspace venv's.
pub const MOTO_SERVER_ENV: &str = "S3LOGD_MOTO_SERVER";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A running `moto_server` process, killed when dropped.
pub struct MotoServer {
    process: Child,
    endpoint: String,
    log_path: PathBuf,
    sdk_config: SdkConfig,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
}

/// An SQS queue, addressed the two ways AWS APIs need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// A queue's message counts as SQS reports them (`ApproximateNumberOfMessages`
/// and `ApproximateNumberOfMessagesNotVisible`; moto's are exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages a receive could return now.
    pub visible: u64,
    /// Messages received and neither deleted nor back to visible yet.
    pub not_visible: u64,
}

/// How an SNS topic hands S3 events to a subscribed queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnsDelivery {
    /// The SQS body is the SNS JSON envelope; `Message` holds the S3 event as a string.
    Wrapped,
    /// `RawMessageDelivery=true`: the SQS body is the S3 event itself.
    Raw,
}

impl MotoServer {
    /// Starts `moto_server` on a free port and waits until it answers.
    ///
    /// The executable is `$S3LOGD_MOTO_SERVER` if set, else
    /// `<workspace>/.venv/bin/moto_server`, installed there on first use. Panics when it is missing or does
    /// not come up: integration tests must fail, never skip.
    pub fn start() -> MotoServer {
        let program = moto_server_path();
        let port = free_port();
        let log_path =
            std::env::temp_dir().join(format!("s3logd-moto-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path).unwrap_or_else(|e| {
            panic!("cannot create moto_server log {}: {e}", log_path.display())
        });
        let log_for_stderr = log
            .try_clone()
            .expect("cannot duplicate the moto_server log handle");
        let process = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk_config = sdk_config(&endpoint);
        let mut server = MotoServer {
            process,
            s3: aws_sdk_s3::Client::from_conf(s3_config(&sdk_config).build()),
            sqs: aws_sdk_sqs::Client::new(&sdk_config),
            sns: aws_sdk_sns::Client::new(&sdk_config),
            endpoint,
            log_path,
            sdk_config,
        };
        server.wait_until_answering(port);
        server
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL for every service.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The address it listens on, for a proxy to forward to.
    pub fn address(&self) -> std::net::SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .parse()
            .expect("moto listens on an address")
    }

    /// Shared SDK configuration: static test credentials, [`REGION`], this
    /// server's endpoint. S3 clients also need path-style addressing: build
    /// them from [`MotoServer::s3_config`].
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk_config
    }

    /// S3 client configuration with path-style addressing, ready to adjust and build.
    pub fn s3_config(&self) -> aws_sdk_s3::config::Builder {
        s3_config(&self.sdk_config)
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        &self.sns
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let created = self.s3.create_bucket().bucket(bucket).send().await;
        succeeded(&format!("create bucket {bucket}"), created);
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        let put = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send()
            .await;
        succeeded(&format!("put s3://{bucket}/{key}"), put);
    }

    /// Creates a standard queue whose received messages stay invisible for
    /// `visibility_timeout` (whole seconds, as SQS counts them).
    pub async fn create_queue(&self, name: &str, visibility_timeout: Duration) -> Queue {
        let created = self
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            )
            .send()
            .await;
        let url = succeeded(&format!("create queue {name}"), created)
            .queue_url
            .expect("CreateQueue answered without a queue URL");
        let mut attributes = self
            .queue_attributes(&url, QueueAttributeName::QueueArn)
            .await;
        let arn = attributes
            .remove(&QueueAttributeName::QueueArn)
            .expect("GetQueueAttributes answered without QueueArn");
        Queue { url, arn }
    }

    /// Makes `bucket` send an S3 event to `queue` for every `s3:ObjectCreated:*`.
    /// moto sends an `s3:TestEvent` to the queue right away, as AWS does.
    pub async fn notify_queue_on_object_created(&self, bucket: &str, queue: &Queue) {
        let target = QueueConfiguration::builder()
            .queue_arn(&queue.arn)
            .events(Event::S3ObjectCreated)
            .build()
            .expect("queue notification has its required fields");
        let notifications = NotificationConfiguration::builder()
            .queue_configurations(target)
            .build();
        self.put_notifications(bucket, notifications).await;
    }

    /// Creates SNS topic `name` with `queue` subscribed to it, delivering as `delivery` says.
    /// Returns the topic ARN.
    pub async fn create_topic_for_queue(
        &self,
        name: &str,
        queue: &Queue,
        delivery: SnsDelivery,
    ) -> String {
        let created = self.sns.create_topic().name(name).send().await;
        let topic_arn = succeeded(&format!("create topic {name}"), created)
            .topic_arn
            .expect("CreateTopic answered without a topic ARN");
        let raw_delivery = match delivery {
            SnsDelivery::Wrapped => "false",
            SnsDelivery::Raw => "true",
        };
        let subscribed = self
            .sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .attributes("RawMessageDelivery", raw_delivery)
            .send()
            .await;
        succeeded(
            &format!("subscribe {} to {topic_arn}", queue.arn),
            subscribed,
        );
        topic_arn
    }

    /// Makes `bucket` publish an S3 event to the topic for every `s3:ObjectCreated:*`.
    pub async fn notify_topic_on_object_created(&self, bucket: &str, topic_arn: &str) {
        let target = TopicConfiguration::builder()
            .topic_arn(topic_arn)
            .events(Event::S3ObjectCreated)
            .build()
            .expect("topic notification has its required fields");
        let notifications = NotificationConfiguration::builder()
            .topic_configurations(target)
            .build();
        self.put_notifications(bucket, notifications).await;
    }

    /// Receives up to `max` messages (1..=10), waiting at most a second for the
    /// first. This is a real receive: the messages become invisible for the
    /// queue's visibility timeout. Each carries its `ApproximateReceiveCount`.
    pub async fn receive_messages(&self, queue: &Queue, max: i32) -> Vec<Message> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(max)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        succeeded(&format!("receive from {}", queue.url), received)
            .messages
            .unwrap_or_default()
    }

    /// The queue's counts now, without receiving anything.
    pub async fn queue_counts(&self, queue: &Queue) -> QueueCounts {
        let mut attributes = self
            .queue_attributes(&queue.url, QueueAttributeName::All)
            .await;
        let mut count = |name: QueueAttributeName| {
            let text = attributes
                .remove(&name)
                .unwrap_or_else(|| panic!("GetQueueAttributes answered without {name}"));
            text.parse()
                .unwrap_or_else(|e| panic!("{name} is not a count ({text:?}): {e}"))
        };
        QueueCounts {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            not_visible: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        }
    }

    /// Polls the queue until its counts equal `expected`; panics with the last
    /// counts seen if that takes longer than `timeout`.
    pub async fn wait_for_queue_counts(
        &self,
        queue: &Queue,
        expected: QueueCounts,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let counts = self.queue_counts(queue).await;
            if counts == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue {} still has {counts:?} after {timeout:?}, expected {expected:?}",
                queue.url
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn put_notifications(&self, bucket: &str, notifications: NotificationConfiguration) {
        let put = self
            .s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(notifications)
            .send()
            .await;
        succeeded(&format!("configure notifications of {bucket}"), put);
    }

    async fn queue_attributes(
        &self,
        url: &str,
        name: QueueAttributeName,
    ) -> std::collections::HashMap<QueueAttributeName, String> {
        let got = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(name)
            .send()
            .await;
        succeeded(&format!("get attributes of {url}"), got)
            .attributes
            .unwrap_or_default()
    }

    fn wait_until_answering(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Some(status) = self.process.try_wait().expect("cannot poll moto_server") {
                panic!(
                    "moto_server exited with {status} before answering; its output:\n{}",
                    self.log()
                );
            }
            if answers_http(address) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "moto_server did not answer on {address} within {START_TIMEOUT:?}; its output:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(unreadable: {e})"))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Already-exited processes make kill fail; there is nothing to undo then.
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::thread::panicking() {
            eprintln!("moto_server output kept in {}", self.log_path.display());
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// The Python of the venv moto_server runs in, which has botocore: an
/// independent AWS signer to check s3logd's requests against.
pub fn botocore_python() -> PathBuf {
    moto_server_path().with_file_name("python")
}

fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{MOTO_SERVER_ENV} names {}, which does not exist",
            path.display()
        );
        return path;
    }
    venv_tool("moto_server")
}

/// `<workspace>/.venv/bin/<name>`, a tool of `tests/requirements.txt`. The
/// requirements are installed on first use, or again when they grew, so a
/// fresh checkout runs its tests with nothing installed by hand. Test
/// processes running in parallel wait for one another on a lock file.
pub fn venv_tool(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support sits two levels below the workspace root");
    let path = workspace.join(".venv/bin").join(name);
    if !path.is_file() {
        install_requirements(workspace, &path);
    }
    assert!(
        path.is_file(),
        "{name} not found at {}.\nInstall it once from the workspace root:\n    \
         python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt\n\
         (or `just setup`){}.",
        path.display(),
        if name == "moto_server" {
            format!(", or point {MOTO_SERVER_ENV} at a moto_server executable")
        } else {
            String::new()
        }
    );
    path
}

fn install_requirements(workspace: &Path, tool: &Path) {
    let lock = std::fs::File::create(workspace.join("target/.venv-install.lock"))
        .or_else(|_| {
            std::fs::create_dir_all(workspace.join("target"))?;
            std::fs::File::create(workspace.join("target/.venv-install.lock"))
        })
        .expect("cannot create the venv install lock file");
    lock.lock().expect("cannot take the venv install lock");
    if tool.is_file() {
        return;
    }
    let venv = workspace.join(".venv");
    let run = |program: &Path, args: &[&str]| {
        let status = std::process::Command::new(program)
            .args(args)
            .current_dir(workspace)
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "installing the test requirements failed: {} {args:?} ({status:?})",
            program.display()
        );
    };
    eprintln!(
        "installing tests/requirements.txt into {} for {}",
        venv.display(),
        tool.display()
    );
    if !venv.join("bin/pip").is_file() {
        run(Path::new("python3"), &["-m", "venv", ".venv"]);
    }
    run(
        &venv.join("bin/pip"),
        &["install", "--quiet", "-r", "tests/requirements.txt"],
    );
}

fn free_port() -> u16 {
    // The port is free once the probe listener closes; moto binds it right after.
    let probe =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a probe port on 127.0.0.1");
    probe
        .local_addr()
        .expect("probe listener has an address")
        .port()
}

fn answers_http(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, POLL_INTERVAL) else {
        return false;
    };
    let mut status_line = [0u8; 8];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .is_ok()
        && stream
            .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_ok()
        && stream.read_exact(&mut status_line).is_ok()
        && status_line.starts_with(b"HTTP/1.")
}

fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "s3logd-test-support",
    );
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

fn s3_config(sdk_config: &SdkConfig) -> aws_sdk_s3::config::Builder {
    // moto serves every bucket from one host; virtual-hosted addressing
    // would need DNS for <bucket>.127.0.0.1.
    aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(true)
}

fn succeeded<T, E: std::error::Error>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {}", DisplayErrorContext(&e)))
}
