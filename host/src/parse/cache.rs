//! Compiled components kept on disk, so start-up skips Cranelift (70–120 ms
//! per component) after the first run.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// `$S3LOGD_CACHE_DIR`, else `$XDG_CACHE_HOME/s3logd`, else `~/.cache/s3logd`.
pub(super) fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("S3LOGD_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("s3logd"))
}

/// A component's bytes, identified without reading them again: bundled
/// components carry a digest computed by the build, so that start-up need
/// not touch (and page in) their bytes when the cache already has them.
#[derive(Clone, Copy)]
pub(super) struct Wasm<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) digest: u64,
}

impl<'a> Wasm<'a> {
    /// For bytes read at run time.
    pub(super) fn hashed(bytes: &'a [u8]) -> Wasm<'a> {
        Wasm {
            bytes,
            digest: digest(bytes),
        }
    }
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Where an earlier run left what it learnt about `wasm` with this engine:
/// the compiled code (`.cwasm`) and the parser's self-description
/// (`.info.json`). Both are functions of the bytes and the engine alone (a
/// parser has no clock, randomness or input when it describes itself), so
/// an entry never goes stale; a new s3logd version starts new entries.
pub(super) struct Entry {
    stem: PathBuf,
}

impl Entry {
    pub(super) fn new(dir: &Path, engine: &Engine, wasm: Wasm) -> Entry {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        wasm.digest.hash(&mut hasher);
        Entry {
            stem: dir.join(format!("{:016x}-{}", hasher.finish(), wasm.bytes.len())),
        }
    }

    fn path(&self, extension: &str) -> PathBuf {
        self.stem.with_extension(extension)
    }

    /// The self-description stored by [`Entry::store_info`], if any.
    pub(super) fn info<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let bytes = std::fs::read(self.path("info.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(super) fn store_info<T: serde::Serialize>(&self, info: &T) {
        if let Ok(bytes) = serde_json::to_vec(info) {
            let _ = store_atomically(&self.path("info.json"), &bytes);
        }
    }
}

/// Compiles `wasm`, or loads what an earlier run compiled from the same
/// bytes with a compatible engine. The cache is an optimisation only: any
/// failure to read or write it falls back to compiling.
pub(super) fn compile(
    engine: &Engine,
    wasm: Wasm,
    entry: Option<&Entry>,
) -> wasmtime::Result<Component> {
    let Some(entry) = entry else {
        return Component::new(engine, wasm.bytes);
    };
    let path = entry.path("cwasm");
    if path.is_file() {
        // SAFETY: the file was written by `Component::serialize` below for
        // these exact bytes and this engine configuration (both are in the
        // key), and is only replaced atomically.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm.bytes)?;
    if let Ok(bytes) = component.serialize() {
        let _ = store_atomically(&path, &bytes);
    }
    Ok(component)
}

fn store_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
