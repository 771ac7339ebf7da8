//! The one wasmtime engine of the process, its linker, and the clock that
//! enforces per-call deadlines (see `clock`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::clock::{DeadlineClock, EPOCH_TICK, Ticking};
use super::sandbox::SandboxState;

/// Resource limits applied to every parser call and instance.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time one call (one batch) may take before it is
    /// interrupted. It runs on while the call waits for a core, so it must
    /// leave room for a busy machine, not only for the parser's work.
    pub call_timeout: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // The longest call of a bundled parser at the default limits, a
            // CloudTrail file of `max_line_bytes` (64 MiB, one line), takes
            // well under a second of CPU: 30 s leave it room for getting a
            // small share of a core (tests/parser_deadline.rs).
            call_timeout: Duration::from_secs(30),
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
    clock: Arc<DeadlineClock>,
}

/// Whether the engine tells a profiler about the code it compiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profiling {
    #[default]
    Off,
    /// Writes `/tmp/perf-<pid>.map`, in which `perf report` finds the
    /// names of the parsers' compiled functions: how a parser author sees
    /// where a parser spends its time.
    PerfMap,
}

impl Runtime {
    pub fn new(limits: Limits) -> Result<Runtime> {
        Runtime::profiled(limits, Profiling::Off)
    }

    pub fn profiled(limits: Limits, profiling: Profiling) -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        if profiling == Profiling::PerfMap {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
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

        let clock = DeadlineClock::start(engine.clone())?;

        Ok(Runtime {
            engine,
            linker,
            limits,
            cache_dir: super::cache::default_dir().and_then(super::cache::private_dir),
            clock,
        })
    }

    /// Keeps compiled components in `dir` instead of the default cache
    /// directory, if no other user can write it; `None` compiles every time.
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Runtime {
        self.cache_dir = dir.and_then(super::cache::private_dir);
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Keeps the deadline clock running for as long as a store lives.
    pub(super) fn ticking(&self) -> Ticking {
        self.clock.ticking()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.clock.stop();
    }
}
