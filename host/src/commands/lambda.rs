//! `s3logd lambda`: the collector as an AWS Lambda function on the
//! `provided.al2023` runtime. Loads the configuration (a bundled file or
//! `S3LOGD_*` variables alone) and the parsers once per cold start, starts
//! the same processing as `run`, then answers the invocations the Lambda
//! Runtime API hands out until the execution environment is shut down.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::run::{Processing, processing};
use s3logd::config::{Config, SinkConfig};
use s3logd::shutdown::Shutdown;
use s3logd::source::lambda::{Function, InvocationFailed};

/// Where a configuration file shipped in the deployment package is looked
/// for, under `$LAMBDA_TASK_ROOT`.
const BUNDLED_CONFIG: &str = "s3logd.toml";
/// `errorType` of a failed start.
const INIT_ERROR: &str = "S3logd.InitError";
/// Compiled parsers shipped in the package, under `$LAMBDA_TASK_ROOT`
/// (read-only there): made by `s3logd parsers` with this binary, they
/// spare every cold start compiling the parsers.
const BUNDLED_CACHE: &str = "parser-cache";

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file; without it, `s3logd.toml` in
    /// `$LAMBDA_TASK_ROOT` if the package has one, else the `S3LOGD_*`
    /// environment variables alone.
    #[arg(long, value_name = "FILE", env = "S3LOGD_CONFIG")]
    config: Option<PathBuf>,
    /// Time kept before each invocation's deadline to abandon unfinished
    /// objects and answer; objects still in work then are reported not
    /// stored.
    #[arg(
        long,
        value_name = "MS",
        env = "S3LOGD_LAMBDA_DEADLINE_RESERVE_MS",
        default_value_t = 2000
    )]
    deadline_reserve_ms: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (runtime, function) = match init(args) {
        Ok(ready) => ready,
        Err(error) => {
            report_init_error(&error);
            return Err(error);
        }
    };
    let result = runtime.block_on(serve(function));
    // Parsing threads of abandoned objects must not hold up the exit.
    runtime.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

/// Everything a cold start does before the first invocation.
fn init(args: Args) -> Result<(tokio::runtime::Runtime, Arc<Function>)> {
    let task_root = std::env::var_os("LAMBDA_TASK_ROOT").map(PathBuf::from);
    let path = args.config.or_else(|| {
        let bundled = task_root.as_ref()?.join(BUNDLED_CONFIG);
        bundled.is_file().then_some(bundled)
    });
    let config = super::load_config_without_queue(path.as_deref(), |_| {})?;
    s3logd::logging::init(&config.log, std::io::stderr);
    refuse_spooling_sinks(&config)?;
    if std::env::var_os("S3LOGD_CACHE_DIR").is_none() {
        // Without a shipped cache, none: parsers are loaded once per
        // execution environment, and a cache in its /tmp would die with it
        // unread.
        let cache = task_root
            .map(|root| root.join(BUNDLED_CACHE))
            .filter(|shipped| shipped.is_dir())
            .unwrap_or_default();
        // SAFETY: no other thread runs yet: the async runtime starts below.
        unsafe { std::env::set_var("S3LOGD_CACHE_DIR", cache) };
    }
    s3logd::memory::limit_malloc_caching();
    let runtime = super::async_runtime(&config)?;
    // Never signalled: each invocation's deadline bounds its own work, and
    // the sinks keep going from one invocation to the next.
    let shutdown = Shutdown::default();
    let Processing {
        processor, metrics, ..
    } = runtime.block_on(processing(&config, &shutdown))?;
    let function = Arc::new(Function {
        processor,
        object_slots: Arc::new(Semaphore::new(config.queue.concurrency as usize)),
        metrics,
        reserve: Duration::from_millis(args.deadline_reserve_ms),
    });
    Ok((runtime, function))
}

/// Tells Lambda why the function could not start, so that the reason is
/// what the invocation reports rather than a bare exit.
fn report_init_error(error: &anyhow::Error) {
    let Some(api) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let report = json!({ "errorType": INIT_ERROR, "errorMessage": format!("{error:#}") });
    let url = format!(
        "http://{}/2018-06-01/runtime/init/error",
        api.to_string_lossy()
    );
    // A runtime of its own: the collector's may be the thing that failed.
    let posted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                reqwest::Client::new()
                    .post(url)
                    .header("Lambda-Runtime-Function-Error-Type", INIT_ERROR)
                    .header("Content-Type", "application/json")
                    .body(report.to_string())
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            })
        });
    if let Err(error) = posted {
        eprintln!("s3logd: reporting the init error to the Runtime API failed: {error:#}");
    }
}

/// An S3 archive sink counts records as delivered once they are in its
/// local spool and uploads later: a function frozen after answering, and
/// discarded at Lambda's will, would lose them.
fn refuse_spooling_sinks(config: &Config) -> Result<()> {
    for (name, sink) in &config.sink {
        if matches!(sink, SinkConfig::S3Archive(_)) {
            anyhow::bail!(
                "sink.{name}: an s3_archive sink cannot run in Lambda: its spool would be lost \
                 when the execution environment is discarded"
            );
        }
    }
    Ok(())
}

async fn serve(function: Arc<Function>) -> Result<()> {
    tracing::info!("waiting for invocations");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            function
                .handle(&event.payload, event.context.deadline)
                .await
                .map_err(|InvocationFailed { kind, message }| Diagnostic {
                    error_type: kind.to_owned(),
                    error_message: message,
                })
        }
    }))
    .await
    .map_err(|error| anyhow::anyhow!("the Lambda runtime stopped: {error}"))
}
