//! Gathers the chunks of every caller into batches bounded by bytes,
//! records and age, and hands each sealed batch to a request task, with a
//! bounded number of them in flight. Chunks are never split, so a batch
//! exceeds the limits only when a single chunk does; uncompressed, they are
//! sent one after the other as they are.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::buffers::Buffers;
use super::endpoint::Endpoint;
use super::{SinkError, SinkStats, compress};
use crate::config::{Compression, VictoriaLogsConfig};

pub(super) struct BatchLimits {
    pub max_bytes: u64,
    pub max_records: u64,
    pub max_age: Duration,
}

impl BatchLimits {
    pub(super) fn from_config(config: &VictoriaLogsConfig) -> BatchLimits {
        BatchLimits {
            max_bytes: config.batch_max_bytes,
            max_records: config.batch_max_records,
            max_age: Duration::from_millis(config.batch_max_age_ms),
        }
    }
}

/// Lines from one `send`.
pub(super) struct Chunk {
    pub lines: Vec<u8>,
    pub records: u64,
    pub delivery: oneshot::Sender<Result<(), SinkError>>,
    /// The chunk's share of the buffer budget, returned when it resolves.
    pub budget: OwnedSemaphorePermit,
}

/// A caller waiting for its chunk's outcome.
struct Waiter {
    delivery: oneshot::Sender<Result<(), SinkError>>,
    _budget: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Batch {
    /// The chunks' lines, in order.
    chunks: Vec<Vec<u8>>,
    bytes: u64,
    records: u64,
    waiters: Vec<Waiter>,
    sealed_by: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    fn has_room_for(&self, chunk: &Chunk, limits: &BatchLimits) -> bool {
        self.bytes + chunk.lines.len() as u64 <= limits.max_bytes
            && self.records + chunk.records <= limits.max_records
    }

    fn is_full(&self, limits: &BatchLimits) -> bool {
        self.bytes >= limits.max_bytes || self.records >= limits.max_records
    }

    fn push(&mut self, chunk: Chunk, limits: &BatchLimits) {
        self.bytes += chunk.lines.len() as u64;
        self.chunks.push(chunk.lines);
        self.records += chunk.records;
        self.waiters.push(Waiter {
            delivery: chunk.delivery,
            _budget: chunk.budget,
        });
        self.sealed_by
            .get_or_insert_with(|| Instant::now() + limits.max_age);
    }

    fn resolve(self, result: Result<(), SinkError>) {
        resolve(self.waiters, result);
    }
}

fn resolve(waiters: Vec<Waiter>, result: Result<(), SinkError>) {
    for waiter in waiters {
        // A caller that dropped its Delivery no longer cares.
        let _ = waiter.delivery.send(result.clone());
    }
}

enum Event {
    Chunk(Chunk),
    Aged,
    /// Every handle is gone.
    Closed,
    Cancelled,
    RequestDone,
    /// Nothing was sent or pending for [`RELEASE_BUFFERS_AFTER`].
    Idle,
}

/// How long the sink stays idle before it frees its recycled buffers.
pub(super) const RELEASE_BUFFERS_AFTER: Duration = Duration::from_secs(2);

/// The batching task; returns once every handle is dropped and every batch
/// resolved, or once `cancel` fired and everything pending was cancelled.
pub(super) async fn run(
    mut chunks: mpsc::UnboundedReceiver<Chunk>,
    limits: BatchLimits,
    max_requests_in_flight: usize,
    endpoint: Arc<Endpoint>,
    buffers: Arc<Buffers>,
    stats: Arc<SinkStats>,
    cancel: CancellationToken,
) {
    let sender = Sender {
        slots: Arc::new(Semaphore::new(max_requests_in_flight)),
        endpoint,
        buffers: buffers.clone(),
        stats,
        cancel: cancel.clone(),
    };
    let mut requests = JoinSet::new();
    let mut batch = Batch::default();
    let mut last_event = Instant::now();
    let mut buffers_released = true;
    loop {
        let release_buffers_at = (!buffers_released && batch.is_empty() && requests.is_empty())
            .then(|| last_event + RELEASE_BUFFERS_AFTER);
        let event = tokio::select! {
            biased;
            _ = cancel.cancelled() => Event::Cancelled,
            Some(_) = requests.join_next(), if !requests.is_empty() => Event::RequestDone,
            _ = sleep_until(batch.sealed_by) => Event::Aged,
            chunk = chunks.recv() => chunk.map_or(Event::Closed, Event::Chunk),
            _ = sleep_until(release_buffers_at) => Event::Idle,
        };
        last_event = Instant::now();
        let sealed = match event {
            Event::Chunk(chunk) => {
                buffers_released = false;
                let mut sealed = None;
                if !batch.is_empty() && !batch.has_room_for(&chunk, &limits) {
                    sealed = Some(std::mem::take(&mut batch));
                }
                batch.push(chunk, &limits);
                if let Some(full) = sealed {
                    sender.dispatch(full, &mut requests).await;
                }
                if !batch.is_full(&limits) {
                    continue;
                }
                std::mem::take(&mut batch)
            }
            Event::Aged => std::mem::take(&mut batch),
            Event::Closed => {
                if !batch.is_empty() {
                    sender
                        .dispatch(std::mem::take(&mut batch), &mut requests)
                        .await;
                }
                break;
            }
            Event::Cancelled => {
                std::mem::take(&mut batch).resolve(Err(SinkError::Cancelled));
                // Chunks still queued are dropped with their senders, which
                // resolves them Cancelled; later sends find the channel closed.
                chunks.close();
                break;
            }
            Event::RequestDone => continue,
            Event::Idle => {
                buffers.release();
                buffers_released = true;
                continue;
            }
        };
        sender.dispatch(sealed, &mut requests).await;
    }
    // Request tasks end on their own: accepted, rejected or cancelled.
    while requests.join_next().await.is_some() {}
}

/// Wakes at `deadline`; never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

struct Sender {
    /// One permit per request allowed in flight.
    slots: Arc<Semaphore>,
    endpoint: Arc<Endpoint>,
    buffers: Arc<Buffers>,
    stats: Arc<SinkStats>,
    cancel: CancellationToken,
}

impl Sender {
    /// Starts the batch's request once a slot is free; while none is, the
    /// batcher waits and the buffer budget makes callers wait too.
    async fn dispatch(&self, batch: Batch, requests: &mut JoinSet<()>) {
        let slot = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return batch.resolve(Err(SinkError::Cancelled)),
            slot = self.slots.clone().acquire_owned() => slot.expect("request slots are never closed"),
        };
        requests.spawn(deliver(
            batch,
            self.endpoint.clone(),
            self.buffers.clone(),
            self.stats.clone(),
            self.cancel.clone(),
            slot,
        ));
    }
}

