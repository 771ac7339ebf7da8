//! The collector's TOML configuration (`s3logd.example.toml` documents every
//! key), with `S3LOGD_<SECTION>_<KEY>` environment overrides and validation
//! that reports every problem at once, each with its key path.

pub mod listen;
mod schema;
pub mod sink;
mod validate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::{Table, Value};

use crate::logging::Escaped;
use schema::Shape;
pub use sink::{
    BatchConfig, BulkAction, CloudWatchLogsConfig, CloudWatchLogsOptions, CloudWatchMessage,
    Compression, ElasticsearchAuth, ElasticsearchConfig, ElasticsearchOptions, FileConfig,
    FileOptions, HttpConfig, LokiConfig, LokiLine, LokiOptions, S3ArchiveConfig, S3ArchiveOptions,
    SinkConfig, VictoriaLogsConfig, VictoriaLogsOptions,
};

const MIB: u64 = 1024 * 1024;
const ENV_PREFIX: &str = "S3LOGD_";

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub queue: QueueConfig,
    pub aws: AwsConfig,
    pub objects: ObjectsConfig,
    /// Chooses the parser by object key; the first match wins, then the
    /// parsers' own detection.
    pub routes: Vec<Route>,
    pub enrich: EnrichConfig,
    pub parsers: ParsersConfig,
    /// `[sink.<name>]` sections: every store records go to, by name.
    pub sink: BTreeMap<String, SinkConfig>,
    pub dead_letter: DeadLetterConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    /// `s3logd listen`: JSON objects over TCP.
    pub listen: listen::ListenConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Required; empty only until validation reports it missing.
    pub url: String,
    pub max_messages: u32,
    pub wait_time_secs: u32,
    /// What the heartbeat extends a message's visibility to while its
    /// objects are processed.
    pub visibility_timeout_secs: u32,
    pub heartbeat_interval_secs: u32,
    /// A message received more often than this is given up: neither
    /// worked on, extended nor deleted, left to the queue's redrive policy.
    pub max_receive_count: u32,
    /// Objects processed at once.
    pub concurrency: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            url: String::new(),
            max_messages: 10,
            wait_time_secs: 20,
            visibility_timeout_secs: 300,
            heartbeat_interval_secs: 60,
            max_receive_count: 5,
            concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// `None`: the SDK's default provider chain decides.
    pub region: Option<String>,
    /// For S3-compatible stores and tests.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// Empty: objects of any bucket are fetched.
    pub allowed_buckets: Vec<String>,
    /// The AWS account (12 digits) that must own every bucket objects are
    /// read or listed from, sent as S3's `ExpectedBucketOwner`: S3 refuses
    /// the request when another account owns the bucket, so that a
    /// notification cannot make s3logd read (with its own permissions) a
    /// bucket of someone else's. `None`: not checked.
    pub expected_bucket_owner: Option<String>,
    pub max_line_bytes: u64,
    /// Global budget of encoded record bytes handed to the sink and not yet
    /// acknowledged; parsing waits and receiving pauses while it is used up.
    pub in_flight_bytes: u64,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            allowed_buckets: Vec::new(),
            expected_bucket_owner: None,
            max_line_bytes: 64 * MIB,
            in_flight_bytes: 256 * MIB,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// A valid regex once the configuration is loaded.
    pub key_regex: String,
    /// The parser of matching objects; absent: the parsers' own detection.
    pub parser: Option<String>,
    pub options: BTreeMap<String, String>,
    /// The sinks matching objects' records go to, by name; absent: all.
    pub sinks: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichConfig {
    /// Its named groups become fields of every record of the object; a
    /// valid regex once the configuration is loaded.
    pub key_regex: Option<String>,
    pub stream_fields: Vec<String>,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        let stream_fields = ["log_type", "account", "region", "load_balancer"];
        EnrichConfig {
            key_regex: None,
            stream_fields: stream_fields.map(String::from).to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParsersConfig {
    /// Custom parser components: `.wasm` files or directories of them.
    pub paths: Vec<PathBuf>,
    /// Wall-clock time one parser call may take (see [`crate::parse::Limits`]).
    pub call_timeout_ms: u64,
    pub memory_limit_mib: u64,
}

impl Default for ParsersConfig {
    fn default() -> Self {
        ParsersConfig {
            paths: Vec::new(),
            call_timeout_ms: 30_000,
            memory_limit_mib: 256,
        }
    }
}

/// Where records go that a store refused for good (a mapping error, a
/// record too large or too old), and lines no record came from (line
/// errors, lines over `objects.max_line_bytes`): written there with where
/// they came from and why, they count as accounted for and their message
/// can be deleted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// JSON lines appended to this file, fsync'd before a message that
    /// depends on them is deleted.
    pub path: PathBuf,
    /// Instead of the file: one gzipped JSON-lines object per write under
    /// this `s3://bucket/prefix/`.
    pub s3_url: Option<String>,
    /// How much of a line that gave no record is written: a line can be as
    /// long as `objects.max_line_bytes`, and its start is what tells why.
    pub max_line_bytes: u64,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            path: PathBuf::from("s3logd-dead-letter.ndjson"),
            s3_url: None,
            max_line_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A socket address once the configuration is loaded.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9477".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: a level or directives such as `info,s3logd=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    pub grace_period_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period_secs: 30,
        }
    }
}

