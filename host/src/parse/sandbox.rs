//! What a parser instance may touch: nothing outside its own memory.
//!
//! Each object gets a fresh store with an inert WASI context (no files,
//! sockets or environment; clocks frozen at zero; randomness a fixed
//! sequence), [`InstanceLimits`] and a per-call deadline. Whatever the
//! parser writes to stderr is kept (the first few KiB) so a panic message
//! can be shown with the error.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::clock::Ticking;
use super::runtime::Runtime;

/// WASI interfaces a parser may import. Rust's std pulls these in even
/// when unused; here they are backed by inert stand-ins. Anything else
/// (filesystem, sockets, HTTP, custom host functions) is refused at load.
pub(super) const ALLOWED_IMPORTS: &[&str] =
    &["wasi:cli/", "wasi:io/", "wasi:clocks/", "wasi:random/"];

/// How much of a parser's stderr is kept for error messages.
const STDERR_KEPT: usize = 4096;

pub(super) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: InstanceLimits,
    pub(super) stderr: StderrTail,
    /// Deadlines need the clock running while the parser can run.
    _clock: Ticking,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A store for one object's parser instance.
pub(super) fn new_store(runtime: &Runtime) -> Store<SandboxState> {
    let stderr = StderrTail::default();
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(wasmtime_wasi::Deterministic::new(vec![0]))
        .insecure_random(wasmtime_wasi::Deterministic::new(vec![0]))
        .insecure_random_seed(0)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = SandboxState {
        wasi,
        table: ResourceTable::new(),
        limits: InstanceLimits {
            memory_limit: runtime.limits.memory_bytes,
            memory_bytes: 0,
            memory_exceeded: false,
            table_elements: 0,
        },
        stderr,
        _clock: runtime.ticking(),
    };
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|state| &mut state.limits);
    store.epoch_deadline_trap();
    store
}

impl SandboxState {
    pub(super) fn memory_exceeded(&self) -> bool {
        self.limits.memory_exceeded
    }

    pub(super) fn memory_limit(&self) -> usize {
        self.limits.memory_limit
    }
}

/// Core instances a parser instance may create. Bundled parsers create 3
/// (the parser's module, the WASI shim and its fix-up); a component built
/// another way may have a few modules more. wasmtime's default, 10,000,
/// would let one component multiply the memory and tables below.
const MAX_INSTANCES: usize = 16;
/// Linear memories of a parser instance. Bundled parsers have 1; a
/// component of several modules may have one for each. Each reserves
/// address space whatever its size; their sizes together are held to the
/// memory limit.
const MAX_MEMORIES: usize = 4;
/// Tables of a parser instance. Bundled parsers have 2.
const MAX_TABLES: usize = 8;
/// Elements of a parser instance's tables together. Bundled parsers have
/// fewer than 700, the regex parser most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What one parser instance may take, all its memories and tables
/// counted together, so that the configured memory limit is the most an
/// instance can use however many memories its component declares.
struct InstanceLimits {
    memory_limit: usize,
    /// Of all the instance's memories.
    memory_bytes: usize,
    memory_exceeded: bool,
    /// Of all the instance's tables.
    table_elements: usize,
}

impl ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // wasmtime refuses growth past a memory's own maximum only after
        // asking here, without saying by how much: refused here instead,
        // it is never counted as used.
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        // A size that does not fit its type arrives as nearly usize::MAX.
        let total = self
            .memory_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            self.memory_exceeded = true;
            return Err(wasmtime::format_err!(
                "parser exceeded its memory limit of {} MiB",
                self.memory_limit >> 20
            ));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_elements
            .saturating_sub(current)
            .saturating_add(desired);
        if maximum.is_some_and(|maximum| desired > maximum) || total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Clocks that always read zero: parsers must not depend on time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Keeps the first [`STDERR_KEPT`] bytes a parser writes and discards the
