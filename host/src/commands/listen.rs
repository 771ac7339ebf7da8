//! `s3logd listen`: s3logger's job. Accepts TCP connections on
//! `listen.address` and hands every JSON object they carry to the sinks
//! (see [`s3logd::source::listener`]), with the sinks, dead-letter output
//! and metrics endpoint of `run`; drains on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use s3logd::config::Config;
use s3logd::metrics::Metrics;
use s3logd::shutdown::{Drained, Shutdown};
use s3logd::source::listener::Listener;
use s3logd::source::listener::metrics::ListenerMetrics;

use super::run::{render_metrics, start_sinks};

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file: `[listen]` and the `[sink.<name>]`
    /// sections (`queue.url` is not needed).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = super::load_config_without_queue(Some(&args.config), |_| {})?;
    s3logd::logging::init(&config.log, std::io::stderr);
    s3logd::memory::limit_malloc_caching();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(listen(config));
    runtime.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

async fn listen(config: Config) -> Result<()> {
    let shutdown = Shutdown::watching_signals();
    let (sinks, _, _) = start_sinks(&config, &shutdown).await?;
    let metrics = Arc::new(Metrics::default());
    let listener_metrics = Arc::new(ListenerMetrics::default());
    let listener = Listener::bind(
        &config.listen,
        sinks.clone(),
        listener_metrics.clone(),
        &shutdown,
    )
    .await?;

    let metrics_address: SocketAddr = config.metrics.listen.parse()?;
    let render = {
        let metrics = metrics.clone();
        let sinks = sinks.clone();
        move || {
            let mut out = render_metrics(&metrics, 0, &sinks);
            listener_metrics.render(&mut out);
            out
        }
    };
    let server_stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(s3logd::metrics::serve(
        metrics_address,
        metrics.clone(),
        render,
        server_stop.clone(),
    ));
    tracing::info!(address = %listener.local_addr()?, "listening");
    metrics.set_ready();
    let grace = Duration::from_secs(config.shutdown.grace_period_secs);
    let drained = tokio::select! {
        drained = listener.run(&shutdown, grace) => drained,
        served = server => {
            served.expect("the metrics server does not panic")?;
            anyhow::bail!("the metrics server stopped");
        }
    };
    metrics.set_shutting_down();
    if drained == Drained::GraceExpired {
        tracing::warn!(
            grace_period_secs = config.shutdown.grace_period_secs,
            "the grace period expired before every record was delivered"
        );
    }
    server_stop.cancel();
    tracing::info!("stopped");
    Ok(())
}
