//! The clock behind per-call deadlines: it advances the engine's epoch
//! every tick while some parser store exists, and sleeps otherwise, so an
//! idle collector does not wake a hundred times a second.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::Engine;

/// How often the epoch advances: the granularity of call deadlines.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(super) struct DeadlineClock {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Stores alive; the clock ticks while this is not zero.
    stores: usize,
    stopped: bool,
}

/// Keeps the clock ticking while it lives: one per store.
pub(super) struct Ticking(Arc<DeadlineClock>);

impl DeadlineClock {
    pub(super) fn start(engine: Engine) -> Result<Arc<DeadlineClock>> {
        let clock = Arc::new(DeadlineClock {
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let ticking = clock.clone();
        std::thread::Builder::new()
            .name("s3logd-epoch".into())
            .spawn(move || ticking.run(&engine))
            .context("starting the deadline clock")?;
        Ok(clock)
    }

    fn run(&self, engine: &Engine) {
        loop {
            let state = self
                .wake
                .wait_while(self.state(), |state| state.stores == 0 && !state.stopped)
                .expect("the clock's lock is never poisoned");
            if state.stopped {
                return;
            }
            drop(state);
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    }

    pub(super) fn ticking(self: &Arc<Self>) -> Ticking {
        self.state().stores += 1;
        self.wake.notify_one();
        Ticking(self.clone())
    }

    /// Ends the clock's thread.
    pub(super) fn stop(&self) {
        self.state().stopped = true;
        self.wake.notify_one();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock.
        self.state
            .lock()
            .expect("the clock's lock is never poisoned")
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.state().stores -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // That the clock ticks while a store lives is proven by the sandbox
    // test whose parser spins until its deadline; this checks the count
    // the clock's thread waits on.
    #[test]
    fn guards_count_the_stores_alive() {
        let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
        let clock = DeadlineClock::start(engine).unwrap();
        let stores = |clock: &DeadlineClock| clock.state().stores;
        assert_eq!(stores(&clock), 0);
        let first = clock.ticking();
        let second = clock.ticking();
        assert_eq!(stores(&clock), 2);
        drop(first);
        assert_eq!(stores(&clock), 1);
        drop(second);
        assert_eq!(stores(&clock), 0);
        clock.stop();
    }
}
