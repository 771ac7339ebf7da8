//! What every sink shares, written once: callers hand over encoded records
//! ([`Handle::send`]) and learn through a [`Delivery`] when every one of
//! them is accounted for; in between, records are batched by bytes, records
//! and age, sent with a bounded number of requests in flight, retried with
//! backoff (the store's `Retry-After` respected), split when the store
//! finds a request too large, narrowed down to the records a store refuses,
//! and those sent to the dead-letter output.
//!
//! A store supplies only a [`Store`]: how to send a batch's records and
//! what its answer means. Memory stays bounded: `send` waits while the
//! bytes handed over but not yet resolved exceed the sink's buffer budget,
//! so a slow or unreachable store slows the collector down instead of
//! growing the process.

mod backoff;
mod batch;
mod buffers;
mod deliver;
mod records;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::dead_letter::DeadLetter;
use crate::config::BatchConfig;

pub use records::{Encoded, Origin, RecordRef, Records};

use batch::{BatchLimits, Chunk};
use buffers::Buffers;

/// Callers hand records over in buffers of about this size, taken from
/// [`Handle::buffer`].
pub const SEND_BUFFER_BYTES: usize = 1 << 20;

/// How a store sends records and reads its answer.
pub trait Store: Send + Sync + 'static {
    /// Sends `records` once. Retrying, splitting and dead-lettering are
    /// the caller's: the answer only says what became of them.
    fn send(&self, records: &Records) -> impl Future<Output = Answer> + Send;
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Every record is stored.
    Stored,
    /// Nothing is stored, and the same request may succeed later (a
    /// server error, throttling, no connection).
    Retry {
        reason: String,
        /// The least wait the store asked for (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Nothing is stored, because of something in the records (a 400
    /// answer): halves are sent apart until the records the store refuses
    /// on their own are found, and those go to the dead-letter output.
    Refused { reason: String },
    /// Nothing is stored: the request is larger than the store takes. It
    /// is sent again in halves; a record refused this way on its own goes
    /// to the dead-letter output.
    TooLarge { reason: String },
    /// One answer per record, in the order of [`Records::iter`].
    PerRecord(Vec<RecordAnswer>),
    /// The store refuses the request for a reason no record can change (its
    /// credentials, its URL): the records fail, and so do their objects,
    /// whose messages stay for a later attempt.
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAnswer {
    Stored,
    /// Send this record again later.
    Retry(String),
    /// The store will never take this record: to the dead-letter output.
    Refused(String),
}

/// Why a caller's records are not accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// The store refused them for a reason no retry of the records can
    /// change ([`Answer::Failed`]).
    Failed { sink: String, reason: String },
    /// The store refused some for good, and writing those to the
    /// dead-letter output failed.
    DeadLetter { sink: String, reason: String },
    /// Writing an object's lines that gave no record to the dead-letter
    /// output failed.
    DeadLetterLines { reason: String },
    /// Delivering them panicked: a bug in s3logd.
    Panicked { sink: String, reason: String },
    /// The cancellation token fired before they were accounted for (or
    /// the sink had already stopped).
    Cancelled,
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Failed { sink, reason } => {
                write!(f, "sink {sink} refused the records: {reason}")
            }
            SinkError::DeadLetter { sink, reason } => write!(
                f,
                "sink {sink} refused records for good and the dead-letter output failed: {reason}"
            ),
            SinkError::DeadLetterLines { reason } => write!(
                f,
                "lines that gave no record could not be written to the dead-letter output: {reason}"
            ),
            SinkError::Panicked { sink, reason } => {
                write!(f, "sink {sink} panicked delivering the records: {reason}")
            }
            SinkError::Cancelled => f.write_str("delivery was cancelled"),
        }
    }
}

impl std::error::Error for SinkError {}

/// Counters of one sink, for the metrics; read with `load(Relaxed)`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Attempts sent to the store, retries included.
    pub requests: AtomicU64,
    /// Attempts that failed in a retryable way and were scheduled again.
    pub retries: AtomicU64,
    /// Records that failed for good ([`SinkError::Failed`] and
    /// [`SinkError::DeadLetter`]).
    pub failures: AtomicU64,
    /// Records the store accepted.
    pub records_sent: AtomicU64,
    /// Records the store refused for good, written to the dead-letter output.
    pub records_dead_lettered: AtomicU64,
    /// Encoded bytes of the records the store accepted (before compression).
    pub bytes_sent: AtomicU64,
}

