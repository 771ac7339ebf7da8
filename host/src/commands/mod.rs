//! One module per subcommand.

pub mod check_config;
pub mod import;
pub mod lambda;
pub mod listen;
pub mod parse;
pub mod parsers;
pub mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use s3logd::config::Config;
use s3logd::parse::{Limits, Parsers, Profiling, Runtime};

/// Loads the bundled parsers plus `custom` ones with default limits.
fn load_parsers(custom: &[PathBuf], profiling: Profiling) -> Result<Parsers> {
    let runtime = Runtime::profiled(Limits::default(), profiling)?;
    Parsers::load(Arc::new(runtime), custom)
}

/// The configuration of a command that takes no work from the queue
/// (`import`, `listen`): `queue.url`, which only `run` needs, is made up
/// when absent, then `adjust` may change the table before it is validated
/// with the environment's overrides. Without a file, the defaults.
fn load_config_without_queue(
    path: Option<&Path>,
    adjust: impl FnOnce(&mut toml::Table),
) -> Result<Config> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => String::new(),
    };
    let text = match text.parse::<toml::Table>() {
        Ok(mut table) => {
            if let toml::Value::Table(queue) = table
                .entry("queue")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                && !queue.contains_key("url")
                && std::env::var_os("S3LOGD_QUEUE_URL").is_none()
            {
                queue.insert("url".into(), "https://queue.unused.invalid/".into());
            }
            adjust(&mut table);
            toml::to_string(&table).expect("a TOML table serializes")
        }
        // Reported with its position by the configuration's own parser.
        Err(_) => text,
    };
    let name = path.map_or_else(|| "(defaults)".to_owned(), |p| p.display().to_string());
    Config::parse(&text, s3logd::config::process_env())
        .map_err(|errors| anyhow::anyhow!("{name}:\n{errors}"))
}

/// The runtime of a command that processes objects: its blocking pool is
/// where parsers run, so the configuration sizes it.
pub(crate) fn async_runtime(config: &Config) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(config.blocking_threads())
        .enable_all()
        .build()
        .context("starting the async runtime")
}
