//! `s3logd run`: the collector. Loads the configuration and the parsers,
//! connects to AWS, starts the sinks and the metrics endpoint, and runs the
//! queue loop until a signal stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use aws_config::{BehaviorVersion, Region};
use regex::Regex;
use tokio::sync::Semaphore;

use s3logd::budget::ByteBudget;
use s3logd::config::{Config, S3Location};
use s3logd::decode::BatchLimits;
use s3logd::metrics::{Metrics, SinkCounters};
use s3logd::object::ObjectProcessor;
use s3logd::object::enrich::Enricher;
use s3logd::object::routing::Router;
use s3logd::parse::{Limits, Parsers, Runtime};
use s3logd::shutdown::Shutdown;
use s3logd::sink::dead_letter::DeadLetter;
use s3logd::sink::{self, Sinks};
use s3logd::source::queue::Collector;

pub fn run(config_path: &Path) -> Result<ExitCode> {
    let config = Config::load(config_path)
        .map_err(|errors| anyhow::anyhow!("{}:\n{errors}", config_path.display()))?;
    s3logd::logging::init(&config.log, std::io::stderr);
    s3logd::memory::limit_malloc_caching();
    let runtime = super::async_runtime(&config)?;
    let result = runtime.block_on(collect(config));
    // Parsing threads of abandoned objects must not hold up the exit.
    runtime.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

async fn collect(config: Config) -> Result<()> {
    let shutdown = Shutdown::watching_signals();
    let Processing {
        processor,
        sinks,
        budget,
        metrics,
        sqs,
    } = processing(&config, &shutdown).await?;

    let listen: SocketAddr = config.metrics.listen.parse()?;
    let render = {
        let metrics = metrics.clone();
        let budget = budget.clone();
        move || render_metrics(&metrics, budget.used(), &sinks)
    };
    let server_stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(s3logd::metrics::serve(
        listen,
        metrics.clone(),
        render,
        server_stop.clone(),
    ));

    let collector = Arc::new(Collector {
        sqs,
        queue: config.queue.clone(),
        processor,
        object_slots: Arc::new(Semaphore::new(config.queue.concurrency as usize)),
        budget,
        metrics,
        shutdown,
        grace_period: Duration::from_secs(config.shutdown.grace_period_secs),
    });
    tracing::info!(queue = %config.queue.url, "collecting");
    if let Err(error) = s3logd::memory::release_startup_pages() {
        tracing::debug!(%error, "start-up pages stay resident");
    }
    tokio::select! {
        () = collector.run() => {}
        served = server => {
            served.expect("the metrics server does not panic")?;
        }
    }
    server_stop.cancel();
    tracing::info!("stopped");
    Ok(())
}

/// What `run` and `import` share: the parsers, AWS clients, sinks and
/// routes, and the object processor built from them.
pub(super) struct Processing {
    pub processor: Arc<ObjectProcessor>,
    pub sinks: Arc<Sinks>,
    pub budget: Arc<ByteBudget>,
    pub metrics: Arc<Metrics>,
    pub sqs: aws_sdk_sqs::Client,
}

/// Loads the parsers, connects to AWS and starts the sinks; their retries
/// stop when `shutdown` abandons.
pub(super) async fn processing(config: &Config, shutdown: &Shutdown) -> Result<Processing> {
    let metrics = Arc::new(Metrics::default());

    let parsers = {
        let limits = Limits {
            call_timeout: Duration::from_millis(config.parsers.call_timeout_ms),
            memory_bytes: (config.parsers.memory_limit_mib as usize) << 20,
        };
        let paths = config.parsers.paths.clone();
        tokio::task::spawn_blocking(move || Parsers::load(Arc::new(Runtime::new(limits)?), &paths))
            .await
            .expect("loading parsers does not panic")?
    };
    let parsers = Arc::new(parsers);
    tracing::info!(parsers = ?parsers.names(), "parsers loaded");

    let (sinks, sqs, s3) = start_sinks(config, shutdown).await?;
    let router = Router::new(
        &config.routes,
        |name| parsers.get(name).cloned(),
        |name| sinks.position(name),
    )?;
    let budget = Arc::new(ByteBudget::new(
        config.objects.in_flight_bytes,
        config.queue.concurrency,
    ));
    let key_regex = config
        .enrich
        .key_regex
        .as_deref()
        .map(Regex::new)
        .transpose()?;
    let processor = Arc::new(ObjectProcessor {
        s3,
        parsers,
        router,
        enricher: Enricher::new(key_regex),
        allowed_buckets: config.objects.allowed_buckets.clone(),
        expected_bucket_owner: config.objects.expected_bucket_owner.clone(),
        limits: BatchLimits {
            max_line_bytes: usize::try_from(config.objects.max_line_bytes).unwrap_or(usize::MAX),
            // At most 1 MiB, validated.
            failed_line_bytes: config.dead_letter.max_line_bytes as usize,
            ..BatchLimits::default()
        },
        sinks: sinks.clone(),
        budget: budget.clone(),
        metrics: metrics.clone(),
    });
    Ok(Processing {
        processor,
        sinks,
        budget,
        metrics,
        sqs,
    })
}

/// The `/metrics` body: the collector's metrics and every sink's counters;
/// `listen` shows its own after them.
pub(super) fn render_metrics(metrics: &Metrics, bytes_in_flight: u64, sinks: &Sinks) -> String {
    let counters: Vec<(&str, SinkCounters)> = sinks
        .all()
        .iter()
        .map(|sink| {
            let stats = sink.handle.stats();
            let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
            let counters = SinkCounters {
                requests: read(&stats.requests),
                retries: read(&stats.retries),
                failures: read(&stats.failures),
                records: read(&stats.records_sent),
                dead_lettered: read(&stats.records_dead_lettered),
                bytes: read(&stats.bytes_sent),
                archive: sink.archive.as_ref().map(|archive| archive.counters()),
            };
            (sink.name.as_str(), counters)
        })
        .collect();
    metrics.render(bytes_in_flight, &counters)
}

/// Connects to AWS and starts the sinks (and their dead-letter output);
/// their retries stop when `shutdown` abandons. `processing` builds on it,
/// `listen` needs only this.
pub(super) async fn start_sinks(
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(Arc<Sinks>, aws_sdk_sqs::Client, aws_sdk_s3::Client)> {
    let (sdk_config, sqs, s3) = aws_clients(config).await;
    let dead_letter = match config
        .dead_letter
        .s3_url
        .as_deref()
        .and_then(S3Location::parse)
    {
        Some(location) => DeadLetter::s3(s3.clone(), location),
        None => DeadLetter::file(&config.dead_letter.path),
    };
    let sinks = Arc::new(Sinks::start(
        &config.sink,
        &sink::Context {
            stream_fields: config.enrich.stream_fields.clone(),
            aws: sdk_config,
            dead_letter,
            cancel: shutdown.abandon().clone(),
        },
    )?);
    Ok((sinks, sqs, s3))
}

/// Credentials and region from aws-config's default chain; the endpoint
/// override (S3-compatible stores, tests) also switches S3 to path-style
/// addressing, which such stores expect.
pub(super) async fn aws_clients(
    config: &Config,
) -> (
    aws_config::SdkConfig,
    aws_sdk_sqs::Client,
    aws_sdk_s3::Client,
) {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &config.aws.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk_config = loader.load().await;
    let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(config.aws.endpoint_url.is_some())
        .build();
    let sqs = aws_sdk_sqs::Client::new(&sdk_config);
    (sdk_config, sqs, aws_sdk_s3::Client::from_conf(s3_config))
}
