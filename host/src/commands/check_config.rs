//! `s3logd check-config`: validates a configuration file and prints the
//! effective configuration (defaults and environment overrides applied,
//! secrets masked), or every problem with its key.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use s3logd::config::Config;

pub fn run(path: &Path) -> Result<ExitCode> {
    match Config::check(path) {
        Ok(effective) => {
            print!("{effective}");
            eprintln!("{}: ok", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{}: invalid configuration", path.display());
            for line in errors.to_string().lines() {
                eprintln!("  {line}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
