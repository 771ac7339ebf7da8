//! Backfill: objects already in a bucket (or a directory laid out like
//! one), which no notification will ever announce, taken through the same
//! object processing as the queue's (routing, parsers, enrichment from the
//! key, sinks), listed by the time in their keys, and resumable: an object
//! counts as done only once every sink acknowledged all its records, and
//! the [`checkpoint`] remembers it. With `--enqueue` the objects are
//! announced to the collectors' queue instead of processed here.

pub mod checkpoint;
pub mod enqueue;
pub mod keys;
pub mod layouts;
pub mod listing;
pub mod progress;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::notification::ObjectRef;
use crate::object::{NotStored, ObjectProcessor};
use crate::shutdown::{Drained, Shutdown};
use crate::sink::delivery::Origin;
use checkpoint::Checkpoint;
use enqueue::Announced;
use keys::{KeysFile, Named};
use layouts::TimeRange;
use listing::{Entry, ListStats, Store};
use progress::{Counters, Reporter};

/// How long the in-flight work may take to give up once the grace period
/// expired.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(10);
/// Listed objects waiting for a slot; bounds the listing's memory.
const LISTED_QUEUE: usize = 256;

/// One SOURCE of the command line.
#[derive(Clone)]
pub struct Source {
    pub store: Store,
    /// The bucket; for a directory, its name (the records' `bucket` field).
    pub bucket: String,
    pub prefix: String,
}

impl Source {
    /// `s3://bucket/prefix` (read with `s3`, the bucket owned by
    /// `expected_owner` when set), or a local file or directory. A local
    /// path inside an `AWSLogs/` tree is taken relative to the folder
    /// holding `AWSLogs`, so that keys look as they do in the bucket.
    pub fn parse(
        text: &str,
        s3: &aws_sdk_s3::Client,
        expected_owner: Option<&str>,
    ) -> Result<Source, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{text:?} names no bucket"));
            }
            return Ok(Source {
                store: Store::S3 {
                    client: s3.clone(),
                    bucket: bucket.to_owned(),
                    expected_owner: expected_owner.map(str::to_owned),
                },
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        let path = std::path::absolute(text).map_err(|e| format!("{text:?}: {e}"))?;
        let metadata = std::fs::metadata(&path).map_err(|e| format!("{text:?}: {e}"))?;
        let components: Vec<String> = path
            .components()
            .skip(1)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let (root, mut prefix) = match components.iter().position(|c| c == "AWSLogs") {
            Some(at) => {
                let root: PathBuf = std::iter::once("/".to_owned())
                    .chain(components[..at].iter().cloned())
                    .collect();
                (root, components[at..].join("/"))
            }
            None if metadata.is_dir() => (path.clone(), String::new()),
            None => {
                let parent = path.parent().map(PathBuf::from).unwrap_or_default();
                let name = components.last().cloned().unwrap_or_default();
                (parent, name)
            }
        };
        if metadata.is_dir() && !prefix.is_empty() {
            prefix.push('/');
        }
        let bucket = root
            .file_name()
            .map_or_else(|| "local".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Source {
            store: Store::Local { root },
            bucket,
            prefix,
        })
    }

    /// How the checkpoint and the summary name an object.
    pub fn id(&self, key: &str) -> String {
        match &self.store {
            Store::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
            Store::Local { root } => root.join(key).display().to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match &self.store {
            Store::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.prefix),
            Store::Local { root } => root.join(&self.prefix).display().to_string(),
        }
    }
}

/// What happens to each listed object.
pub enum Work {
    Process(Arc<ObjectProcessor>),
    Enqueue {
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        region: String,
    },
    /// Count only.
    DryRun,
}

