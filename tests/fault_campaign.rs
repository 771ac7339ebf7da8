//! The randomized fault campaign (issue 16): for a bounded time, objects of
//! four formats keep arriving in moto's S3 while faults chosen from a seed
//! hit every peer of `s3logd run`: the store answers 5xx and 429, slowly,
//! drops connections or goes down; S3 and SQS calls (through a
//! [`FaultProxy`] in front of moto) are cut, reset, answered with errors,
//! stalled or trickled, or the whole endpoint goes away; and the collector
//! is SIGKILLed and started again with the same configuration. Then the
//! faults stop and the queue must drain.
//!
//! The invariant, checked at the end: every line of every object is in the
//! store at least once (duplicates are allowed, counted and printed) and no
//! message is left in the queue. A failure prints the seed; replay it with
//!
//!     S3LOGD_CAMPAIGN_SEED=<seed> S3LOGD_CAMPAIGN_SECS=<secs> \
//!         cargo test -p s3logd --test fault_campaign -- --nocapture
//!
//! `S3LOGD_CAMPAIGN_SECS` (default 60) is how long faults are injected. The
//! drain may take as long as the backlog needs, but a queue that stops
//! shrinking for four minutes is a failure, not a slow pass.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::formats::Format;
use common::{BUCKET, Collector, Harness, LogObject, Notify, Settings, copies_of_lines};
use s3logd_test_support::env_number;
use s3logd_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use s3logd_test_support::moto::QueueCounts;

/// Used when `S3LOGD_CAMPAIGN_SEED` is unset, so that CI runs one known campaign.
const DEFAULT_SEED: u64 = 0x5eed_0016;
/// How long the queue may stay as full once the faults stop: several
/// visibility timeouts of messages whose objects failed last. A queue that
/// keeps shrinking may take longer: a long campaign leaves a backlog no
/// fixed time clears.
const DRAIN_STALL: Duration = Duration::from_secs(240);
/// The collector's visibility timeout: short, so that a killed collector's
/// messages and failed objects come back quickly.
const VISIBILITY_SECS: u32 = 10;
const TICK_MIN: Duration = Duration::from_millis(100);
const TICK_MAX: Duration = Duration::from_millis(300);
/// Chances per tick of a new object and of a new fault.
const OBJECT_CHANCE: f64 = 0.7;
const FAULT_CHANCE: f64 = 0.25;
const MAX_LINES_PER_OBJECT: usize = 400;

#[tokio::test]
async fn every_line_survives_random_faults_kills_and_restarts() {
    let seed = std::env::var("S3LOGD_CAMPAIGN_SEED").map_or(DEFAULT_SEED, |text| {
        text.parse()
            .unwrap_or_else(|e| panic!("S3LOGD_CAMPAIGN_SEED={text:?}: {e}"))
    });
    let seconds = env_number("S3LOGD_CAMPAIGN_SECS", 60);
    println!(
        "fault campaign: seed {seed}, {seconds} s of faults \
         (replay: S3LOGD_CAMPAIGN_SEED={seed} S3LOGD_CAMPAIGN_SECS={seconds})"
    );

    let harness = Harness::start(Notify::Queue, Duration::from_secs(VISIBILITY_SECS.into())).await;
    let aws = FaultProxy::start(moto_address(&harness));
    let settings = campaign_settings(&harness, &aws);
    let mut campaign = Campaign {
        seed,
        rng: fastrand::Rng::with_seed(seed),
        harness: &harness,
        aws: &aws,
        collector: harness.run(&settings).await,
        settings,
        objects: Vec::new(),
        faults: BTreeMap::new(),
        runs: 1,
        store_up_at: None,
        aws_up_at: None,
    };
    let end = Instant::now() + Duration::from_secs(seconds as u64);
    while Instant::now() < end {
        campaign.tick().await;
    }
    campaign.stop_faults();
    println!(
        "faults stopped; draining {} objects",
        campaign.objects.len()
    );
    campaign.check().await;
}

/// The harness's settings with S3 and SQS behind the proxy, every format
/// routed, and the queue's timings short.
fn campaign_settings(harness: &Harness, aws: &FaultProxy) -> Settings {
    let mut settings = harness.settings();
    settings.endpoint_url = aws.url();
    settings.routes = Format::routes();
    settings.visibility_timeout_secs = VISIBILITY_SECS;
    settings.heartbeat_interval_secs = 3;
    // Under this many faults a message may be received many times; giving
    // it up to a redrive policy the queue does not have would leave it behind.
    settings.max_receive_count = 10_000;
    settings.log_level = "info".to_owned();
    settings
}

fn moto_address(harness: &Harness) -> SocketAddr {
    let endpoint = harness.moto.endpoint();
    endpoint
        .strip_prefix("http://")
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("moto's endpoint {endpoint} is not http://<ip>:<port>"))
}

