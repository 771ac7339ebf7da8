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
fn load_parsers(custom: &[PathBuf]) -> Result<Parsers> {
    let runtime = Arc::new(Runtime::new(Limits::default())?);
    Parsers::load(runtime, custom)
}
