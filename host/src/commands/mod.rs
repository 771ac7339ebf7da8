//! One module per subcommand.

pub mod check_config;
pub mod import;
pub mod listen;
pub mod parse;
pub mod parsers;
pub mod run;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use s3logd::parse::{Limits, Parsers, Profiling, Runtime};

/// Loads the bundled parsers plus `custom` ones with default limits.
fn load_parsers(custom: &[PathBuf], profiling: Profiling) -> Result<Parsers> {
    let runtime = Runtime::profiled(Limits::default(), profiling)?;
    Parsers::load(Arc::new(runtime), custom)
}
