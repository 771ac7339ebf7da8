//! `s3logd import`: backfills objects already in a bucket or a local
//! directory through the same processing as `run` (see
//! [`s3logd::source::import`]), or announces them to the queue with
//! `--enqueue`; prints a summary and exits non-zero if any object failed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use s3logd::config::{Config, LogFormat};
use s3logd::logging::Escaped;
use s3logd::shutdown::Shutdown;
use s3logd::source::import::checkpoint::Checkpoint;
use s3logd::source::import::keys::KeysFile;
use s3logd::source::import::layouts::TimeRange;
use s3logd::source::import::listing::Store;
use s3logd::source::import::progress::{LogWriter, human_bytes};
use s3logd::source::import::{Import, Source, Summary, Work};
use s3logd::time::{format_time, parse_time};

use super::run::{Processing, processing};

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file (sinks, routes, parsers, AWS settings);
    /// `queue.url` is not needed. Without a file or without a
    /// `[sink.<name>]`, records go to standard output as the file sink
    /// writes them.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `s3://bucket/prefix`, or a local file or directory laid out like a
    /// bucket (keys are paths below it, or below the folder holding
    /// `AWSLogs/`).
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<String>,
    /// Only objects whose key time (else LastModified) is at or after this:
    /// RFC 3339 (`2024-05-01T12:00:00Z`) or a date (`2024-05-01`), UTC.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only objects whose key time is before this (excluded), same forms.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Import exactly the keys this file lists (`-`: standard input)
    /// instead of listing the SOURCE: one key a line, as S3 spells it
    /// (UTF-8, not URL-encoded); blank lines and lines starting with `#`
    /// are skipped. Takes one SOURCE: `s3://bucket[/prefix]` (full keys; a
    /// key outside the prefix is skipped) or a local directory (keys
    /// relative to it). Not with --since/--until. The checkpoint applies
    /// as for a listing; a key that does not exist is a failed object. For
    /// retrying the failed keys of an earlier run, or a query's list.
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    keys_from: Option<String>,
    /// Objects processed at once [default: queue.concurrency].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// The checkpoint file [default: beside the configuration, named after
    /// the sources].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Forget the checkpoint and import everything in the range again.
    #[arg(long)]
    restart: bool,
    /// List what would be imported (count and bytes) without reading it.
    #[arg(long)]
    dry_run: bool,
    /// Send one S3-event message per object to this SQS queue (for the
    /// `s3logd run` collectors consuming it) instead of processing here.
    #[arg(long, value_name = "QUEUE_URL")]
    enqueue: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let range = TimeRange {
        since: args
            .since
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        until: args
            .until
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    if let (Some(since), Some(until)) = (range.since, range.until)
        && since >= until
    {
        bail!("--since must be before --until");
    }
    if args.keys_from.is_some() {
        if args.since.is_some() || args.until.is_some() {
            bail!(
                "--keys-from imports exactly the keys listed: --since/--until do not apply to them"
            );
        }
        if args.sources.len() != 1 {
            bail!("--keys-from takes exactly one SOURCE (the bucket or directory the keys are in)");
        }
    }
    if args.concurrency == Some(0) {
        bail!("--concurrency must be at least 1");
    }
    let mut config = load_config(args.config.as_deref(), args.concurrency)?;
    let all_local = args
        .sources
        .iter()
        .all(|source| !source.starts_with("s3://"));
    if all_local && args.enqueue.is_none() && config.aws.region.is_none() {
        // No AWS call is made: spare the region lookup (instance metadata).
        config.aws.region = Some("us-east-1".to_owned());
    }
    s3logd::logging::init(&config.log, LogWriter);
    s3logd::memory::limit_malloc_caching();
    let checkpoint_path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint(args.config.as_deref(), &args));
    let runtime = super::async_runtime(&config)?;
    let result = runtime.block_on(import(config, args, range, checkpoint_path));
    runtime.shutdown_background();
    result
}

/// The configuration, with a stdout file sink when there is none.
/// `--concurrency` stands in for `queue.concurrency`, so that the budget's
/// shares and its checks are made for as many objects as are in work.
fn load_config(path: Option<&Path>, concurrency: Option<usize>) -> Result<Config> {
    super::load_config_without_queue(path, |table| {
        if let (Some(toml::Value::Table(queue)), Some(concurrency)) =
            (table.get_mut("queue"), concurrency)
        {
            let concurrency = i64::try_from(concurrency).unwrap_or(i64::MAX);
            queue.insert("concurrency".into(), concurrency.into());
        }
        if !table.contains_key("sink") {
            let mut stdout = toml::Table::new();
            stdout.insert("type".into(), "file".into());
            stdout.insert("path".into(), "-".into());
            stdout.insert("fsync".into(), false.into());
            stdout.insert("batch_max_age_ms".into(), 100.into());
            let mut sinks = toml::Table::new();
            sinks.insert("stdout".into(), stdout.into());
            table.insert("sink".into(), sinks.into());
        }
    })
}

/// Beside the configuration, else in the user's state directory
/// (`$XDG_STATE_HOME/s3logd`, `~/.local/state/s3logd`), else in the working
/// directory; named after the sources and the queue, so that another
/// import does not share it.
fn default_checkpoint(config: Option<&Path>, args: &Args) -> PathBuf {
    let mut hash = Sha256::new();
    for source in &args.sources {
        hash.update(source.as_bytes());
        hash.update(b"\n");
    }
    if let Some(queue) = &args.enqueue {
        hash.update(b"enqueue ");
        hash.update(queue.as_bytes());
    }
    let digest = hex::encode(&hash.finalize()[..8]);
    match config {
        Some(config) => {
            let stem = config
                .file_stem()
                .map_or_else(|| "s3logd".into(), |s| s.to_string_lossy().into_owned());
            config.with_file_name(format!("{stem}.import-{digest}.checkpoint"))
        }
        None => {
            let name = format!("import-{digest}.checkpoint");
            let state = std::env::var_os("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state"))
                });
            match state {
                Some(state) => state.join("s3logd").join(name),
                None => PathBuf::from(format!("s3logd-{name}")),
            }
        }
    }
}

