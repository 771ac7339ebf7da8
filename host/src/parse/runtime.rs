//! The one wasmtime engine of the process, its linker, and the clock that
//! enforces per-call deadlines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::sandbox::SandboxState;

/// How often the epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits applied to every parser call and instance.
#[derive(Clone, Debug)]
pub struct Limits {
    /// CPU time one call (one batch) may take before it is interrupted.
    pub call_timeout: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            call_timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
        }
    }
}

impl Limits {
    pub(super) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Engine, linker and limits shared by every parser.
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker: Linker<SandboxState>,
    pub(super) limits: Limits,
    pub(super) cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(limits: Limits) -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;

        let mut linker = Linker::new(&engine);
        // Rust's std for wasm32-wasip2 imports CLI, I/O and clock interfaces
        // even when a parser never uses them. They are linked to the inert
        // context built in `sandbox`; imports beyond the allowlist there are
        // refused before instantiation.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("s3logd-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking_engine.increment_epoch();
                }
            })
            .context("starting the deadline clock")?;

        Ok(Runtime {
            engine,
            linker,
            limits,
            cache_dir: super::cache::default_dir(),
            ticker_stop,
        })
    }

    /// Keeps compiled components in `dir` instead of the default cache
    /// directory; `None` compiles every time.
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Runtime {
        self.cache_dir = dir;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
