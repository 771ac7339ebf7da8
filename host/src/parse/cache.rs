//! Compiled components kept on disk, so start-up skips Cranelift (70–120 ms
//! per component) after the first run.
//!
//! A cached `.cwasm` is loaded as native code, outside the sandbox: whoever
//! can write the cache can run code as s3logd. So the directory is used
//! only when no other user can write it (else a warning, and components
//! are compiled in memory at every start), each file is checked the same
//! way when opened, and each carries a SHA-256 tag over its contents and
//! its entry's key (s3logd's version, the engine's compatibility hash and
//! the component's digest) that is checked before the bytes are used. The
//! tag cannot stop someone who may write the directory (they can compute
//! it too), but a torn, corrupted or swapped file, or one left by another
//! build, is never loaded: it is compiled again and replaced.

use std::fs::{DirBuilder, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
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

/// `dir`, created (private to this user) if missing, when it is fit to
/// hold code this process will run; otherwise `None` after a warning: the
/// cache is an optimisation, never a reason not to start.
pub(super) fn private_dir(dir: PathBuf) -> Option<PathBuf> {
    let checked = DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|error| format!("it cannot be created: {error}"))
        .and_then(|()| {
            let metadata =
                std::fs::metadata(&dir).map_err(|error| format!("it cannot be read: {error}"))?;
            if !metadata.is_dir() {
                return Err("it is not a directory".to_owned());
            }
            only_this_user_writes(&metadata)
        });
    match checked {
        Ok(()) => Some(dir),
        Err(reason) => {
            tracing::warn!(
                dir = %dir.display(),
                "not using the compiled-component cache: {reason}; parsers are compiled \
                 at every start (make the directory this user's and `chmod go-w` it, or \
                 point S3LOGD_CACHE_DIR at a private directory)"
            );
            None
        }
    }
}

/// Why a file or directory may be written by someone other than this
/// process's user, if it may.
fn only_this_user_writes(metadata: &std::fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    // Root may write anything, s3logd's own binary included, so trusting
    // root's files adds no one: a cache shipped in a Lambda package is
    // root's, and the function runs as another user.
    if metadata.uid() != user && metadata.uid() != 0 {
        return Err(format!(
            "it belongs to user {}, not to this process's user {user}",
            metadata.uid()
        ));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "its group or other users may write it (mode {mode:o})"
        ));
    }
    Ok(())
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

/// Bytes of the SHA-256 tag in front of every cached file's contents.
const TAG_BYTES: usize = 32;

/// Where an earlier run left what it learnt about `wasm` with this engine:
/// the compiled code (`.cwasm`) and the parser's self-description
/// (`.info.json`). Both are functions of the bytes and the engine alone (a
/// parser has no clock, randomness or input when it describes itself), so
/// an entry never goes stale; a new s3logd version starts new entries.
pub(super) struct Entry {
    stem: PathBuf,
    /// SHA-256 fed with the entry's key; each file's tag continues it.
    key: Sha256,
}

impl Entry {
    pub(super) fn new(dir: &Path, engine: &Engine, wasm: Wasm) -> Entry {
        let mut engine_hash = std::hash::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut key = Sha256::new();
        for part in [
            env!("CARGO_PKG_VERSION").as_bytes(),
            &engine_hash.finish().to_le_bytes(),
            &wasm.digest.to_le_bytes(),
            &(wasm.bytes.len() as u64).to_le_bytes(),
        ] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
        let name = hex::encode(&key.clone().finalize()[..8]);
        Entry {
            stem: dir.join(format!("{name}-{}", wasm.bytes.len())),
            key,
        }
    }

    fn path(&self, extension: &str) -> PathBuf {
        self.stem.with_extension(extension)
    }

    /// Binds `contents` to this entry and to the file they are stored in.
    fn tag(&self, extension: &str, contents: &[u8]) -> [u8; TAG_BYTES] {
        let mut tag = self.key.clone();
        tag.update(extension.as_bytes());
        tag.update(contents);
        tag.finalize().into()
    }

    /// The contents stored by [`Entry::store`] under `extension`, if
    /// they are there whole and only this user could have written them.
    fn load(&self, extension: &str) -> Option<Vec<u8>> {
        let mut file = File::open(self.path(extension)).ok()?;
        only_this_user_writes(&file.metadata().ok()?).ok()?;
        let mut stored = Vec::new();
        file.read_to_end(&mut stored).ok()?;
        if stored.len() < TAG_BYTES {
            return None;
        }
        let contents = stored.split_off(TAG_BYTES);
        (stored == self.tag(extension, &contents)).then_some(contents)
    }