pub struct Import {
    pub sources: Vec<Source>,
    pub range: TimeRange,
    /// `--keys-from`: the keys to import from the (single) source, instead
    /// of listing it; the range does not apply to them.
    pub keys_from: Option<KeysFile>,
    pub concurrency: usize,
    pub work: Work,
    pub checkpoint: Checkpoint,
    pub shutdown: Shutdown,
    pub grace_period: Duration,
    pub metrics: Arc<Metrics>,
    /// A progress bar (a terminal) rather than log lines.
    pub progress_bar: bool,
    pub progress_interval: Duration,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    pub done: u64,
    pub skipped: u64,
    /// Listed in the range and not done before.
    pub to_do: u64,
    pub to_do_bytes: u64,
    pub failed: Vec<(String, String)>,
    /// Failed in an earlier run and not listed (nor done) in this one.
    pub failed_before: Vec<(String, String)>,
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub line_errors: u64,
    pub list_requests: u64,
    pub outside_range: u64,
    pub elapsed: Duration,
    pub interrupted: bool,
    pub listing_errors: Vec<String>,
}

/// Shared by the object tasks.
struct State {
    checkpoint: Checkpoint,
    failed: Vec<(String, String)>,
    records: u64,
    line_errors: u64,
    enqueued_bytes: u64,
}

