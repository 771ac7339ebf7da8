//! Loading a parser component: compile (or take from the cache), check that
//! it implements this host's contract and imports nothing it may not, and
//! read its self-description.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use s3logd_rows::FieldType;
use serde::{Deserialize, Serialize};

use super::bindings::exports::s3logd::parser::parser as wit;
use super::bindings::{ParserComponent, ParserComponentPre};
use super::cache::{self, Wasm};
use super::runtime::Runtime;
use super::sandbox::{ALLOWED_IMPORTS, SandboxState, new_store};
use super::session::OutputAllowance;

/// The contract this host binds.
pub const CONTRACT: &str = "s3logd:parser@0.1.0";
const EXPORT_PREFIX: &str = "s3logd:parser/parser@";
/// Contract versions this host can run: semver-compatible with [`CONTRACT`].
const COMPATIBLE: &str = "0.1.";

/// Where a parser came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Bundled,
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Bundled => f.write_str("bundled"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A parser's self-description (the WIT `info` record in host types).
/// Serialized only into the compile cache.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParserInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub formats: Vec<String>,
    pub key_patterns: Vec<String>,
    pub first_line_patterns: Vec<String>,
    pub options: Vec<OptionDoc>,
    pub fields: Vec<Field>,
    pub time_source: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(with = "field_type_name")]
    pub ty: FieldType,
    pub description: String,
}

