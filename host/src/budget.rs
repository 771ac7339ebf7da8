//! The global budget of bytes held in memory on their way to the sink.
//!
//! Every buffer of encoded records reserves its size before it is handed to
//! the sink and gives it back when the sink acknowledged it. When the store
//! is slow, reservations stop being returned, the parsing threads wait for
//! room, and the receive loop stops taking messages: memory stays bounded
//! instead of growing with the backlog.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ByteBudget {
    /// One permit per byte.
    permits: Arc<Semaphore>,
    limit: u32,
}

/// Bytes reserved until this is dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    /// A budget of `limit` bytes. A semaphore takes at most `u32::MAX`
    /// permits at once, so larger budgets are capped there (4 GiB).
    pub fn new(limit: u64) -> ByteBudget {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX).max(1);
        ByteBudget {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit,
        }
    }

    /// Waits until `bytes` fit. A buffer larger than the whole budget waits
    /// for the budget to be empty and then takes all of it, so it still
    /// goes through, alone.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.limit);
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(wanted)
            .await
            .expect("the budget's semaphore is never closed");
        Reservation { _permit: permit }
    }

    /// Waits until some of the budget is free and nobody is queued ahead
    /// (the semaphore is fair), which is when taking more work is useful.
    pub async fn wait_for_room(&self) {
        drop(self.reserve(1).await);
    }

    pub fn used(&self) -> u64 {
        u64::from(self.limit) - self.permits.available_permits() as u64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn finishes<F: Future>(future: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .ok()
    }

    #[tokio::test]
    async fn reservations_wait_until_earlier_ones_are_returned() {
        let budget = ByteBudget::new(100);
        let first = budget.reserve(60).await;
        assert_eq!(budget.used(), 60);
        assert!(finishes(budget.reserve(50)).await.is_none());
        let second = finishes(budget.reserve(40)).await.expect("40 bytes fit");
        assert_eq!(budget.used(), 100);
        assert!(finishes(budget.wait_for_room()).await.is_none());
        drop(first);
        assert_eq!(budget.used(), 40);
        assert!(finishes(budget.wait_for_room()).await.is_some());
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_buffer_larger_than_the_budget_goes_through_alone() {
        let budget = ByteBudget::new(100);
        let small = budget.reserve(10).await;
        assert!(finishes(budget.reserve(500)).await.is_none());
        drop(small);
        let large = finishes(budget.reserve(500))
            .await
            .expect("an empty budget admits an oversized buffer");
        assert_eq!(budget.used(), 100);
        drop(large);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_holds_back_new_work() {
        let budget = Arc::new(ByteBudget::new(100));
        let held = budget.reserve(90).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { drop(budget.reserve(50).await) }
        });
        tokio::task::yield_now().await;
        // 10 bytes are free, but the parser waiting for 50 comes first.
        assert!(finishes(budget.wait_for_room()).await.is_none());
        drop(held);
        waiting.await.unwrap();
        assert!(finishes(budget.wait_for_room()).await.is_some());
    }
}
