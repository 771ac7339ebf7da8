//! The parsers this process knows: the bundled components embedded in the
//! binary, plus custom components named on the command line or in config.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::bindings::ParserComponentPre;
use super::component::{Origin, ParserInfo, load};
use super::detect::{Patterns, choose};
use super::runtime::Runtime;
use super::sandbox::SandboxState;
use super::session::{ObjectSession, ParserFailure};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// A loaded, checked parser component.
pub struct LoadedParser {
    pub info: ParserInfo,
    pub origin: Origin,
    pre: ParserComponentPre<SandboxState>,
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
        ObjectSession::open(
            &self.runtime,
            &self.pre,
            &self.info.fields,
            object_key,
            options,
        )
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
            let parser = load_one(&runtime, &wasm, Origin::File(path))?;
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
        for (package, wasm) in bundled::BUNDLED {
            let parser = load_one(&runtime, wasm, Origin::Bundled)
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

    /// The parser for an object, from its key and first line (see
    /// [`super::detect`] for the rules); `None` when nothing claims it.
    pub fn detect(&self, object_key: &str, first_line: &str) -> Option<&Arc<LoadedParser>> {
        choose(&self.parsers, |p| &p.patterns, object_key, first_line)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedParser>> {
        self.parsers.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.parsers.iter().map(|p| p.info.name.as_str()).collect()
    }
}

fn load_one(runtime: &Arc<Runtime>, wasm: &[u8], origin: Origin) -> Result<LoadedParser> {
    let loaded = load(runtime, wasm, &origin)?;
    let patterns = Patterns::compile(&loaded.info.key_patterns, &loaded.info.first_line_patterns)
        .map_err(|e| {
        anyhow::anyhow!("{origin}: parser {:?} declares an {e}", loaded.info.name)
    })?;
    Ok(LoadedParser {
        info: loaded.info,
        origin,
        pre: loaded.pre,
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