/// The field of a parser run natively (`s3logd listen`'s ndjson, the fuzz
/// targets), as its component would describe it.
impl From<s3logd_parser_sdk::Field> for Field {
    fn from(field: s3logd_parser_sdk::Field) -> Field {
        Field {
            name: field.name,
            ty: field.ty,
            description: field.description,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OptionDoc {
    pub name: String,
    pub description: String,
    pub default_value: Option<String>,
}

pub(super) type Prepared = ParserComponentPre<SandboxState>;

/// A component ready to instantiate, with its description.
pub(super) struct Loaded {
    pub(super) pre: Prepared,
    pub(super) info: ParserInfo,
}

/// Prepares `wasm` and asks it to describe itself.
pub(super) fn load(runtime: &Runtime, wasm: Wasm, origin: &Origin) -> Result<Loaded> {
    let pre = prepare(runtime, wasm, origin)?;
    let info =
        describe(runtime, &pre).with_context(|| format!("{origin} failed to describe itself"))?;
    if let Some(entry) = cache_entry(runtime, wasm) {
        entry.store_info(&info);
    }
    Ok(Loaded { pre, info })
}

/// What an earlier [`load`] of the same bytes learnt from `describe`.
pub(super) fn cached_info(runtime: &Runtime, wasm: Wasm) -> Option<ParserInfo> {
    cache_entry(runtime, wasm)?.info()
}

/// Compiles (or takes from the cache) and checks `wasm` against the
/// contract and the sandbox, ready to instantiate.
pub(super) fn prepare(runtime: &Runtime, wasm: Wasm, origin: &Origin) -> Result<Prepared> {
    if !wasm.bytes.starts_with(b"\0asm") {
        bail!("{origin} is not a WebAssembly file");
    }
    let component = cache::compile(&runtime.engine, wasm, cache_entry(runtime, wasm).as_ref())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{origin} is not a valid WebAssembly component (parsers are built for wasm32-wasip2)"))?;
    let ty = component.component_type();
    check_contract(ty.exports(&runtime.engine).map(|(name, _)| name), origin)?;
    check_imports(ty.imports(&runtime.engine).map(|(name, _)| name), origin)?;

    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{origin} cannot be linked"))?;
    ParserComponentPre::new(pre)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{origin} does not match the {CONTRACT} contract"))
}

fn cache_entry(runtime: &Runtime, wasm: Wasm) -> Option<cache::Entry> {
    let dir = runtime.cache_dir.as_deref()?;
    Some(cache::Entry::new(dir, &runtime.engine, wasm))
}

fn check_contract<'a>(exports: impl Iterator<Item = &'a str>, origin: &Origin) -> Result<()> {
    let exports: Vec<&str> = exports.collect();
    match exports
        .iter()
        .find_map(|name| name.strip_prefix(EXPORT_PREFIX))
    {
        Some(version) if version.starts_with(COMPATIBLE) => Ok(()),
        Some(version) => bail!(
            "{origin} implements the parser contract s3logd:parser@{version}, but this s3logd \
             runs parsers for {CONTRACT} (compatible: {COMPATIBLE}x); rebuild the parser \
             against the s3logd-parser-sdk that matches this s3logd"
        ),
        None => bail!(
            "{origin} is not an s3logd parser: it exports no {EXPORT_PREFIX}… interface (exports: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        ),
    }
}

fn check_imports<'a>(imports: impl Iterator<Item = &'a str>, origin: &Origin) -> Result<()> {
    let refused: Vec<&str> = imports
        .filter(|name| {
            !ALLOWED_IMPORTS
                .iter()
                .any(|allowed| name.starts_with(allowed))
        })
        .collect();
    if !refused.is_empty() {
        bail!(
            "{origin} imports {}, which s3logd does not grant to parsers \
             (a parser may use only {}, all inert: no files, network, environment, clock or randomness)",
            refused.join(", "),
            ALLOWED_IMPORTS
                .iter()
                .map(|p| format!("{p}*"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn describe(runtime: &Runtime, pre: &Prepared) -> Result<ParserInfo> {
    let mut store = new_store(runtime);
    store.set_epoch_deadline(runtime.limits.deadline_ticks());
    let instance: ParserComponent = pre.instantiate(&mut store).map_err(anyhow::Error::from)?;
    let info = instance
        .s3logd_parser_parser()
        .call_describe(&mut store)
        .map_err(anyhow::Error::from)?;
    let info = ParserInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        formats: info.formats,
        key_patterns: info.key_patterns,
        first_line_patterns: info.first_line_patterns,
        options: info
            .options
            .into_iter()
            .map(|o| OptionDoc {
                name: o.name,
                description: o.description,
                default_value: o.default_value,
            })
            .collect(),
        fields: info
            .fields
            .into_iter()
            .map(|f| Field {
                name: f.name,
                ty: field_type(f.type_),
                description: f.description,
            })
            .collect(),
        time_source: info.time_source,
    };
    if info.name.is_empty()
        || !info
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!(
            "parser name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
            info.name
        );
    }
    OutputAllowance::new(&info.fields).map_err(anyhow::Error::msg)?;
    Ok(info)
}

fn field_type(ty: wit::FieldType) -> FieldType {
    match ty {
        wit::FieldType::String => FieldType::String,
        wit::FieldType::Integer => FieldType::Integer,
        wit::FieldType::Float => FieldType::Float,
        wit::FieldType::Boolean => FieldType::Boolean,
        wit::FieldType::Timestamp => FieldType::Timestamp,
        wit::FieldType::StringList => FieldType::StringList,
        wit::FieldType::IntegerList => FieldType::IntegerList,
        wit::FieldType::Any => FieldType::Any,
    }
}

/// Field types by their WIT names in the cached self-description.
mod field_type_name {
    use s3logd_rows::FieldType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ty: &FieldType, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(ty.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FieldType, D::Error> {
        let name = String::deserialize(deserializer)?;
        FieldType::ALL
            .into_iter()
            .find(|ty| ty.name() == name)
            .ok_or_else(|| D::Error::custom(format!("unknown field type {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions_are_checked_by_semver_minor() {
        let origin = Origin::File("p.wasm".into());
        assert!(check_contract(["s3logd:parser/parser@0.1.0"].into_iter(), &origin).is_ok());
        assert!(check_contract(["s3logd:parser/parser@0.1.7"].into_iter(), &origin).is_ok());
        let err = check_contract(["s3logd:parser/parser@0.2.0"].into_iter(), &origin).unwrap_err();
        assert!(err.to_string().contains("s3logd:parser@0.2.0"), "{err}");
        assert!(err.to_string().contains(CONTRACT), "{err}");
        let err = check_contract(["wasi:cli/run@0.2.0"].into_iter(), &origin).unwrap_err();
        assert!(err.to_string().contains("not an s3logd parser"), "{err}");
        assert!(err.to_string().contains("wasi:cli/run@0.2.0"), "{err}");
    }
}
