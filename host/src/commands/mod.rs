//! One module per subcommand.

pub mod check_config;
pub mod parse;
pub mod parsers;
pub mod run;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use s3logd::parse::{Limits, Parsers, Runtime};

/// Loads the bundled parsers plus `custom` ones with default limits.
fn load_parsers(custom: &[PathBuf], perf_map: bool) -> Result<Parsers> {
    let runtime = if perf_map {
        Runtime::with_perf_map(Limits::default())?
    } else {
        Runtime::new(Limits::default())?
    };
    Parsers::load(Arc::new(runtime), custom)
}