struct Campaign<'h> {
    seed: u64,
    rng: fastrand::Rng,
    harness: &'h Harness,
    /// S3 and SQS, as the collector reaches them.
    aws: &'h FaultProxy,
    collector: Collector,
    settings: Settings,
    objects: Vec<LogObject>,
    /// Faults scripted, by kind.
    faults: BTreeMap<&'static str, u64>,
    /// Collector processes started.
    runs: u64,
    store_up_at: Option<Instant>,
    aws_up_at: Option<Instant>,
}

/// A fault kind and how it is scripted.
type Inject = fn(&mut Campaign<'_>);

/// Besides these, as likely as each: a SIGKILL of the collector and its restart.
const FAULTS: [(&str, Inject); 14] = [
    ("store 5xx", |c| {
        let status = [500, 502, 503][c.rng.usize(..3)];
        let n = c.rng.usize(1..4);
        c.harness.receiver.fail_next(n, status);
    }),
    ("store 429", |c| {
        let n = c.rng.usize(1..3);
        c.harness.receiver.fail_next_with_retry_after(n, 429, "1");
    }),
    ("store slow", |c| {
        let delay = Duration::from_millis(c.rng.u64(500..6000));
        c.harness.receiver.delay_next(c.rng.usize(1..3), delay);
    }),
    ("store drops connection", |c| {
        let n = c.rng.usize(1..3);
        c.harness.receiver.drop_connection_next(n);
    }),
    ("store down", |c| {
        c.harness.receiver.set_down(true);
        c.store_up_at = Some(Instant::now() + Duration::from_millis(c.rng.u64(1000..4000)));
    }),
    ("s3 body cut", |c| {
        let after = c.rng.usize(0..4000);
        c.aws_rule(Match::S3GetObject, Fault::CutBodyAfter(after));
    }),
    ("s3 reset", |c| c.aws_rule(Match::S3GetObject, Fault::Reset)),
    ("s3 503 slow down", |c| {
        let answer = Fault::Answer {
            status: 503,
            content_type: "application/xml",
            body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                    <Message>Please reduce your request rate.</Message></Error>"
                .to_vec(),
        };
        c.aws_rule(Match::S3GetObject, answer);
    }),
    ("s3 stall", |c| {
        let stall = Duration::from_millis(c.rng.u64(1000..8000));
        c.aws_rule(Match::S3GetObject, Fault::Stall(stall));
    }),
    ("s3 trickle", |c| {
        let bytes_per_sec = c.rng.usize(2_000..50_000);
        c.aws_rule(Match::S3GetObject, Fault::Trickle { bytes_per_sec });
    }),
    ("sqs receive error", |c| {
        c.aws_rule(Match::SqsAction("ReceiveMessage"), sqs_error())
    }),
    ("sqs delete reset", |c| {
        c.aws_rule(Match::SqsAction("DeleteMessage"), Fault::Reset);
        c.aws_rule(Match::SqsAction("DeleteMessageBatch"), Fault::Reset);
    }),
    ("sqs visibility error", |c| {
        c.aws_rule(Match::SqsAction("ChangeMessageVisibility"), sqs_error());
        c.aws_rule(
            Match::SqsAction("ChangeMessageVisibilityBatch"),
            sqs_error(),
        );
    }),
    ("s3 and sqs down", |c| {
        c.aws.set_down(true);
        c.aws_up_at = Some(Instant::now() + Duration::from_millis(c.rng.u64(500..3000)));
    }),
];
const KILL: &str = "sigkill and restart";

/// An SQS server error as the JSON protocol answers it.
fn sqs_error() -> Fault {
    Fault::Answer {
        status: 500,
        content_type: "application/x-amz-json-1.0",
        body: br#"{"__type":"com.amazonaws.sqs#InternalError","message":"injected by the fault campaign"}"#
            .to_vec(),
    }
}

impl Campaign<'_> {
    /// One step: maybe a new object, maybe a new fault, outages that are
    /// over ended, then a short random pause.
    async fn tick(&mut self) {
        if self.rng.f64() < OBJECT_CHANCE {
            self.upload().await;
        }
        if self.rng.f64() < FAULT_CHANCE {
            match FAULTS.get(self.rng.usize(..=FAULTS.len())) {
                Some(&(kind, inject)) => {
                    *self.faults.entry(kind).or_default() += 1;
                    inject(self);
                }
                None => {
                    *self.faults.entry(KILL).or_default() += 1;
                    self.kill_and_restart().await;
                }
            }
        }
        let now = Instant::now();
        if self.store_up_at.is_some_and(|at| at <= now) {
            self.harness.receiver.set_down(false);
            self.store_up_at = None;
        }
        if self.aws_up_at.is_some_and(|at| at <= now) {
            self.aws.set_down(false);
            self.aws_up_at = None;
        }
        let pause = self
            .rng
            .u64(TICK_MIN.as_millis() as u64..TICK_MAX.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    async fn upload(&mut self) {
        let n = self.objects.len() as u64;
        let lines = self.rng.usize(1..=MAX_LINES_PER_OBJECT);
        let format = Format::ALL[self.rng.usize(..Format::ALL.len())];
        let (object, body) = format.object(n, lines);
        self.harness
            .moto
            .put_object(BUCKET, &object.key, body)
            .await;
        self.objects.push(object);
    }

    /// The next one to three matching requests meet `fault`.
    fn aws_rule(&mut self, matcher: Match, fault: Fault) {
        let times = self.rng.u64(1..4);
        self.aws.inject(Rule::new(matcher, fault).times(times));
    }

    async fn kill_and_restart(&mut self) {
        self.collector.kill();
        let down = Duration::from_millis(self.rng.u64(0..1500));
        tokio::time::sleep(down).await;
        // The start-up needs S3 and SQS only once it polls, so an outage
        // underway does not stop it.
        self.collector = self.harness.run(&self.settings).await;
        self.runs += 1;
    }

    /// Everything forwarded and answered again; faults already scripted on
    /// the store are used up by the next requests.
    fn stop_faults(&mut self) {
        self.aws.clear();
        self.aws.set_down(false);
        self.harness.receiver.set_down(false);
        self.store_up_at = None;
        self.aws_up_at = None;
    }

    /// Waits until the queue is empty, failing when it stops shrinking
    /// for [`DRAIN_STALL`].
    async fn drain(&self) {
        let empty = QueueCounts {
            visible: 0,
            not_visible: 0,
        };
        let started = Instant::now();
        let mut fewest = u64::MAX;
        let mut shrunk_at = started;
        loop {
            let counts = self.harness.moto.queue_counts(&self.harness.queue).await;
            if counts == empty {
                println!("queue drained in {:.0} s", started.elapsed().as_secs_f64());
                return;
            }
            let left = counts.visible + counts.not_visible;
            if left < fewest {
                fewest = left;
                shrunk_at = Instant::now();
            }
            assert!(
                shrunk_at.elapsed() < DRAIN_STALL,
                "the queue stopped draining: {counts:?}, no fewer messages for {DRAIN_STALL:?} \
                 (seed {})",
                self.seed
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits for the drain, prints the campaign's figures and asserts the
    /// invariant.
    async fn check(&self) {
        let objects: Vec<&LogObject> = self.objects.iter().collect();
        self.drain().await;
        self.harness.receiver.settle(Duration::from_secs(30)).await;
        let copies = copies_of_lines(&self.harness.receiver.rows(), &objects);
        let missing: Vec<&String> = copies
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(line, _)| line)
            .collect();
        let duplicates: usize = copies.values().map(|n| n.saturating_sub(1)).sum();
        let store_faults = self
            .harness
            .receiver
            .requests()
            .iter()
            .filter(|request| request.status.is_none_or(|status| status >= 429))
            .count();
        let metrics = self.collector.metrics().await;

        println!("seed {}", self.seed);
        println!("collector runs: {} ({} restarts)", self.runs, self.runs - 1);
        println!("faults scripted by kind:");
        for (kind, count) in &self.faults {
            println!("  {kind:<24} {count}");
        }
        println!(
            "faults applied: {} by the S3/SQS proxy, {store_faults} store requests failed or dropped",
            self.aws.injected()
        );
        let by_format: Vec<String> = Format::ALL
            .iter()
            .map(|format| {
                let prefix = format!("{}/", format.parser());
                let count = self
                    .objects
                    .iter()
                    .filter(|object| object.key.starts_with(&prefix))
                    .count();
                format!("{count} {}", format.parser())
            })
            .collect();
        println!("objects: {} ({})", self.objects.len(), by_format.join(", "));
        println!(
            "records checked: {}, missing: {}, duplicates: {duplicates} ({:.2}% of lines stored more than once)",
            copies.len(),
            missing.len(),
            100.0 * copies.values().filter(|&&n| n > 1).count() as f64 / copies.len().max(1) as f64
        );
        println!(
            "last run's collector: {} messages deleted, {} objects failed for a read",
            metrics.value("s3logd_messages_deleted_total"),
            metrics.value("s3logd_objects_failed_total{reason=\"read\"}")
        );

        assert!(
            missing.is_empty(),
            "seed {}: {} of {} lines never stored, e.g. {:?} of {}",
            self.seed,
            missing.len(),
            copies.len(),
            missing[0],
            self.object_of(missing[0]),
        );
        assert_eq!(
            self.harness.queue_counts().await,
            QueueCounts {
                visible: 0,
                not_visible: 0
            },
            "messages left behind"
        );
    }

    /// The key of the object `line` is from.
    fn object_of(&self, line: &str) -> &str {
        self.objects
            .iter()
            .find(|object| object.lines.iter().any(|l| l == line))
            .map_or("no object", |object| &object.key)
    }
}
