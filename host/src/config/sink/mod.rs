//! `[sink.<name>]`: the stores records go to, any number of them, each
//! under a name of the user's choosing that metrics and logs carry.
//!
//! A section's `type` says which store it is; it may be left out when the
//! name is the type (`[sink.victorialogs]`). Its keys are flat, as users
//! write them, but come in parts shared between stores: every sink has the
//! [`BatchConfig`] keys, every HTTP store the [`HttpConfig`] ones, and each
//! store adds its own. [`Sections`] reads and writes such a flat table part
//! by part, so that a part's keys are declared once.
//!
//! A new store is one module here (its settings) and one variant of
//! [`SinkConfig`].

mod cloudwatch_logs;
mod elasticsearch;
mod file;
mod loki;
mod s3_archive;
mod victorialogs;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use toml::{Table, Value};

use super::MIB;
use super::schema::{Shape, shape_of};
use super::validate::Problems;
use super::{Secret, without_credentials};

pub use cloudwatch_logs::{CloudWatchLogsConfig, CloudWatchLogsOptions, CloudWatchMessage};
pub use elasticsearch::{BulkAction, ElasticsearchAuth, ElasticsearchConfig, ElasticsearchOptions};
pub use file::{FileConfig, FileOptions};
pub use loki::{LokiConfig, LokiLine, LokiOptions, is_label_name};
pub use s3_archive::{S3ArchiveConfig, S3ArchiveOptions};
pub use victorialogs::{VictoriaLogsConfig, VictoriaLogsOptions};

/// One `[sink.<name>]` section.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    VictoriaLogs(VictoriaLogsConfig),
    Elasticsearch(ElasticsearchConfig),
    Loki(LokiConfig),
    CloudWatchLogs(CloudWatchLogsConfig),
    File(FileConfig),
    S3Archive(S3ArchiveConfig),
}

/// What every store's settings can do; [`sections!`] writes it for a struct
/// of parts.
pub(crate) trait Sections: Sized {
    /// Every key of the flat table, from all parts.
    fn shape() -> Shape;
    /// Reads the parts from one flat table; keys a part does not know are
    /// left to the others (unknown keys are reported from [`Self::shape`]).
    fn from_table(table: &Table) -> Result<Self, toml::de::Error>;
    fn to_table(&self) -> Table;
    /// Reports problems with keys under `path` (`sink.<name>`).
    fn validate(&self, path: &str, problems: &mut Problems);
}

/// Implements [`Sections`] for a struct whose fields are each a part: a
/// struct of keys with `#[serde(default)]`. A key missing from the user's
/// table keeps the value of the store's own `Default`, so stores may differ
/// in their defaults (batch sizes, say) while sharing the part.
macro_rules! sections {
    ($name:ident { $($part:ident: $ty:ty),+ $(,)? }) => {
        impl $crate::config::sink::Sections for $name {
            fn shape() -> $crate::config::schema::Shape {
                $crate::config::sink::merged_shape(vec![
                    $($crate::config::schema::shape_of::<$ty>()),+
                ])
            }

            fn from_table(table: &toml::Table) -> Result<Self, toml::de::Error> {
                let defaults = Self::default();
                Ok($name {
                    $($part: $crate::config::sink::read_part(&defaults.$part, table)?),+
                })
            }

            fn to_table(&self) -> toml::Table {
                let mut table = toml::Table::new();
                $(table.extend($crate::config::sink::write_part(&self.$part));)+
                table
            }

            fn validate(&self, path: &str, problems: &mut $crate::config::validate::Problems) {
                self.check(path, problems);
            }
        }
    };
}
pub(crate) use sections;

pub(crate) fn merged_shape(parts: Vec<Shape>) -> Shape {
    let mut keys = Vec::new();
    for part in parts {
        let Shape::Table(fields) = part else {
            unreachable!("a part is a struct of keys");
        };
        keys.extend(fields);
    }
    Shape::Table(keys)
}

pub(crate) fn read_part<T: Serialize + DeserializeOwned>(
    defaults: &T,
    table: &Table,
) -> Result<T, toml::de::Error> {
    let mut merged = write_part(defaults);
    let Shape::Table(known) = shape_of::<T>() else {
        unreachable!("a part is a struct of keys");
    };
    for (key, value) in table {
        if known.iter().any(|(name, _)| name == key) {
            merged.insert(key.clone(), value.clone());
        }
    }
    Value::Table(merged).try_into()
}

pub(crate) fn write_part<T: Serialize>(part: &T) -> Table {
    Table::try_from(part).expect("a settings part serializes to a TOML table")
}

