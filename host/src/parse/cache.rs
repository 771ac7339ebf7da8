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

/// Compiles `wasm`, or loads what an earlier run compiled from the same
/// bytes with a compatible engine. The cache is an optimisation only: any
/// failure to read or write it falls back to compiling.
pub(super) fn compile(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir else {
        return Component::new(engine, wasm);
    };
    let path = dir.join(format!(
        "{:016x}-{}.cwasm",
        cache_key(engine, wasm),
        wasm.len()
    ));
    if path.is_file() {
        // SAFETY: the file was written by `Component::serialize` below for
        // these exact bytes and this engine configuration (both are in the
        // key), and is only replaced atomically.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Ok(bytes) = component.serialize() {
        let _ = store_atomically(dir, &path, &bytes);
    }
    Ok(component)
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    wasm.hash(&mut hasher);
    hasher.finish()
}

fn store_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