impl Import {
    pub async fn run(self) -> Summary {
        let started = Instant::now();
        let Import {
            sources,
            range,
            mut keys_from,
            concurrency,
            work,
            checkpoint,
            shutdown,
            grace_period,
            metrics,
            progress_bar,
            progress_interval,
        } = self;
        let work = Arc::new(work);
        let dry_run = matches!(*work, Work::DryRun);
        let state = Arc::new(Mutex::new(State {
            checkpoint,
            failed: Vec::new(),
            records: 0,
            line_errors: 0,
            enqueued_bytes: 0,
        }));
        let counters = Arc::new(Counters::default());
        let stats = Arc::new(ListStats::default());
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let tasks = TaskTracker::new();
        let stop = shutdown.stop_receiving().clone();

        let reporter = tokio::spawn({
            let counters = counters.clone();
            let metrics = metrics.clone();
            let state = state.clone();
            let enqueue = matches!(*work, Work::Enqueue { .. });
            async move {
                let mut reporter = Reporter::new(progress_bar, progress_interval);
                let mut ticks = tokio::time::interval(Duration::from_millis(200));
                loop {
                    ticks.tick().await;
                    let bytes = if enqueue {
                        state.lock().expect("not poisoned").enqueued_bytes
                    } else {
                        metrics.bytes_read.get()
                    };
                    reporter.tick(&counters, bytes, metrics.lines.get());
                    if counters.finished.load(Ordering::Relaxed) {
                        reporter.finish();
                        return;
                    }
                }
            }
        });

        let mut summary = Summary::default();
        let mut batch: Vec<(Source, Entry, String)> = Vec::new();
        'sources: for source in &sources {
            tracing::info!(source = %source.describe(), "listing");
            let (mut listed, lister) = match keys_from.take() {
                Some(file) => {
                    let (sender, named) = mpsc::channel(LISTED_QUEUE);
                    let store = source.store.clone();
                    let prefix = source.prefix.clone();
                    let stats = stats.clone();
                    let head = !matches!(*work, Work::Process(_));
                    let feeder = tokio::spawn(async move {
                        keys::feed(file, &store, &prefix, head, &stats, &sender).await
                    });
                    (Listed::Keys(named), feeder)
                }
                None => {
                    let (sender, entries) = mpsc::channel(LISTED_QUEUE);
                    let store = source.store.clone();
                    let prefix = source.prefix.clone();
                    let stats = stats.clone();
                    let walker = tokio::spawn(async move {
                        listing::walk(&store, &prefix, range, &stats, &sender).await
                    });
                    (Listed::Walk(entries), walker)
                }
            };
            loop {
                let entry = tokio::select! {
                    biased;
                    () = stop.cancelled() => {
                        summary.interrupted = true;
                        lister.abort();
                        break 'sources;
                    }
                    entry = listed.recv() => entry,
                };
                let Some(named) = entry else { break };
                let key = match &named {
                    Ok(entry) => &entry.key,
                    Err((key, _)) => key,
                };
                let id = source.id(key);
                if state.lock().expect("not poisoned").checkpoint.is_done(&id) {
                    summary.skipped += 1;
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let entry = match named {
                    Ok(entry) => entry,
                    Err((key, reason)) => {
                        // Named by --keys-from and not there: a failed object,
                        // one of those listed, but not one a dry run would import.
                        if !dry_run {
                            summary.to_do += 1;
                        }
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(bucket = %source.bucket, %key, %reason, "object failed");
                        let mut state = state.lock().expect("not poisoned");
                        if let Err(error) = state.checkpoint.record_failed(&id, &reason) {
                            tracing::error!(%error, "writing the checkpoint failed");
                        }
                        state.failed.push((id, reason));
                        continue;
                    }
                };
                summary.to_do += 1;
                summary.to_do_bytes += entry.size;
                if dry_run {
                    continue;
                }
                batch.push((source.clone(), entry, id));
                let full = match *work {
                    Work::Enqueue { .. } => batch.len() >= enqueue::BATCH,
                    _ => true,
                };
                if full
                    && !dispatch(&work, &slots, &tasks, &stop, &state, &counters, &mut batch).await
                {
                    summary.interrupted = true;
                    lister.abort();
                    break 'sources;
                }
            }
            match lister.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(source = %source.describe(), %error, "listing failed");
                    summary.listing_errors.push(error);
                }
                Err(_) => {}
            }
        }
        if !batch.is_empty()
            && !summary.interrupted
            && !dispatch(&work, &slots, &tasks, &stop, &state, &counters, &mut batch).await
        {
            summary.interrupted = true;
        }
        counters
            .total
            .store(if dry_run { 0 } else { summary.to_do }, Ordering::Relaxed);
        counters.listing_finished.store(true, Ordering::Relaxed);

        tasks.close();
        if summary.interrupted {
            tracing::info!(
                objects_in_flight = tasks.len(),
                grace_period = ?grace_period,
                "interrupted: finishing in-flight objects"
            );
            if shutdown.drain(tasks.wait(), grace_period).await == Drained::GraceExpired {
                tracing::warn!("grace period expired; abandoning unfinished objects");
                if tokio::time::timeout(ABANDON_TIMEOUT, tasks.wait())
                    .await
                    .is_err()
                {
                    tracing::error!("unfinished objects did not give up in time");
                }
            }
        } else {
            tasks.wait().await;
        }
        counters.finished.store(true, Ordering::Relaxed);
        let _ = reporter.await;

        let mut state = state.lock().expect("not poisoned");
        if let Err(error) = state.checkpoint.sync() {
            tracing::error!(%error, "saving the checkpoint failed");
        }
        summary.done = counters.done.load(Ordering::Relaxed);
        summary.failed = std::mem::take(&mut state.failed);
        summary.failed_before = state
            .checkpoint
            .failed_before()
            .iter()
            .filter(|(id, _)| !summary.failed.iter().any(|(failed, _)| failed == *id))
            .map(|(id, reason)| (id.clone(), reason.clone()))
            .collect();
        summary.bytes = match *work {
            Work::Enqueue { .. } => state.enqueued_bytes,
            _ => metrics.bytes_read.get(),
        };
        summary.lines = metrics.lines.get();
        summary.records = state.records;
        summary.line_errors = state.line_errors;
        summary.list_requests = stats.requests.load(Ordering::Relaxed);
        summary.outside_range = stats.outside_range.load(Ordering::Relaxed);
        summary.elapsed = started.elapsed();
        summary
    }
}

/// Where the objects of a source come from.
enum Listed {
    Walk(mpsc::Receiver<Entry>),
    Keys(mpsc::Receiver<Named>),
}

impl Listed {
    async fn recv(&mut self) -> Option<Named> {
        match self {
            Listed::Walk(entries) => entries.recv().await.map(Ok),
            Listed::Keys(named) => named.recv().await,
        }
    }
}