impl SinkConfig {
    /// The store names `type` takes.
    pub const KINDS: [&str; 6] = [
        "victorialogs",
        "elasticsearch",
        "loki",
        "cloudwatch_logs",
        "file",
        "s3_archive",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::VictoriaLogs(_) => "victorialogs",
            SinkConfig::Elasticsearch(_) => "elasticsearch",
            SinkConfig::Loki(_) => "loki",
            SinkConfig::CloudWatchLogs(_) => "cloudwatch_logs",
            SinkConfig::File(_) => "file",
            SinkConfig::S3Archive(_) => "s3_archive",
        }
    }

    /// The keys a section of `kind` takes, `type` included; `None` for an
    /// unknown kind.
    pub(crate) fn shape(kind: &str) -> Option<Shape> {
        let shape = match kind {
            "victorialogs" => VictoriaLogsConfig::shape(),
            "elasticsearch" => ElasticsearchConfig::shape(),
            "loki" => LokiConfig::shape(),
            "cloudwatch_logs" => CloudWatchLogsConfig::shape(),
            "file" => FileConfig::shape(),
            "s3_archive" => S3ArchiveConfig::shape(),
            _ => return None,
        };
        let Shape::Table(mut keys) = shape else {
            unreachable!("sections are tables");
        };
        keys.insert(0, ("type", Shape::Scalar { text: true }));
        Some(Shape::Table(keys))
    }

    fn from_table(kind: &str, table: &Table) -> Result<SinkConfig, toml::de::Error> {
        Ok(match kind {
            "victorialogs" => SinkConfig::VictoriaLogs(VictoriaLogsConfig::from_table(table)?),
            "elasticsearch" => SinkConfig::Elasticsearch(ElasticsearchConfig::from_table(table)?),
            "loki" => SinkConfig::Loki(LokiConfig::from_table(table)?),
            "cloudwatch_logs" => {
                SinkConfig::CloudWatchLogs(CloudWatchLogsConfig::from_table(table)?)
            }
            "file" => SinkConfig::File(FileConfig::from_table(table)?),
            "s3_archive" => SinkConfig::S3Archive(S3ArchiveConfig::from_table(table)?),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown sink type {other:?} (known: {})",
                    SinkConfig::KINDS.join(", ")
                )));
            }
        })
    }

    fn to_table(&self) -> Table {
        let mut table = match self {
            SinkConfig::VictoriaLogs(config) => config.to_table(),
            SinkConfig::Elasticsearch(config) => config.to_table(),
            SinkConfig::Loki(config) => config.to_table(),
            SinkConfig::CloudWatchLogs(config) => config.to_table(),
            SinkConfig::File(config) => config.to_table(),
            SinkConfig::S3Archive(config) => config.to_table(),
        };
        table.insert("type".into(), Value::String(self.kind().into()));
        table
    }

    pub(super) fn validate(&self, path: &str, problems: &mut Problems) {
        match self {
            SinkConfig::VictoriaLogs(config) => config.validate(path, problems),
            SinkConfig::Elasticsearch(config) => config.validate(path, problems),
            SinkConfig::Loki(config) => config.validate(path, problems),
            SinkConfig::CloudWatchLogs(config) => config.validate(path, problems),
            SinkConfig::File(config) => config.validate(path, problems),
            SinkConfig::S3Archive(config) => config.validate(path, problems),
        }
    }

    /// The batching keys, which every store has.
    pub fn batch(&self) -> &BatchConfig {
        match self {
            SinkConfig::VictoriaLogs(config) => &config.batch,
            SinkConfig::Elasticsearch(config) => &config.batch,
            SinkConfig::Loki(config) => &config.batch,
            SinkConfig::CloudWatchLogs(config) => &config.batch,
            SinkConfig::File(config) => &config.batch,
            SinkConfig::S3Archive(config) => &config.batch,
        }
    }
}

impl<'de> Deserialize<'de> for SinkConfig {
    /// Reads a section whose `type` is set (the configuration loader sets it
    /// from the name when the user left it out).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = Table::deserialize(deserializer)?;
        let kind = match table.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(serde::de::Error::custom("`type` must be a string")),
            None => return Err(serde::de::Error::missing_field("type")),
        };
        SinkConfig::from_table(&kind, &table).map_err(serde::de::Error::custom)
    }
}

impl Serialize for SinkConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_table().serialize(serializer)
    }
}

/// When a batch is sent and how many are in flight: every store has these.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BatchConfig {
    /// A batch is sent once its records reach this many bytes (as encoded
    /// for the store, before compression); also the most one request
    /// carries, unless a single record is larger.
    pub batch_max_bytes: u64,
    pub batch_max_records: u64,
    pub batch_max_age_ms: u64,
    /// Requests sent at once; more batches wait, and so do callers once
    /// the buffered bytes reach a batch per request plus one.
    pub max_requests_in_flight: u32,
    /// The longest record the store takes, as encoded for it. A longer
    /// record is not sent (a store would skip it or refuse the whole
    /// request) but written to the dead-letter output.
    pub max_record_bytes: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            // Encoded records reach the sink in ~1 MiB chunks, so larger
            // batches mostly copy chunks together; the buffers (a batch per
            // request in flight plus one) were a third of peak RSS at 8 MiB.
            batch_max_bytes: 2 * MIB,
            batch_max_records: 10_000,
            batch_max_age_ms: 1_000,
            max_requests_in_flight: 2,
            max_record_bytes: 1 << 30,
        }
    }
}

