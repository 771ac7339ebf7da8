//! The global budget of bytes held in memory on their way to the sink.
//!
//! Every buffer of encoded records reserves its size before it is handed to
//! the sink and gives it back when the sink acknowledged it; the buffers an
//! object grows while it is parsed (a line longer than a batch, the UTF-8
//! repair of a batch) are held from the budget before they grow and given
//! back when they shrink. When the store is slow, reservations stop being
//! returned, the parsing threads wait for room, and the receive loop stops
//! taking messages: memory stays bounded instead of growing with the
//! backlog.
//!
//! An object waits for more while it holds some, so the budget is split
//! such that waiting can never go round in a circle: every object in work
//! may hold up to a share of half the budget, and one object at a time,
//! taking the turn, what the others' shares leave. Whatever an object
//! waits for then fits once the buffers already handed to the sinks are
//! acknowledged, whatever the other objects hold.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A semaphore takes at most `u32::MAX` permits at once: the largest budget.
pub const MAX_BYTES: u64 = u32::MAX as u64;

/// How a budget is split among `queue.concurrency` objects in work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// What every object may hold while it waits for more.
    pub share: u64,
    /// What the object taking the turn may hold: the budget less the other
    /// objects' shares.
    pub turn: u64,
}

impl Split {
    pub fn of(limit: u64, concurrency: u32) -> Split {
        let limit = limit.clamp(1, MAX_BYTES);
        let others = u64::from(concurrency.max(1)) - 1;
        let share = limit / (2 * (others + 1));
        Split {
            share,
            turn: limit - others * share,
        }
    }
}

pub struct ByteBudget {
    /// One permit per byte.
    permits: Arc<Semaphore>,
    limit: u32,
    split: Split,
    /// Held by the one object allowed past its share.
    turn: Arc<Semaphore>,
}

/// Bytes reserved until this is dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    /// A budget of `limit` bytes (at most [`MAX_BYTES`]) for `concurrency`
    /// objects in work at once.
    pub fn new(limit: u64, concurrency: u32) -> ByteBudget {
        let split = Split::of(limit, concurrency);
        let limit = limit.clamp(1, MAX_BYTES) as u32;
        ByteBudget {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit,
            split,
            turn: Arc::new(Semaphore::new(1)),
        }
    }

    /// What one object holds; one per object in work.
    pub fn account(self: &Arc<Self>) -> Account {
        Account {
            held: self
                .permits
                .clone()
                .try_acquire_many_owned(0)
                .expect("no permits are always there"),
            turn: None,
            budget: self.clone(),
        }
    }

    /// Waits until some of the budget is free and nobody is queued ahead
    /// (the semaphore is fair), which is when taking more work is useful.
    pub async fn wait_for_room(&self) {
        drop(self.acquire(1).await);
    }

    pub fn used(&self) -> u64 {
        u64::from(self.limit) - self.permits.available_permits() as u64
    }

    async fn acquire(&self, bytes: u64) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_many_owned(bytes as u32)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

/// The bytes one object holds for its own buffers, and its turn to hold
/// more than a share.
pub struct Account {
    held: OwnedSemaphorePermit,
    turn: Option<OwnedSemaphorePermit>,
    budget: Arc<ByteBudget>,
}

impl Account {
    /// Holds `bytes` in all, waiting for room when that is more than
    /// before.
    pub async fn hold(&mut self, bytes: usize) {
        let bytes = bytes as u64;
        let held = self.held();
        if bytes > held {
            let more = self.room_for(bytes - held).await;
            let permit = self.budget.acquire(more).await;
            self.held.merge(permit);
        } else {
            drop(self.held.split((held - bytes) as usize));
            self.leave_the_turn_within_a_share();
        }
    }

    /// Reserves `bytes` for a buffer handed to the sinks, beside what the
    /// object holds.
    pub async fn reserve(&mut self, bytes: usize) -> Reservation {
        let granted = self.room_for(bytes as u64).await;
        let permit = self.budget.acquire(granted).await;
        self.leave_the_turn_within_a_share();
        Reservation { _permit: permit }
    }

    pub fn held(&self) -> u64 {
        self.held.num_permits() as u64
    }

