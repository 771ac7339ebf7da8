//! Stopping without throwing work away.
//!
//! The first SIGTERM or SIGINT *drains*: the receive loop stops taking
//! messages and in-flight objects may finish within the grace period. When
//! it expires the remaining work is *abandoned*: unfinished messages are made
//! visible again at once for another consumer, and the sink stops retrying.
//! A second signal exits at once; SQS then returns the messages when their
//! visibility timeout expires, which is still at-least-once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// What the process should do after a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalResponse {
    Drain,
    ExitNow,
}

/// How draining ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight message finished within the grace period.
    Finished,
    /// The grace period expired; the remaining work was abandoned.
    GraceExpired,
}

/// The shared shutdown state: cheap to clone into every task.
#[derive(Clone, Default)]
pub struct Shutdown {
    signals: std::sync::Arc<AtomicU32>,
    stop_receiving: CancellationToken,
    abandon: CancellationToken,
}

impl Shutdown {
    pub fn on_signal(&self) -> SignalResponse {
        if self.signals.fetch_add(1, Ordering::SeqCst) == 0 {
            self.stop_receiving.cancel();
            SignalResponse::Drain
        } else {
            SignalResponse::ExitNow
        }
    }

    /// Cancelled when receiving should stop.
    pub fn stop_receiving(&self) -> &CancellationToken {
        &self.stop_receiving
    }

    /// Cancelled when unfinished work is to be given back (and the sink's
    /// retries cancelled).
    pub fn abandon(&self) -> &CancellationToken {
        &self.abandon
    }

    /// Waits for `in_flight` to finish, at most `grace`; past it, abandons.
    pub async fn drain(&self, in_flight: impl Future<Output = ()>, grace: Duration) -> Drained {
        match tokio::time::timeout(grace, in_flight).await {
            Ok(()) => Drained::Finished,
            Err(_) => {
                self.abandon.cancel();
                Drained::GraceExpired
            }
        }
    }

    /// A shutdown driven by the process's SIGTERM and SIGINT, watched on a
    /// task of the current runtime.
    pub fn watching_signals() -> Shutdown {
        let shutdown = Shutdown::default();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(error) = shutdown.watch_signals().await {
                    tracing::error!(%error, "cannot watch for SIGTERM/SIGINT");
                }
            }
        });
        shutdown
    }

    /// Calls [`Shutdown::on_signal`] for every SIGTERM and SIGINT; exits the
    /// process on the second.
    pub async fn watch_signals(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            match self.on_signal() {
                SignalResponse::Drain => {
                    tracing::info!(
                        signal = name,
                        "draining: no new messages, finishing in-flight objects"
                    );
                }
                SignalResponse::ExitNow => {
                    tracing::warn!(
                        signal = name,
                        "second signal: exiting now; unfinished messages return after their visibility timeout"
                    );
                    std::process::exit(130);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_drains_and_second_exits() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.stop_receiving().is_cancelled());
        assert_eq!(shutdown.on_signal(), SignalResponse::Drain);
        assert!(shutdown.stop_receiving().is_cancelled());
        assert!(!shutdown.abandon().is_cancelled());
        assert_eq!(shutdown.on_signal(), SignalResponse::ExitNow);
        assert_eq!(shutdown.clone().on_signal(), SignalResponse::ExitNow);
    }

    #[tokio::test(start_paused = true)]
    async fn work_finishing_within_the_grace_period_is_not_abandoned() {
        let shutdown = Shutdown::default();
        shutdown.on_signal();
        let work = tokio::time::sleep(Duration::from_secs(5));
        let drained = shutdown.drain(work, Duration::from_secs(30)).await;
        assert_eq!(drained, Drained::Finished);
        assert!(!shutdown.abandon().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_grace_period_is_abandoned() {
        let shutdown = Shutdown::default();
        shutdown.on_signal();
        let started = tokio::time::Instant::now();
        let work = tokio::time::sleep(Duration::from_secs(60));
        let drained = shutdown.drain(work, Duration::from_secs(30)).await;
        assert_eq!(drained, Drained::GraceExpired);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(shutdown.abandon().is_cancelled());
    }
}
