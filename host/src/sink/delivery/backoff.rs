//! How long to wait before sending again, and keeping a long outage to a
//! few log lines.

use std::time::{Duration, Instant};

/// During an outage, how often a failed attempt is logged.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `0..=min(cap, base * 2^n)`, which spreads retries of many batches and
/// processes instead of having them hit a recovering store at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after `failed_attempts` failures, and no less than the
    /// store asked for unless that exceeds the cap: a store asking for an
    /// hour must not stall a message whose visibility is being extended.
    pub(super) fn wait(&self, failed_attempts: u32, asked: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << failed_attempts.min(20))
            .min(self.cap);
        let jittered = Duration::from_nanos(fastrand::u64(0..=ceiling.as_nanos() as u64));
        jittered.max(asked.unwrap_or_default().min(self.cap))
    }
}

/// Keeps a long outage to one warning per [`OUTAGE_LOG_INTERVAL`] and
/// notes the recovery.
#[derive(Default)]
pub(super) struct Outage {
    since: Option<Instant>,
    failed_attempts: u64,
    last_logged: Option<Instant>,
}

impl Outage {
    pub(super) fn failed(&mut self, sink: &str, reason: &str) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.failed_attempts += 1;
        if self
            .last_logged
            .is_some_and(|logged| now.duration_since(logged) < OUTAGE_LOG_INTERVAL)
        {
            return;
        }
        self.last_logged = Some(now);
        tracing::warn!(
            sink,
            error = reason,
            failed_attempts = self.failed_attempts,
            failing_for_secs = now.duration_since(since).as_secs(),
            "sending to the store failed; retrying"
        );
    }

    pub(super) fn recovered(&mut self, sink: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                sink,
                failed_attempts = self.failed_attempts,
                outage_secs = since.elapsed().as_secs(),
                "the store accepts records again"
            );
            *self = Outage::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_at_least_what_the_store_asked_for_up_to_the_cap() {
        let backoff = Backoff::default();
        for failed_attempts in [0, 3, 30] {
            let asked = backoff.wait(failed_attempts, Some(Duration::from_secs(7)));
            assert!(asked >= Duration::from_secs(7), "{asked:?}");
            assert!(asked <= backoff.cap, "{asked:?}");
            let too_much = backoff.wait(failed_attempts, Some(Duration::from_secs(3600)));
            assert_eq!(too_much, backoff.cap);
            let unasked = backoff.wait(failed_attempts, None);
            assert!(unasked <= backoff.base * (1 << failed_attempts.min(20)));
        }
    }
}