async fn deliver(
    batch: Batch,
    endpoint: Arc<Endpoint>,
    buffers: Arc<Buffers>,
    stats: Arc<SinkStats>,
    cancel: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let Batch {
        chunks,
        bytes: uncompressed_bytes,
        records,
        waiters,
        ..
    } = batch;
    let body = match endpoint.compression() {
        Compression::None => Body::lines(chunks),
        compression => {
            let buffers = buffers.clone();
            // Compression is CPU work of milliseconds per batch: off the
            // async workers.
            tokio::task::spawn_blocking(move || {
                let mut lines = buffers.batches.take();
                for chunk in chunks {
                    lines.extend_from_slice(&chunk);
                    buffers.chunks.give(chunk);
                }
                let (compressed, encoding) = compress(compression, &lines)
                    .expect("compressing into memory does not fail")
                    .expect("a compression other than none compresses");
                buffers.batches.give(lines);
                Body::compressed(compressed, encoding)
            })
            .await
            .expect("compression does not panic")
        }
    };
    let compressed_bytes = body.len();
    let result = endpoint.post_until_accepted(&body, &cancel).await;
    if body.content_encoding().is_none() {
        for buffer in body.into_buffers() {
            buffers.chunks.give(buffer);
        }
    }
    if result.is_ok() {
        stats.records_sent.fetch_add(records, Relaxed);
        stats
            .bytes_sent_uncompressed
            .fetch_add(uncompressed_bytes, Relaxed);
        stats
            .bytes_sent_compressed
            .fetch_add(compressed_bytes, Relaxed);
    }
    resolve(waiters, result);
}