async fn import(
    config: Config,
    args: Args,
    range: TimeRange,
    checkpoint_path: PathBuf,
) -> Result<ExitCode> {
    let shutdown = Shutdown::watching_signals();
    let Processing {
        processor,
        metrics,
        sqs,
        ..
    } = processing(&config, &shutdown).await?;
    let sources = args
        .sources
        .iter()
        .map(|text| {
            Source::parse(
                text,
                &processor.s3,
                processor.expected_bucket_owner.as_deref(),
            )
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    let keys_from = match &args.keys_from {
        Some(path) => {
            if let Some(Source {
                store: Store::Local { .. },
                prefix,
                ..
            }) = sources.first()
                && !prefix.is_empty()
                && !prefix.ends_with('/')
            {
                bail!("--keys-from needs a directory or an s3:// SOURCE, not a file");
            }
            Some(KeysFile::open(path).with_context(|| format!("--keys-from {path}: cannot open"))?)
        }
        None => None,
    };
    if args.enqueue.is_some()
        && let Some(local) = sources
            .iter()
            .find(|s| matches!(s.store, Store::Local { .. }))
    {
        bail!(
            "--enqueue announces S3 objects; {} is a local path",
            local.describe()
        );
    }
    let checkpoint = Checkpoint::open(&checkpoint_path, args.restart, args.dry_run)
        .with_context(|| format!("checkpoint {}", checkpoint_path.display()))?;
    tracing::info!(
        checkpoint = %checkpoint_path.display(),
        done_before = checkpoint.done_count(),
        since = range.since.map(format_time).unwrap_or_default(),
        until = range.until.map(format_time).unwrap_or_default(),
        "import starting"
    );
    let region = processor
        .s3
        .config()
        .region()
        .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
    let work = match (&args.enqueue, args.dry_run) {
        (_, true) => Work::DryRun,
        (Some(queue_url), false) => Work::Enqueue {
            sqs,
            queue_url: queue_url.clone(),
            region,
        },
        (None, false) => Work::Process(processor.clone()),
    };
    let terminal = std::io::stderr().is_terminal() && config.log.format == LogFormat::Text;
    let summary = Import {
        sources,
        range,
        keys_from,
        concurrency: config.queue.concurrency as usize,
        work,
        checkpoint,
        shutdown,
        grace_period: Duration::from_secs(config.shutdown.grace_period_secs),
        metrics: Arc::clone(&metrics),
        progress_bar: terminal,
        progress_interval: Duration::from_secs(5),
    }
    .run()
    .await;
    print_summary(&summary, &args, &checkpoint_path);
    let code = if !summary.failed.is_empty() || !summary.listing_errors.is_empty() {
        1
    } else if summary.interrupted {
        130
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

fn print_summary(summary: &Summary, args: &Args, checkpoint: &Path) {
    let seconds = summary.elapsed.as_secs_f64();
    if args.dry_run {
        eprintln!(
            "s3logd import --dry-run: would import {} objects ({} bytes, {}); {} already done; {} list requests",
            summary.to_do,
            summary.to_do_bytes,
            human_bytes(summary.to_do_bytes),
            summary.skipped,
            summary.list_requests,
        );
        if !summary.failed.is_empty() {
            eprintln!("objects that cannot be imported:");
            for (id, reason) in &summary.failed {
                eprintln!("  {}: {}", Escaped(id), Escaped(reason));
            }
        }
        return;
    }
    let verb = if args.enqueue.is_some() {
        "enqueued"
    } else {
        "imported"
    };
    let state = if summary.interrupted {
        "interrupted"
    } else {
        "finished"
    };
    eprintln!("s3logd import {state} in {seconds:.1}s");
    eprintln!(
        "  objects  {} {verb}, {} failed, {} already done (of {} listed in range)",
        summary.done,
        summary.failed.len(),
        summary.skipped,
        summary.to_do + summary.skipped,
    );
    eprintln!(
        "  bytes    {} ({})",
        summary.bytes,
        human_bytes(summary.bytes)
    );
    if args.enqueue.is_none() {
        eprintln!(
            "  lines    {} ({:.0}/s), {} not parsed",
            summary.lines,
            summary.lines as f64 / seconds.max(0.001),
            summary.line_errors
        );
        eprintln!("  records  {}", summary.records);
    }
    eprintln!(
        "  listing  {} requests, {} objects outside the range",
        summary.list_requests, summary.outside_range
    );
    eprintln!(
        "  rate     {:.1} objects/s",
        summary.done as f64 / seconds.max(0.001)
    );
    for error in &summary.listing_errors {
        eprintln!("  listing error: {}", Escaped(error));
    }
    if summary.done == 0 && summary.skipped > 0 {
        eprintln!(
            "every object in range was imported before (checkpoint {}); --restart imports them again",
            checkpoint.display()
        );
    }
    if !summary.failed.is_empty() {
        eprintln!("failed objects (kept in the checkpoint; rerun to retry):");
        for (id, reason) in &summary.failed {
            eprintln!("  {}: {}", Escaped(id), Escaped(reason));
        }
    }
    if !summary.failed_before.is_empty() {
        eprintln!(
            "{} objects failed in an earlier run and were not listed again",
            summary.failed_before.len()
        );
    }
    if summary.interrupted {
        eprintln!("rerun the same command to continue");
    }
    eprintln!("checkpoint: {}", checkpoint.display());
}
