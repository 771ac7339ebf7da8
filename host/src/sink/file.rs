//! The file sink: records as JSON lines (as `s3logd parse` prints them)
//! appended to a file, rotated by size or age, or written to stdout; and
//! the appending itself, which the dead-letter output shares.
//!
//! A batch counts as stored once it is written and, with `fsync` (the
//! default), on disk. A write that fails (a full disk) is retried with
//! backoff like any store's outage.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::delivery::{Answer, Records, Store};
use super::json::write_rfc3339;
use crate::config::FileOptions;

pub struct FileStore {
    appender: Appender,
}

impl FileStore {
    pub fn new(options: &FileOptions) -> FileStore {
        FileStore {
            appender: Appender::new(options),
        }
    }
}

impl Store for FileStore {
    async fn send(&self, records: &Records) -> Answer {
        match self.appender.append(records.concatenated()).await {
            Ok(()) => Answer::Stored,
            Err(error) => Answer::Retry {
                reason: format!("{}: {error}", self.appender.path().display()),
                retry_after: None,
            },
        }
    }
}

/// Appends to one file from any task, one write at a time.
#[derive(Clone)]
pub struct Appender {
    shared: Arc<Shared>,
}

struct Shared {
    options: FileOptions,
    open: Mutex<Option<Open>>,
}

struct Open {
    file: File,
    written: u64,
    since: Instant,
}

/// `-`: standard output.
const STDOUT: &str = "-";

impl Appender {
    pub fn new(options: &FileOptions) -> Appender {
        Appender {
            shared: Arc::new(Shared {
                options: options.clone(),
                open: Mutex::new(None),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.shared.options.path
    }

    /// Writes `parts` one after the other, on a blocking thread.
    pub async fn append(&self, parts: Vec<Bytes>) -> io::Result<()> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.append(&parts))
            .await
            .expect("appending does not panic")
    }
}

impl Shared {
    fn append(&self, parts: &[Bytes]) -> io::Result<()> {
        let options = &self.options;
        if options.path.as_os_str() == STDOUT {
            let mut out = io::stdout().lock();
            for part in parts {
                out.write_all(part)?;
            }
            return out.flush();
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.as_ref().is_some_and(|open| self.is_due(open)) {
            *open = None;
            std::fs::rename(&options.path, rotated_name(&options.path))?;
        }
        let file = match &mut *open {
            Some(file) => file,
            None => open.insert(self.open_file()?),
        };
        let result = (|| {
            for part in parts {
                file.file.write_all(part)?;
                file.written += part.len() as u64;
            }
            if options.fsync {
                file.file.sync_data()?;
            }
            Ok(())
        })();
        if result.is_err() {
            // A partial write leaves the file's end unknown: reopen next time.
            *open = None;
        }
        result
    }

    fn open_file(&self) -> io::Result<Open> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.options.path)?;
        let written = file.metadata()?.len();
        Ok(Open {
            file,
            written,
            since: Instant::now(),
        })
    }

    fn is_due(&self, open: &Open) -> bool {
        let options = &self.options;
        (options.rotate_bytes > 0 && open.written >= options.rotate_bytes)
            || (options.rotate_secs > 0
                && open.since.elapsed() >= Duration::from_secs(options.rotate_secs))
    }
}

/// `records.ndjson` → `records.ndjson.20240301T120500.123456789Z`, a name
/// no earlier rotation took.
fn rotated_name(path: &Path) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64);
    let mut time = Vec::new();
    write_rfc3339(&mut time, now);
    let stamp: String = String::from_utf8(time)
        .expect("RFC 3339 is ASCII")
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(stamp);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(path: &Path) -> FileOptions {
        FileOptions {
            path: path.to_owned(),
            ..FileOptions::default()
        }
    }

    #[tokio::test]
    async fn appends_keep_what_the_file_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.ndjson");
        std::fs::write(&path, "old\n").unwrap();
        let appender = Appender::new(&options(&path));
        appender
            .append(vec![Bytes::from_static(b"a\n"), Bytes::from_static(b"b\n")])
            .await
            .unwrap();
        appender
            .append(vec![Bytes::from_static(b"c\n")])
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\na\nb\nc\n");
    }

    #[tokio::test]
    async fn files_rotate_by_size_and_no_line_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.ndjson");
        let appender = Appender::new(&FileOptions {
            rotate_bytes: 10,
            ..options(&path)
        });
        for n in 0..6 {
            appender
                .append(vec![Bytes::from(format!("line {n}\n"))])
                .await
                .unwrap();
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        // Two lines (14 bytes) fill a file past 10 bytes.
        assert_eq!(files.len(), 3, "{files:?}");
        let mut lines: Vec<String> = files
            .iter()
            .flat_map(|file| {
                std::fs::read_to_string(file)
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            (0..6).map(|n| format!("line {n}")).collect::<Vec<_>>()
        );
        assert!(
            files.iter().any(|file| file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("records.ndjson.")),
            "{files:?}"
        );
    }

    #[tokio::test]
    async fn files_rotate_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.ndjson");
        let appender = Appender::new(&FileOptions {
            rotate_secs: 1,
            ..options(&path)
        });
        appender
            .append(vec![Bytes::from_static(b"first\n")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        appender
            .append(vec![Bytes::from_static(b"second\n")])
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
