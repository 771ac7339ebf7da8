//! Recycled buffers for encoded records and request bodies.
//!
//! The sink's buffers are a megabyte or more, above malloc's mmap threshold
//! (`crate::memory`), so a new one is a fresh mapping whose pages each fault
//! in zeroed and are unmapped again when it is freed: measured, a fifth of
//! the collector's CPU. Buffers come back here once their bytes are sent or
//! compressed, and are let go when the sink goes idle, so that a quiet
//! collector holds none of them.

use std::sync::Mutex;

use super::SEND_BUFFER_BYTES;

/// Room past [`SEND_BUFFER_BYTES`] for the record that fills a buffer, so
/// that it does not reallocate (and copy a megabyte) just before leaving.
const SEND_BUFFER_SLACK: usize = 64 << 10;

/// The sink's two kinds of buffer. Each pool keeps at most what the sink's
/// limits let be in use at once.
pub(super) struct Buffers {
    /// Filled by callers with encoded records, given back once sent or
    /// copied into a batch for compression.
    pub(super) chunks: BufferPool,
    /// Whole batches to compress, given back once compressed.
    pub(super) batches: BufferPool,
}

impl Buffers {
    pub(super) fn new(batch_max_bytes: u64, max_requests_in_flight: u32) -> Buffers {
        let batch_bytes = usize::try_from(batch_max_bytes).unwrap_or(usize::MAX);
        let chunks_per_batch = batch_bytes.div_ceil(SEND_BUFFER_BYTES).max(1);
        // One batch filling and one per request in flight.
        let batches = max_requests_in_flight as usize + 1;
        Buffers {
            chunks: BufferPool::new(
                SEND_BUFFER_BYTES + SEND_BUFFER_SLACK,
                chunks_per_batch.saturating_mul(batches),
            ),
            batches: BufferPool::new(batch_bytes, max_requests_in_flight as usize),
        }
    }

    pub(super) fn release(&self) {
        self.chunks.release();
        self.batches.release();
    }
}

pub(super) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    keep: usize,
}

impl BufferPool {
    /// Hands out buffers of `capacity` bytes and keeps up to `keep` of
    /// those given back.
    pub(super) fn new(capacity: usize, keep: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Vec::with_capacity(keep)),
            capacity,
            keep,
        }
    }

    /// An empty buffer of at least the pool's capacity.
    pub(super) fn take(&self) -> Vec<u8> {
        self.lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Keeps `buffer` for a later [`take`](Self::take), unless the pool is
    /// full or the buffer is too small to serve, or grew so large (one huge
    /// record) that keeping it would hold memory the limits do not plan for.
    pub(super) fn give(&self, mut buffer: Vec<u8>) {
        if !(self.capacity..=self.capacity.saturating_mul(2)).contains(&buffer.capacity()) {
            return;
        }
        buffer.clear();
        let mut free = self.lock();
        if free.len() < self.keep {
            free.push(buffer);
        }
    }

    /// Frees every kept buffer.
    pub(super) fn release(&self) {
        let released = std::mem::take(&mut *self.lock());
        drop(released);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // The list is valid whatever a panicking holder was doing.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_handed_out_again_empty() {
        let pool = BufferPool::new(1024, 2);
        let mut buffer = pool.take();
        assert!(buffer.capacity() >= 1024);
        buffer.extend_from_slice(b"records");
        let address = buffer.as_ptr();
        pool.give(buffer);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same allocation");
        assert!(again.is_empty());
    }

    #[test]
    fn the_pool_keeps_no_more_than_asked_and_nothing_it_cannot_use() {
        let pool = BufferPool::new(1024, 2);
        for _ in 0..3 {
            pool.give(Vec::with_capacity(1024));
        }
        assert_eq!(pool.kept(), 2);
        pool.release();
        pool.give(Vec::with_capacity(100));
        pool.give(Vec::with_capacity(1 << 20));
        assert_eq!(pool.kept(), 0, "too small and too large are freed");
    }

    #[test]
    fn a_pool_of_the_largest_buffers_does_not_overflow() {
        let pool = BufferPool::new(usize::MAX, 1);
        pool.give(Vec::new());
        assert_eq!(pool.kept(), 0);
    }
}