/// Starts work on `batch` (emptied) once a slot is free; `false` when the
/// import is stopping instead.
async fn dispatch(
    work: &Arc<Work>,
    slots: &Arc<Semaphore>,
    tasks: &TaskTracker,
    stop: &tokio_util::sync::CancellationToken,
    state: &Arc<Mutex<State>>,
    counters: &Arc<Counters>,
    batch: &mut Vec<(Source, Entry, String)>,
) -> bool {
    let slot = tokio::select! {
        biased;
        () = stop.cancelled() => return false,
        slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
    };
    let batch = std::mem::take(batch);
    let work = work.clone();
    let state = state.clone();
    let counters = counters.clone();
    tasks.spawn(async move {
        let _slot = slot;
        let outcomes = perform(&work, &batch).await;
        let mut state = state.lock().expect("not poisoned");
        for ((source, entry, id), outcome) in batch.iter().zip(outcomes) {
            let recorded = match outcome {
                Outcome::Done { records, line_errors } => {
                    counters.done.fetch_add(1, Ordering::Relaxed);
                    state.records += records;
                    state.line_errors += line_errors;
                    if matches!(*work, Work::Enqueue { .. }) {
                        state.enqueued_bytes += entry.size;
                    }
                    state.checkpoint.record_done(id)
                }
                Outcome::Failed(reason) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(bucket = %source.bucket, key = %entry.key, %reason, "object failed");
                    let recorded = state.checkpoint.record_failed(id, &reason);
                    state.failed.push((id.clone(), reason));
                    recorded
                }
                Outcome::Unfinished => Ok(()),
            };
            if let Err(error) = recorded {
                tracing::error!(%error, "writing the checkpoint failed");
            }
        }
    });
    true
}

enum Outcome {
    Done {
        records: u64,
        line_errors: u64,
    },
    Failed(String),
    /// Abandoned at the end of the grace period: neither done nor failed.
    Unfinished,
}

async fn perform(work: &Work, batch: &[(Source, Entry, String)]) -> Vec<Outcome> {
    match work {
        Work::Process(processor) => {
            let mut outcomes = Vec::with_capacity(batch.len());
            for (source, entry, _) in batch {
                outcomes.push(process(processor, source, entry).await);
            }
            outcomes
        }
        Work::Enqueue {
            sqs,
            queue_url,
            region,
        } => {
            let objects: Vec<Announced> = batch
                .iter()
                .map(|(source, entry, _)| Announced {
                    bucket: source.bucket.clone(),
                    key: entry.key.clone(),
                    size: entry.size,
                    etag: entry.etag.clone(),
                    last_modified: entry.last_modified,
                })
                .collect();
            enqueue::send(sqs, queue_url, region, &objects)
                .await
                .into_iter()
                .map(|sent| match sent {
                    Ok(()) => Outcome::Done {
                        records: 0,
                        line_errors: 0,
                    },
                    Err(reason) => Outcome::Failed(reason),
                })
                .collect()
        }
        Work::DryRun => batch.iter().map(|_| Outcome::Unfinished).collect(),
    }
}

async fn process(processor: &Arc<ObjectProcessor>, source: &Source, entry: &Entry) -> Outcome {
    let object = ObjectRef {
        bucket: source.bucket.clone(),
        key: entry.key.clone(),
        raw_key: entry.key.clone(),
        size: Some(entry.size),
        version_id: None,
        region: None,
        event_time: None,
        event_name: None,
        sequencer: None,
    };
    let processed = match &source.store {
        Store::S3 { .. } => processor.process(&object).await,
        Store::Local { root } => match File::open(root.join(&entry.key)) {
            Ok(file) => {
                let origin = Arc::new(Origin {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version: String::new(),
                });
                processor.process_body(&object, origin, file).await
            }
            Err(error) => return Outcome::Failed(format!("cannot open the file: {error}")),
        },
    };
    match processed {
        Ok(summary) => {
            tracing::debug!(
                bucket = %object.bucket,
                key = %object.key,
                parser = %summary.parser,
                lines = summary.outcome.lines,
                records = summary.outcome.records,
                line_errors = summary.outcome.line_errors,
                "object imported"
            );
            Outcome::Done {
                records: summary.outcome.records,
                line_errors: summary.outcome.line_errors,
            }
        }
        Err(NotStored::Abandoned) => Outcome::Unfinished,
        Err(NotStored::Failed(failure)) => {
            processor.metrics.object_failed(failure.reason);
            Outcome::Failed(format!("{}: {}", failure.reason.label(), failure.detail))
        }
    }
}