    /// Writes `contents` with their tag to a file of its own, then renames
    /// it into place, so that readers see the old file or the new one.
    fn store(&self, extension: &str, contents: &[u8]) -> std::io::Result<()> {
        let path = self.path(extension);
        // Unique per writer: processes of other containers sharing the
        // directory may have the same PID.
        let temporary = self.stem.with_extension(format!(
            "{extension}.{}-{:016x}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(&self.tag(extension, contents))?;
                file.write_all(contents)
            })
            .and_then(|()| std::fs::rename(&temporary, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    /// The self-description stored by [`Entry::store_info`], if any.
    pub(super) fn info<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.load("info.json")?).ok()
    }

    pub(super) fn store_info<T: serde::Serialize>(&self, info: &T) {
        if let Ok(bytes) = serde_json::to_vec(info) {
            let _ = self.store("info.json", &bytes);
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
    if let Some(compiled) = entry.load("cwasm") {
        // SAFETY: these bytes carry the tag `Entry::store` gave what
        // `Component::serialize` made below from these exact wasm bytes
        // with an engine of this configuration (both are in the key), in
        // a directory and a file no other user can write.
        if let Ok(component) = unsafe { Component::deserialize(engine, &compiled) } {
            return Ok(component);
        }
    }
    // Says whether a prepared cache (a container image's, a Lambda
    // package's) is the one this build reads.
    tracing::debug!(
        path = %entry.path("cwasm").display(),
        "compiling a component the cache does not hold"
    );
    let component = Component::new(engine, wasm.bytes)?;
    if let Ok(bytes) = component.serialize() {
        let _ = entry.store("cwasm", &bytes);
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use s3logd_test_support::components::TRAP_PARSER;

    use super::super::component::{Origin, load};
    use super::super::runtime::{Limits, Runtime};
    use super::*;

    fn component_bytes() -> Vec<u8> {
        std::fs::read(TRAP_PARSER).expect("the trap parser fixture is built")
    }

    fn runtime_caching_in(dir: &Path) -> Arc<Runtime> {
        let runtime = Runtime::new(Limits::default()).expect("the runtime");
        Arc::new(runtime.with_cache_dir(Some(dir.to_path_buf())))
    }

    #[test]
    fn a_cache_directory_others_can_write_is_not_used() {
        let bytes = component_bytes();
        for mode in [0o777, 0o770, 0o703] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let runtime = runtime_caching_in(dir.path());
            load(
                &runtime,
                Wasm::hashed(&bytes),
                &Origin::File(TRAP_PARSER.into()),
            )
            .expect("a refused cache still compiles in memory");
            let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(written.is_empty(), "mode {mode:o}: {written:?}");
        }
    }

    #[test]
    fn a_tampered_cached_component_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let bytes = component_bytes();
        let wasm = Wasm::hashed(&bytes);
        let entry = Entry::new(dir.path(), &engine, wasm);
        let path = entry.path("cwasm");
        // Storing renames a new file into place: a new inode.
        let inode = || std::fs::metadata(&path).expect("the entry is stored").ino();
        compile(&engine, wasm, Some(&entry)).unwrap();
        let stored = inode();
        compile(&engine, wasm, Some(&entry)).unwrap();
        assert_eq!(inode(), stored, "an intact entry is loaded as it is");

        let mut tampered = std::fs::read(&path).unwrap();
        let middle = tampered.len() / 2;
        for byte in &mut tampered[middle..middle + 16] {
            *byte ^= 0xff;
        }
        std::fs::write(&path, &tampered).unwrap();
        assert_eq!(inode(), stored, "tampered in place");
        compile(&engine, wasm, Some(&entry)).unwrap();
        assert_ne!(
            inode(),
            stored,
            "the tampered file was loaded, not compiled again"
        );
    }

    #[test]
    fn writers_with_the_same_pid_use_different_temporary_files() {
        // Two containers that are both PID 1 may share the volume: the
        // other one is halfway through writing the same entry.
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let bytes = component_bytes();
        let wasm = Wasm::hashed(&bytes);
        let entry = Entry::new(dir.path(), &engine, wasm);
        let path = entry.path("cwasm");
        let pid_only = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&pid_only, b"the other writer's half").unwrap();

        compile(&engine, wasm, Some(&entry)).unwrap();
        assert_eq!(
            std::fs::read(&pid_only).unwrap(),
            b"the other writer's half"
        );
        assert!(path.is_file(), "this writer's entry is stored");
    }
}
