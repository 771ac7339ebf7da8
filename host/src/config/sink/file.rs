//! `[sink.<name>]` of `type = "file"`: JSON lines appended to a file or
//! written to stdout.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{BatchConfig, sections};
use crate::config::validate::Problems;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub batch: BatchConfig,
    pub options: FileOptions,
}

sections!(FileConfig {
    batch: BatchConfig,
    options: FileOptions,
});

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct FileOptions {
    /// The file to append to (required); `-` is standard output.
    pub path: PathBuf,
    /// Rotate once the file holds this many bytes [0: never].
    pub rotate_bytes: u64,
    /// Rotate once the file is this old [0: never].
    pub rotate_secs: u64,
    /// Records count as stored only once the file's data reached the disk
    /// (fsync per batch). Off: once the operating system has them.
    pub fsync: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            path: PathBuf::new(),
            rotate_bytes: 0,
            rotate_secs: 0,
            fsync: true,
        }
    }
}

impl FileConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.batch.check(path, problems);
        if self.options.path.as_os_str().is_empty() {
            problems.add(&format!("{path}.path"), "required");
        }
    }
}