/// rest without failing the write.
#[derive(Clone, Default)]
pub(super) struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .trim()
            .to_string()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut kept = self.0.lock().unwrap();
        let room = STDERR_KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        Component, InstanceSection, MemorySection, MemoryType, Module, ModuleSection, RefType,
        TableSection, TableType,
    };
    use wasmtime::component::Component as Compiled;

    use super::*;
    use crate::parse::runtime::Limits;

    const PAGE: u64 = 64 << 10;

    /// A core module defining one memory of `memory_pages` and one table of
    /// `table_elements`, where not `None`.
    fn module(memory_pages: Option<u64>, table_elements: Option<u64>) -> Module {
        let mut module = Module::new();
        if let Some(minimum) = table_elements {
            let mut tables = TableSection::new();
            tables.table(TableType {
                element_type: RefType::FUNCREF,
                table64: false,
                minimum,
                maximum: None,
                shared: false,
            });
            module.section(&tables);
        }
        if let Some(minimum) = memory_pages {
            let mut memories = MemorySection::new();
            memories.memory(MemoryType {
                minimum,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            module.section(&memories);
        }
        module
    }

    /// Instantiates, in a parser's store with a memory limit of 64 MiB, a
    /// component that instantiates `module` `times` times.
    fn instantiate(module: &Module, times: u32) -> Result<(), String> {
        let mut component = Component::new();
        component.section(&ModuleSection(module));
        let mut instances = InstanceSection::new();
        for _ in 0..times {
            instances.instantiate(0, Vec::<(&str, _)>::new());
        }
        component.section(&instances);
        let runtime = Runtime::new(Limits {
            memory_bytes: 64 << 20,
            ..Limits::default()
        })
        .unwrap();
        let compiled = Compiled::new(&runtime.engine, component.finish()).unwrap();
        let mut store = new_store(&runtime);
        match runtime.linker.instantiate(&mut store, &compiled) {
            Ok(_) => Ok(()),
            Err(error) => Err(format!("{error:#}")),
        }
    }

    #[test]
    fn all_memories_of_an_instance_together_are_held_to_the_memory_limit() {
        let forty_mib = module(Some((40 << 20) / PAGE), None);
        assert_eq!(instantiate(&forty_mib, 1), Ok(()));
        let error = instantiate(&forty_mib, 2).unwrap_err();
        assert!(
            error.contains("parser exceeded its memory limit of 64 MiB"),
            "{error}"
        );
    }

    #[test]
    fn an_instance_may_have_only_as_many_memories_as_a_parser_needs() {
        let one_page = module(Some(1), None);
        assert_eq!(instantiate(&one_page, MAX_MEMORIES as u32), Ok(()));
        let error = instantiate(&one_page, MAX_MEMORIES as u32 + 1).unwrap_err();
        assert!(error.contains("memory count too high"), "{error}");
    }

    #[test]
    fn an_instance_may_have_only_as_many_tables_as_a_parser_needs() {
        let one_element = module(None, Some(1));
        assert_eq!(instantiate(&one_element, MAX_TABLES as u32), Ok(()));
        let error = instantiate(&one_element, MAX_TABLES as u32 + 1).unwrap_err();
        assert!(error.contains("table count too high"), "{error}");
    }

    #[test]
    fn all_tables_of_an_instance_together_are_held_to_the_element_limit() {
        let half = module(None, Some(MAX_TABLE_ELEMENTS as u64 / 2));
        assert_eq!(instantiate(&half, 2), Ok(()));
        let error = instantiate(&half, 3).unwrap_err();
        assert!(error.contains("exceeds table limits"), "{error}");
    }

    #[test]
    fn an_instance_may_create_only_as_many_core_instances_as_a_parser_needs() {
        let empty = module(None, None);
        assert_eq!(instantiate(&empty, MAX_INSTANCES as u32), Ok(()));
        let error = instantiate(&empty, MAX_INSTANCES as u32 + 1).unwrap_err();
        assert!(error.contains("instance count too high"), "{error}");
    }
}
