//! The VictoriaLogs sink: JSON lines from many objects are gathered into
//! batches, compressed and POSTed to `/insert/jsonline`, retried until
//! VictoriaLogs accepts them or the collector gives up, and every caller
//! learns through its [`Delivery`] when its records are stored.
//!
//! Memory stays bounded: `send` waits while the bytes handed over but not
//! yet accepted exceed the buffer budget, so a slow or unreachable
//! VictoriaLogs slows the collector down instead of growing the process.

mod batch;
mod body;
mod buffers;
mod compress;
mod endpoint;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};

use anyhow::Context as _;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::VictoriaLogsConfig;

pub use compress::compress;

use batch::{BatchLimits, Chunk};
use buffers::Buffers;
use endpoint::Endpoint;

/// Callers hand records over in buffers of about this size, taken from
/// [`VictoriaLogs::buffer`].
pub const SEND_BUFFER_BYTES: usize = 1 << 20;

/// A cheap handle on the running sink; clones share it. The sink's tasks
/// finish the batches they hold once every handle is dropped.
#[derive(Clone)]
pub struct VictoriaLogs {
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

/// Counters for the collector's metrics; read them with `load(Relaxed)`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// HTTP requests sent, retries included.
    pub requests: AtomicU64,
    /// Attempts that failed in a retryable way and were scheduled again.
    pub retries: AtomicU64,
    /// Batches rejected for good (non-retryable status).
    pub failures: AtomicU64,
    /// Records VictoriaLogs accepted.
    pub records_sent: AtomicU64,
    /// Bytes of accepted batches as JSON lines.
    pub bytes_sent_uncompressed: AtomicU64,
    /// Bytes of accepted batches as sent on the wire.
    pub bytes_sent_compressed: AtomicU64,
}

/// Why records were not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// VictoriaLogs answered with a status that retrying cannot change
    /// (400, 401, 403, 413, ...); `detail` is the start of its answer.
    Rejected { status: u16, detail: String },
    /// The cancellation token fired before the records were accepted (or
    /// the sink had already stopped).
    Cancelled,
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Rejected { status, detail } => {
                write!(f, "VictoriaLogs rejected the records with status {status}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            SinkError::Cancelled => f.write_str("delivery to VictoriaLogs was cancelled"),
        }
    }
}

impl std::error::Error for SinkError {}

/// Resolves once VictoriaLogs accepted every record of one `send`, or
/// they failed for good.
#[must_use = "records are only known to be stored once the Delivery resolves Ok"]
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

impl VictoriaLogs {
    /// Spawns the batching and sending tasks on the current tokio runtime.
    /// `stream_fields` become `_stream_fields`. Fails on settings the HTTP
    /// client cannot use (header names and values, the CA file).
    pub fn start(
        config: &VictoriaLogsConfig,
        stream_fields: Vec<String>,
        cancel: CancellationToken,
    ) -> anyhow::Result<VictoriaLogs> {
        let runtime = tokio::runtime::Handle::try_current()
            .context("the VictoriaLogs sink must start inside a tokio runtime")?;
        let stats = Arc::new(SinkStats::default());
        let endpoint = Endpoint::new(config, &stream_fields, stats.clone())?;
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
        runtime.spawn(batch::run(
            receiver,
            limits,
            config.max_requests_in_flight as usize,
            Arc::new(endpoint),
            buffers.clone(),
            stats.clone(),
            cancel.clone(),
        ));
        Ok(VictoriaLogs {
            shared: Arc::new(Shared {
                chunks,
                buffer_budget: Arc::new(Semaphore::new(buffer_budget_bytes as usize)),
                buffer_budget_bytes,
                buffers,
                stats,
                cancel,
                runtime,
            }),
        })
    }

    /// An empty buffer for the lines of a later [`send`](Self::send), of
    /// [`SEND_BUFFER_BYTES`] and some room; recycled from earlier sends.
    pub fn buffer(&self) -> Vec<u8> {
        self.shared.buffers.chunks.take()
    }

    /// Hands over whole JSON lines (from `JsonLineWriter`) holding
    /// `records` records. Waits while the sink's buffers are full.
    pub async fn send(&self, lines: Vec<u8>, records: u64) -> Delivery {
        let shared = &self.shared;
        if lines.is_empty() {
            return Delivery::resolved(Ok(()));
        }
        // A chunk larger than the whole budget waits for all of it.
        let permits = u32::try_from(lines.len())
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
            lines,
            records,
            delivery,
            budget,
        });
        Delivery(receiver)
    }

    /// [`send`](Self::send) for a blocking thread (not an async task).
    pub fn blocking_send(&self, lines: Vec<u8>, records: u64) -> Delivery {
        self.shared.runtime.block_on(self.send(lines, records))
    }

    pub fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }
}

#[cfg(test)]
mod tests;