impl BatchConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        // Bounded so that the buffer budget (a batch per request and one)
        // stays far from overflowing.
        problems.in_range(
            &format!("{path}.batch_max_bytes"),
            self.batch_max_bytes,
            1024..=1 << 30,
        );
        problems.in_range(
            &format!("{path}.batch_max_records"),
            self.batch_max_records,
            1..=1_000_000,
        );
        problems.in_range(
            &format!("{path}.batch_max_age_ms"),
            self.batch_max_age_ms,
            1..=3_600_000,
        );
        problems.in_range(
            &format!("{path}.max_requests_in_flight"),
            self.max_requests_in_flight,
            1..=64,
        );
        problems.in_range(
            &format!("{path}.max_record_bytes"),
            self.max_record_bytes,
            1..=1 << 30,
        );
    }
}

/// How an HTTP store is reached: every HTTP store has these.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    /// The store's base URL (required); a path is kept as a prefix, for a
    /// store behind a proxy path. Credentials in it (`user:password@`) are
    /// sent as basic auth and never shown.
    #[serde(serialize_with = "serialize_without_credentials")]
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub bearer_token: Option<Secret>,
    /// Extra headers on every request. Their values are treated as secrets
    /// (they often carry API keys).
    pub headers: BTreeMap<String, Secret>,
    /// Extra CA certificates (PEM) trusted for the store's TLS.
    pub tls_ca_file: Option<PathBuf>,
    pub request_timeout_secs: u64,
}

fn serialize_without_credentials<S: Serializer>(
    url: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    without_credentials(url).serialize(serializer)
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &without_credentials(&self.url))
            .field("username", &self.username)
            .field("password", &self.password)
            .field("bearer_token", &self.bearer_token)
            .field("headers", &self.headers)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .finish()
    }
}

impl HttpConfig {
    pub(crate) fn with_timeout(request_timeout_secs: u64) -> HttpConfig {
        HttpConfig {
            request_timeout_secs,
            ..HttpConfig::default()
        }
    }

    fn check(&self, path: &str, problems: &mut Problems) {
        problems.required_http_url(&format!("{path}.url"), &self.url);
        problems.in_range(
            &format!("{path}.request_timeout_secs"),
            self.request_timeout_secs,
            1..=3600,
        );
        match (&self.username, &self.password, &self.bearer_token) {
            (Some(_), Some(_), None) | (None, None, _) => {}
            (Some(_), None, _) => {
                problems.add(&format!("{path}.password"), "required with username")
            }
            (None, Some(_), _) => {
                problems.add(&format!("{path}.username"), "required with password")
            }
            (Some(_), Some(_), Some(_)) => problems.add(
                &format!("{path}.bearer_token"),
                "use either username/password or bearer_token, not both",
            ),
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::try_from(name.as_str()).is_err() {
                problems.add(
                    &format!("{path}.headers"),
                    format_args!("{name:?} is not a valid header name"),
                );
            }
        }
    }

    /// Whether any credential is configured (headers aside).
    pub fn has_credentials(&self) -> bool {
        self.password.is_some() || self.bearer_token.is_some()
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
    Snappy,
    None,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::None => "none",
        })
    }
}

/// Reports `compression` unless it is one `allowed` by the store.
fn allowed_compression(
    path: &str,
    compression: Compression,
    allowed: &[Compression],
    problems: &mut Problems,
) {
    if !allowed.contains(&compression) {
        let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        problems.add(
            &format!("{path}.compression"),
            format_args!(
                "{compression} is not accepted by this store (use {})",
                names.join(", ")
            ),
        );
    }
}