/// A bucket and key prefix written `s3://bucket/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/` when the URL's did.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Option<S3Location> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// A password or token: printed, logged and serialized as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde's own error would repeat a value of the wrong type (a
        // number written without quotes).
        String::deserialize(deserializer)
            .map(Secret)
            .map_err(|_| serde::de::Error::custom("expected a string (the value is a secret)"))
    }
}

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

const MASK: &str = "***";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// `url` with its user information (`user:password@`) as `***`, to be
/// shown: an HTTP store's URL may carry its credentials. Cut by text, not
/// parsed, so that a URL that does not parse is masked as well.
pub fn without_credentials(url: &str) -> Cow<'_, str> {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[authority..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| authority + at);
    match url[authority..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}{MASK}{}",
            &url[..authority],
            &url[authority + at..]
        )),
        None => Cow::Borrowed(url),
    }
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path (`sink.victorialogs.url`, `routes[0].key_regex`);
    /// empty for problems with the file as a whole.
    pub path: String,
    pub message: String,
}

/// Every problem found, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            // One line each: a value quoted in a message may hold newlines.
            let message = Escaped(&error.message);
            match error.path.as_str() {
                "" => write!(f, "{message}")?,
                path => write!(f, "{}: {message}", Escaped(path))?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// The process environment as [`Config::parse`] takes it (variables that
/// are not Unicode are left out).
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

impl Config {
    /// Reads and validates the file, with overrides from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors::one("", format!("cannot read {}: {error}", path.display()))
        })?;
        Config::parse(&text, process_env())
    }

    /// What `check-config` shows: the effective configuration after defaults
    /// and environment overrides, as TOML with secrets masked.
    pub fn check(path: &Path) -> Result<String, ConfigErrors> {
        let config = Config::load(path)?;
        Ok(toml::to_string(&config).expect("the configuration serializes to TOML"))
    }

    /// Parses TOML text, applies `S3LOGD_*` overrides from `env` and
    /// validates the result.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let mut table: Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigErrors::one("", syntax_error(text, &error)))?;
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let shape = schema::shape_of::<Config>();
        let mut errors = apply_env_overrides(&mut table, &shape, &env);
        report_unknown_keys(&table, &shape, "", &mut errors);
        let mut sinks = match table.remove("sink") {
            None => Table::new(),
            Some(Value::Table(sinks)) => sinks,
            Some(_) => {
                errors.push(ConfigError {
                    path: "sink".into(),
                    message: "must hold [sink.<name>] tables".into(),
                });
                Table::new()
            }
        };
        sink::prepare(&mut sinks, &env, &mut errors);
        sink::report_unknown_keys(&sinks, &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut config: Config = Value::Table(table)
            .try_into()
            .map_err(|error| ConfigErrors(vec![deserialize_error(error)]))?;
        for (name, section) in sinks {
            match section.try_into::<SinkConfig>() {
                Ok(sink) => {
                    config.sink.insert(name, sink);
                }
                Err(error) => {
                    let mut error = deserialize_error(error);
                    error.path = match error.path.as_str() {
                        "" => format!("sink.{name}"),
                        key => format!("sink.{name}.{key}"),
                    };
                    errors.push(error);
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Where the TOML in `text` is broken and why, without the excerpt of the
/// line toml shows (that line may hold a password).
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().replace('\n', "; ");
    let Some(before) = error.span().and_then(|span| text.get(..span.start)) else {
        return format!("invalid TOML: {message}");
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("invalid TOML at line {line}, column {column}: {message}")
}

/// The environment variable that sets a key path.
fn env_name(path: &str) -> String {
    format!("{ENV_PREFIX}{}", path.replace('.', "_").to_uppercase())
}

/// Sets every key whose `S3LOGD_*` variable is present. Keys inside
/// `[[routes]]` are not addressable one by one; `S3LOGD_ROUTES` replaces the
/// whole list with an inline TOML array. `[sink.<name>]` keys are set by
/// [`sink::prepare`], which knows each sink's store.
fn apply_env_overrides(
    table: &mut Table,
    shape: &Shape,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (path, key_shape) in shape.key_paths() {
        if matches!(key_shape, Shape::Table(_)) || is_inside_table_list(shape, &path) {
            continue;
        }
        let name = env_name(&path);
        let Some(raw) = overrides.get(&name) else {
            continue;
        };
        let value = match key_shape {
            Shape::Scalar { text: true } => Value::String(raw.clone()),
            _ => parse_toml_value(raw).unwrap_or_else(|| Value::String(raw.clone())),
        };
        if let Err(message) = set_path(table, &path, value) {
            errors.push(ConfigError {
                path,
                message: format!("{name}: {message}"),
            });
        }
    }
    errors
}

fn is_inside_table_list(shape: &Shape, path: &str) -> bool {
    let mut current = shape;
    for key in path.split('.') {
        match current {
            Shape::Table(fields) => match fields.iter().find(|(name, _)| *name == key) {
                Some((_, child)) => current = child,
                None => return false,
            },
            Shape::TableList(_) => return true,
            _ => return false,
        }
    }
    false
}

pub(super) fn parse_toml_value(raw: &str) -> Option<Value> {
    let mut holder: Table = format!("value = {raw}").parse().ok()?;
    holder.remove("value")
}

fn set_path(table: &mut Table, path: &str, value: Value) -> Result<(), String> {
    let (parents, key) = path
        .rsplit_once('.')
        .map_or((None, path), |(parents, key)| (Some(parents), key));
    let mut current = table;
    for section in parents.into_iter().flat_map(|parents| parents.split('.')) {
        current = match current
            .entry(section)
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(inner) => inner,
            _ => return Err(format!("`{section}` in the file is not a table")),
        };
    }
    current.insert(key.to_owned(), value);
    Ok(())
}

pub(super) fn report_unknown_keys(
    table: &Table,
    shape: &Shape,
    prefix: &str,
    errors: &mut Vec<ConfigError>,
) {
    let Shape::Table(fields) = shape else {
        return;
    };
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some((_, child)) = fields.iter().find(|(name, _)| name == key) else {
            let known: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
            errors.push(ConfigError {
                path,
                message: format!("unknown key (known here: {})", known.join(", ")),
            });
            continue;
        };
        match (child, value) {
            (Shape::Table(_), Value::Table(inner)) => {
                report_unknown_keys(inner, child, &path, errors)
            }
            (Shape::TableList(element), Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Table(inner) = item {
                        report_unknown_keys(inner, element, &format!("{path}[{index}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }
}

/// toml names the failing key only in its display text (a trailing
/// "in `queue.max_messages`" line), so it is taken from there.
fn deserialize_error(error: toml::de::Error) -> ConfigError {
    let text = error.to_string();
    let path = text
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("in `")?.strip_suffix('`'))
        .unwrap_or_default()
        .to_owned();
    ConfigError {
        path,
        message: error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests;