    /// How much of `wanted` more bytes the object may wait for: as much as
    /// keeps it within its share, or, once it has the turn (waited for
    /// here), within the turn's limit. Beyond that a buffer goes through
    /// uncounted: waiting for it could wait forever.
    async fn room_for(&mut self, wanted: u64) -> u64 {
        let split = self.budget.split;
        let held = self.held();
        if held + wanted > split.share && self.turn.is_none() {
            let turn = self.budget.turn.clone().acquire_owned().await;
            self.turn = Some(turn.expect("the turn's semaphore is never closed"));
        }
        let ceiling = match self.turn {
            Some(_) => split.turn,
            None => split.share,
        };
        wanted.min(ceiling.saturating_sub(held))
    }

    fn leave_the_turn_within_a_share(&mut self) {
        if self.held() <= self.budget.split.share {
            self.turn = None;
        }
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

    #[test]
    fn half_the_budget_is_shared_and_the_turn_takes_what_the_others_leave() {
        assert_eq!(
            Split::of(1000, 4),
            Split {
                share: 125,
                turn: 625
            }
        );
        assert_eq!(
            Split::of(1000, 1),
            Split {
                share: 500,
                turn: 1000
            }
        );
        let largest = Split::of(u64::MAX, u32::MAX);
        assert!(largest.turn >= MAX_BYTES / 2, "{largest:?}");
    }

    #[tokio::test]
    async fn reservations_wait_until_earlier_ones_are_returned() {
        let budget = Arc::new(ByteBudget::new(100, 1));
        let first = budget.account().reserve(60).await;
        assert_eq!(budget.used(), 60);
        assert!(finishes(budget.account().reserve(50)).await.is_none());
        let second = finishes(budget.account().reserve(40))
            .await
            .expect("40 bytes fit");
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
        let budget = Arc::new(ByteBudget::new(100, 1));
        let small = budget.account().reserve(10).await;
        assert!(finishes(budget.account().reserve(500)).await.is_none());
        drop(small);
        let large = finishes(budget.account().reserve(500))
            .await
            .expect("an empty budget admits an oversized buffer");
        assert_eq!(budget.used(), 100);
        drop(large);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_holds_back_new_work() {
        let budget = Arc::new(ByteBudget::new(100, 1));
        let held = budget.account().reserve(90).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { drop(budget.account().reserve(50).await) }
        });
        tokio::task::yield_now().await;
        // 10 bytes are free, but the parser waiting for 50 comes first.
        assert!(finishes(budget.wait_for_room()).await.is_none());
        drop(held);
        waiting.await.unwrap();
        assert!(finishes(budget.wait_for_room()).await.is_some());
    }

    #[tokio::test]
    async fn an_object_holds_up_to_its_share_and_gives_back_what_it_no_longer_needs() {
        let budget = Arc::new(ByteBudget::new(1000, 4));
        let mut account = budget.account();
        account.hold(100).await;
        account.hold(125).await;
        assert_eq!((account.held(), budget.used()), (125, 125));
        account.hold(40).await;
        assert_eq!((account.held(), budget.used()), (40, 40));
        drop(account);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn one_object_at_a_time_holds_more_than_its_share() {
        let budget = Arc::new(ByteBudget::new(1000, 4));
        let mut long_lines = budget.account();
        long_lines.hold(600).await;
        let mut other = budget.account();
        other.hold(100).await;
        assert!(
            finishes(other.hold(200)).await.is_none(),
            "the turn is taken"
        );
        long_lines.hold(0).await;
        assert!(finishes(other.hold(200)).await.is_some());
        assert_eq!(budget.used(), 200);
    }

    #[tokio::test]
    async fn past_the_turn_an_object_goes_on_uncounted_instead_of_waiting_for_ever() {
        let budget = Arc::new(ByteBudget::new(1000, 4));
        let mut accounts: Vec<Account> = (0..4).map(|_| budget.account()).collect();
        for account in &mut accounts[1..] {
            account.hold(125).await;
        }
        accounts[0].hold(625).await;
        assert_eq!(budget.used(), 1000);
        // The others' shares would come back only once this object is done.
        let uncounted = finishes(accounts[0].reserve(300))
            .await
            .expect("no wait past the turn");
        assert_eq!(budget.used(), 1000);
        drop(uncounted);
    }
}
