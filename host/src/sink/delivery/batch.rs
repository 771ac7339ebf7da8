//! Gathers the chunks of every caller into batches bounded by bytes,
//! records and age, and hands each sealed batch to a delivery task, with a
//! bounded number of them in flight. Chunks are never split here, so a
//! batch exceeds the limits only when a single chunk does (delivery then
//! sends it in parts).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::buffers::Buffers;
use super::deliver::Deliverer;
use super::records::Encoded;
use super::{SinkError, Store};
use crate::config::BatchConfig;
use crate::errors::panic_message;

pub(super) struct BatchLimits {
    pub max_bytes: u64,
    pub max_records: u64,
    pub max_age: Duration,
    /// A longer record goes to the dead-letter output unsent.
    pub max_record_bytes: u64,
}

impl BatchLimits {
    pub(super) fn from_config(config: &BatchConfig) -> BatchLimits {
        BatchLimits {
            max_bytes: config.batch_max_bytes,
            max_records: config.batch_max_records,
            max_age: Duration::from_millis(config.batch_max_age_ms),
            max_record_bytes: config.max_record_bytes,
        }
    }
}

/// Records from one `send`.
pub(super) struct Chunk {
    pub records: Encoded,
    pub delivery: oneshot::Sender<Result<(), SinkError>>,
    /// The chunk's share of the buffer budget, returned when it resolves.
    pub budget: OwnedSemaphorePermit,
}

/// A caller waiting for its chunk's outcome.
pub(super) struct Waiter {
    delivery: oneshot::Sender<Result<(), SinkError>>,
    _budget: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Batch {
    /// The chunks' records, in order.
    chunks: Vec<Encoded>,
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
        self.bytes + chunk.records.len() as u64 <= limits.max_bytes
            && self.records + chunk.records.records() <= limits.max_records
    }

    fn is_full(&self, limits: &BatchLimits) -> bool {
        self.bytes >= limits.max_bytes || self.records >= limits.max_records
    }

    fn push(&mut self, chunk: Chunk, limits: &BatchLimits) {
        self.bytes += chunk.records.len() as u64;
        self.records += chunk.records.records();
        self.chunks.push(chunk.records);
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
        waiter.resolve(result.clone());
    }
}

impl Waiter {
    pub(super) fn resolve(self, result: Result<(), SinkError>) {
        // A caller that dropped its Delivery no longer cares.
        let _ = self.delivery.send(result);
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
/// resolved, or once the deliverer's cancellation token fired and everything
/// pending was cancelled.
pub(super) async fn run<S: Store>(
    mut chunks: mpsc::UnboundedReceiver<Chunk>,
    max_requests_in_flight: usize,
    deliverer: Arc<Deliverer<S>>,
    buffers: Arc<Buffers>,
) {
    let cancel = deliverer.cancel.clone();
    let sender = Sender {
        slots: Arc::new(Semaphore::new(max_requests_in_flight)),
        deliverer: deliverer.clone(),
        buffers: buffers.clone(),
    };
    let limits = &deliverer.limits;
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
                if !batch.is_empty() && !batch.has_room_for(&chunk, limits) {
                    sealed = Some(std::mem::take(&mut batch));
                }
                batch.push(chunk, limits);
                if let Some(full) = sealed {
                    sender.dispatch(full, &mut requests).await;
                }
                if !batch.is_full(limits) {
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

struct Sender<S> {
    /// One permit per request allowed in flight.
    slots: Arc<Semaphore>,
    deliverer: Arc<Deliverer<S>>,
    buffers: Arc<Buffers>,
}

impl<S: Store> Sender<S> {
    /// Starts the batch's delivery once a slot is free; while none is, the
    /// batcher waits and the buffer budget makes callers wait too.
    async fn dispatch(&self, batch: Batch, requests: &mut JoinSet<()>) {
        let cancel = &self.deliverer.cancel;
        let slot = tokio::select! {
            biased;
            _ = cancel.cancelled() => return batch.resolve(Err(SinkError::Cancelled)),
            slot = self.slots.clone().acquire_owned() => slot.expect("request slots are never closed"),
        };
        let deliverer = self.deliverer.clone();
        let buffers = self.buffers.clone();
        requests.spawn(async move {
            let _slot = slot;
            let Batch {
                chunks,
                records,
                waiters,
                ..
            } = batch;
            // In a task of its own, so that a panic (compressing the body,
            // say) fails the callers' records instead of dropping them
            // unanswered, which reads as cancelled.
            let delivering = tokio::spawn({
                let deliverer = deliverer.clone();
                async move { deliverer.deliver(chunks).await }
            });
            match delivering.await {
                Ok((results, recycled)) => {
                    for (waiter, result) in waiters.into_iter().zip(results) {
                        waiter.resolve(result);
                    }
                    for buffer in recycled {
                        buffers.chunks.give(buffer);
                    }
                }
                Err(error) if error.is_panic() => {
                    deliverer.stats.failures.fetch_add(records, Relaxed);
                    let error = SinkError::Panicked {
                        sink: deliverer.name.clone(),
                        reason: panic_message(&*error.into_panic()).to_owned(),
                    };
                    resolve(waiters, Err(error));
                }
                Err(_) => resolve(waiters, Err(SinkError::Cancelled)),
            }
        });
    }
}
