//! The parsers this process knows: the bundled components embedded in the
//! binary, plus custom components named on the command line or in config.
//!
//! A bundled component whose self-description an earlier run cached is
//! prepared only when its first object arrives: most processes use one or
//! two formats, and each prepared component costs start-up time and memory.
//! Custom components are always checked at start, so that a broken one
//! stops s3logd at once.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};

use super::cache::Wasm;
use super::component::{Origin, ParserInfo, Prepared, cached_info, load, prepare};
use super::detect::{Patterns, choose};
use super::runtime::Runtime;
use super::session::{ObjectSession, ParserFailure};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// A parser component and its self-description.
pub struct LoadedParser {
    pub info: ParserInfo,
    pub origin: Origin,
    /// Set at start, or by the first `open` of a deferred bundled parser.
    pre: OnceLock<Result<Prepared, String>>,
    /// The bytes a deferred parser is prepared from.
    deferred: Option<Wasm<'static>>,
    patterns: Patterns,
    runtime: Arc<Runtime>,
}

impl LoadedParser {
    /// Starts parsing one object in a fresh, sandboxed instance.
    pub fn open(
        &self,
        object_key: &str,
        options: &[(String, String)],
    ) -> Result<ObjectSession, ParserFailure> {
        let pre = self
            .pre
            .get_or_init(|| {
                let wasm = self
                    .deferred
                    .expect("a parser without its component at start is deferred");
                prepare(&self.runtime, wasm, &self.origin).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|reason| ParserFailure::Unavailable(reason.clone()))?;
        ObjectSession::open(&self.runtime, pre, &self.info.fields, object_key, options)
    }

    /// Whether the component is prepared (false for a deferred parser
    /// before its first object).
    pub fn is_prepared(&self) -> bool {
        self.pre.get().is_some()
    }
}

/// Every parser available, custom ones first (they take precedence in
/// detection, and replace a bundled parser of the same name).
pub struct Parsers {
    parsers: Vec<Arc<LoadedParser>>,
}

impl Parsers {
    /// Loads the bundled parsers and the custom components at `custom`
    /// (files, or directories of `*.wasm`). A custom component that fails
    /// its checks is an error: s3logd does not start with a broken parser.
    pub fn load(runtime: Arc<Runtime>, custom: &[PathBuf]) -> Result<Parsers> {
        let mut parsers: Vec<Arc<LoadedParser>> = Vec::new();
        for path in custom_files(custom)? {
            let wasm = std::fs::read(&path)
                .with_context(|| format!("reading parser {}", path.display()))?;
            let parser = load_one(&runtime, Wasm::hashed(&wasm), Origin::File(path))?;
            if let Some(other) = parsers.iter().find(|p| p.info.name == parser.info.name) {
                bail!(
                    "two custom parsers are named {:?}: {} and {}",
                    parser.info.name,
                    other.origin,
                    parser.origin
                );
            }
            parsers.push(Arc::new(parser));
        }
        for &(package, bytes, digest) in bundled::BUNDLED {
            let wasm = Wasm { bytes, digest };
            let parser = match cached_info(&runtime, wasm) {
                Some(info) => parser(&runtime, info, Origin::Bundled, Component::Deferred(wasm)),
                None => load_one(&runtime, wasm, Origin::Bundled),
            }
            .with_context(|| format!("loading the bundled parser {package}"))?;
            if parsers.iter().all(|p| p.info.name != parser.info.name) {
                parsers.push(Arc::new(parser));
            }
        }
        Ok(Parsers { parsers })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<LoadedParser>> {
        self.parsers.iter().find(|p| p.info.name == name)
    }

    /// The parser for an object, from its key and its first lines (see
    /// [`super::detect`] for the rules); `None` when nothing claims it.
    pub fn detect(&self, object_key: &str, head: &str) -> Option<&Arc<LoadedParser>> {
        choose(&self.parsers, |p| &p.patterns, object_key, head)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedParser>> {
        self.parsers.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.parsers.iter().map(|p| p.info.name.as_str()).collect()
    }
}

fn load_one(runtime: &Arc<Runtime>, wasm: Wasm, origin: Origin) -> Result<LoadedParser> {
    let loaded = load(runtime, wasm, &origin)?;
    parser(
        runtime,
        loaded.info,
        origin,
        Component::Prepared(loaded.pre),
    )
}

/// Where a parser's component comes from.
enum Component {
    Prepared(Prepared),
    /// Prepared from these bytes by the first `open`.
    Deferred(Wasm<'static>),
}

fn parser(
    runtime: &Arc<Runtime>,
    info: ParserInfo,
    origin: Origin,
    component: Component,
) -> Result<LoadedParser> {
    let patterns = Patterns::compile(&info.key_patterns, &info.first_line_patterns)
        .map_err(|e| anyhow::anyhow!("{origin}: parser {:?} declares an {e}", info.name))?;
    let prepared = OnceLock::new();
    let deferred = match component {
        Component::Prepared(pre) => {
            let _ = prepared.set(Ok(pre));
            None
        }
        Component::Deferred(wasm) => Some(wasm),
    };
    Ok(LoadedParser {
        info,
        origin,
        pre: prepared,
        deferred,
        patterns,
        runtime: runtime.clone(),
    })
}

fn custom_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading parser directory {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "wasm"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("parser path {} does not exist", path.display());
        }
    }
    Ok(files)
}