/// Applies `S3LOGD_SINK_<NAME>_<KEY>` variables to the `[sink]` table and
/// fills in every section's `type`. A variable names a sink of the file
/// (its name upper-cased, `-` as `_`), or creates one: `..._<NAME>_TYPE`
/// creates any, and a kind's own name (`S3LOGD_SINK_VICTORIALOGS_URL`)
/// creates the sink of that name.
pub(super) fn prepare(
    sinks: &mut Table,
    env: &BTreeMap<String, String>,
    errors: &mut Vec<super::ConfigError>,
) {
    const PREFIX: &str = "S3LOGD_SINK_";
    // `_TYPE` variables first: they add the sinks other variables set keys of.
    let (types, keys): (Vec<_>, Vec<_>) = env
        .iter()
        .filter(|(variable, _)| variable.starts_with(PREFIX))
        .partition(|(variable, _)| variable.ends_with("_TYPE"));
    for (variable, raw) in types.into_iter().chain(keys) {
        let Some(rest) = variable.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((name, key)) = sink_and_key(sinks, rest) else {
            errors.push(super::ConfigError {
                path: "sink".into(),
                message: format!(
                    "{variable} names no sink of the file and no known key (set {PREFIX}<NAME>_TYPE to add a sink)"
                ),
            });
            continue;
        };
        let section = sinks
            .entry(name.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(section) = section else {
            continue;
        };
        let kind = kind_of(&name, section).unwrap_or_default();
        let text = key == "type"
            || SinkConfig::shape(&kind).is_some_and(|shape| {
                shape.key_paths().iter().any(|(path, shape)| {
                    *path == key && matches!(shape, Shape::Scalar { text: true })
                })
            });
        let value = if text {
            Value::String(raw.clone())
        } else {
            super::parse_toml_value(raw).unwrap_or_else(|| Value::String(raw.clone()))
        };
        section.insert(key, value);
    }
    for (name, section) in sinks.iter_mut() {
        let Value::Table(section) = section else {
            errors.push(super::ConfigError {
                path: format!("sink.{name}"),
                message: "must be a table ([sink.<name>])".into(),
            });
            continue;
        };
        match kind_of(name, section) {
            Some(kind) if SinkConfig::shape(&kind).is_some() => {
                section.insert("type".into(), Value::String(kind));
            }
            Some(kind) => errors.push(super::ConfigError {
                path: format!("sink.{name}.type"),
                message: format!(
                    "unknown sink type {kind:?} (known: {})",
                    SinkConfig::KINDS.join(", ")
                ),
            }),
            None => errors.push(super::ConfigError {
                path: format!("sink.{name}.type"),
                message: format!(
                    "required: the name is no sink type (known: {})",
                    SinkConfig::KINDS.join(", ")
                ),
            }),
        }
    }
}

/// The sink's `type`, or its name when that is a kind.
fn kind_of(name: &str, section: &Table) -> Option<String> {
    match section.get("type") {
        Some(Value::String(kind)) => Some(kind.clone()),
        Some(_) => Some(String::new()),
        None => SinkConfig::KINDS.contains(&name).then(|| name.to_owned()),
    }
}

/// Splits `<NAME>_<KEY>` (after the prefix) into a sink name and a key: the
/// longest sink of the file, or kind, whose name prefixes it and leaves a
/// known key (or `type`).
fn sink_and_key(sinks: &Table, rest: &str) -> Option<(String, String)> {
    let env_form = |name: &str| name.to_uppercase().replace('-', "_");
    let mut candidates: Vec<(String, Option<String>)> = sinks
        .iter()
        .map(|(name, section)| {
            let kind = match section {
                Value::Table(section) => kind_of(name, section),
                _ => None,
            };
            (name.clone(), kind)
        })
        .collect();
    for kind in SinkConfig::KINDS {
        if !sinks.contains_key(kind) {
            candidates.push((kind.to_owned(), Some(kind.to_owned())));
        }
    }
    candidates.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let from_file_or_kind = candidates.iter().find_map(|(name, kind)| {
        let key = rest
            .strip_prefix(&env_form(name))?
            .strip_prefix('_')?
            .to_lowercase();
        let known = key == "type"
            || kind
                .as_deref()
                .and_then(SinkConfig::shape)
                .is_some_and(|shape| shape.key_paths().iter().any(|(path, _)| *path == key));
        known.then(|| (name.clone(), key))
    });
    from_file_or_kind.or_else(|| {
        // A new sink of any name: `<NAME>_TYPE`.
        let name = rest.strip_suffix("_TYPE")?;
        (!name.is_empty()).then(|| (name.to_lowercase(), "type".to_owned()))
    })
}

/// Reports keys of `[sink.<name>]` sections that their store does not take.
pub(super) fn report_unknown_keys(sinks: &Table, errors: &mut Vec<super::ConfigError>) {
    for (name, section) in sinks {
        let Value::Table(section) = section else {
            continue;
        };
        let Some(shape) = section
            .get("type")
            .and_then(Value::as_str)
            .and_then(SinkConfig::shape)
        else {
            continue;
        };
        super::report_unknown_keys(section, &shape, &format!("sink.{name}"), errors);
    }
}

/// Sink names are used in metric labels and file names.
pub(super) fn check_name(name: &str, problems: &mut Problems) {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        problems.add(
            &format!("sink.{name}"),
            "a sink name is 1 to 64 characters of a-z, 0-9, `_` and `-`",
        );
    }
}

#[cfg(test)]
mod tests;
