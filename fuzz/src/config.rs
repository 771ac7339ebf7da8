//! Any configuration text, with any `S3LOGD_*` overrides, through loading
//! and validation: a configuration or errors naming where, and a loaded
//! configuration always shows as `check-config` prints it.
//!
//! Input: the TOML text, then optionally a NUL byte and overrides, one
//! `NAME=VALUE` a line, each NAME taken after `S3LOGD_`.

use s3logd::config::Config;

pub fn run(data: &[u8]) {
    let (text, overrides) = match memchr::memchr(0, data) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let env: Vec<(String, String)> = String::from_utf8_lossy(overrides)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (format!("S3LOGD_{name}"), value.to_owned()))
        .collect();
    match Config::parse(&text, env) {
        Ok(config) => {
            toml::to_string(&config).expect("a loaded configuration serializes to TOML");
        }
        Err(errors) => assert!(!errors.0.is_empty(), "a failed load says why"),
    }
}