/// Resolves once every record of one `send` is accounted for (stored, or
/// refused for good and in the dead-letter output), or they failed.
#[must_use = "records are only known to be accounted for once the Delivery resolves Ok"]
pub struct Delivery(oneshot::Receiver<Result<(), SinkError>>);

impl Delivery {
    fn resolved(result: Result<(), SinkError>) -> Delivery {
        let (sender, receiver) = oneshot::channel();
        // The receiver is alive: it is right here.
        let _ = sender.send(result);
        Delivery(receiver)
    }
}

impl Future for Delivery {
    type Output = Result<(), SinkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A sender dropped unresolved means the sink's tasks are gone.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(SinkError::Cancelled)))
    }
}

/// A cheap handle on a running sink; clones share it. The sink's tasks
/// finish the batches they hold once every handle is dropped.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    chunks: mpsc::UnboundedSender<Chunk>,
    /// One permit per byte handed over and not yet resolved.
    buffer_budget: Arc<Semaphore>,
    buffer_budget_bytes: u32,
    buffers: Arc<Buffers>,
    stats: Arc<SinkStats>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
}

/// The settings of the shared machinery and where it runs.
pub struct Settings<'a> {
    /// The sink's name, in logs and dead letters.
    pub name: &'a str,
    pub batch: &'a BatchConfig,
    pub dead_letter: DeadLetter,
    pub cancel: CancellationToken,
    pub runtime: tokio::runtime::Handle,
}

/// Spawns the batching and sending tasks of a sink delivering to `store`.
pub fn start<S: Store>(store: S, settings: Settings<'_>) -> Handle {
    let Settings {
        name,
        batch: config,
        dead_letter,
        cancel,
        runtime,
    } = settings;
    let stats = Arc::new(SinkStats::default());
    let limits = BatchLimits::from_config(config);
    // One batch filling while the allowed number of requests is in
    // flight; Semaphore permits are counted in u32.
    let buffer_budget_bytes = limits
        .max_bytes
        .saturating_mul(u64::from(config.max_requests_in_flight) + 1)
        .clamp(1, u64::from(u32::MAX)) as u32;
    let buffers = Arc::new(Buffers::new(
        config.batch_max_bytes,
        config.max_requests_in_flight,
    ));
    let (chunks, receiver) = mpsc::unbounded_channel();
    let deliverer = deliver::Deliverer {
        name: name.into(),
        store,
        limits,
        dead_letter,
        stats: stats.clone(),
        cancel: cancel.clone(),
        backoff: backoff::Backoff::default(),
        outage: Default::default(),
    };
    runtime.spawn(batch::run(
        receiver,
        config.max_requests_in_flight as usize,
        Arc::new(deliverer),
        buffers.clone(),
    ));
    Handle {
        shared: Arc::new(Shared {
            chunks,
            buffer_budget: Arc::new(Semaphore::new(buffer_budget_bytes as usize)),
            buffer_budget_bytes,
            buffers,
            stats,
            cancel,
            runtime,
        }),
    }
}

impl Handle {
    /// An empty buffer for the records of a later [`send`](Self::send), of
    /// [`SEND_BUFFER_BYTES`] and some room; recycled from earlier sends.
    pub fn buffer(&self) -> Vec<u8> {
        self.shared.buffers.chunks.take()
    }

    /// Hands over encoded records. Waits while the sink's buffers are full.
    pub async fn send(&self, records: Encoded) -> Delivery {
        let shared = &self.shared;
        if records.is_empty() {
            return Delivery::resolved(Ok(()));
        }
        // A chunk larger than the whole budget waits for all of it.
        let permits = u32::try_from(records.len())
            .unwrap_or(u32::MAX)
            .min(shared.buffer_budget_bytes);
        let budget = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return Delivery::resolved(Err(SinkError::Cancelled)),
            permit = shared.buffer_budget.clone().acquire_many_owned(permits) => {
                permit.expect("the buffer budget is never closed")
            }
        };
        let (delivery, receiver) = oneshot::channel();
        // If the batcher has stopped, the chunk is dropped with its sender
        // and the Delivery resolves Cancelled.
        let _ = shared.chunks.send(Chunk {
            records,
            delivery,
            budget,
        });
        Delivery(receiver)
    }

    /// [`send`](Self::send) for a blocking thread (not an async task).
    pub fn blocking_send(&self, records: Encoded) -> Delivery {
        self.shared.runtime.block_on(self.send(records))
    }

    pub fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }
}

#[cfg(test)]
mod tests;
