//! The import's memory between runs: one JSON line per object that was
//! finished (`done`: every sink acknowledged every record, or with
//! `--enqueue`, the queue took its message) or that failed (kept for the
//! next run, which tries it again). Lines are appended as objects finish,
//! each in one write, so a crash loses at most what the operating system
//! had not written; a torn last line is ignored.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Done { id: String },
    Failed { id: String, reason: String },
}

pub struct Checkpoint {
    path: PathBuf,
    /// `None` for a dry run, which writes nothing.
    file: Option<File>,
    done: HashSet<String>,
    /// Failed in an earlier run and not done since.
    failed_before: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads `path` if it exists (`restart`: removes it first) and opens it
    /// for appending unless `read_only`.
    pub fn open(path: &Path, restart: bool, read_only: bool) -> io::Result<Checkpoint> {
        if restart && !read_only {
            match std::fs::remove_file(path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        let mut done = HashSet::new();
        let mut failed_before = BTreeMap::new();
        match File::open(path) {
            Ok(file) if !(restart && read_only) => {
                for line in BufReader::new(file).lines() {
                    let line = line?;
                    match serde_json::from_str::<Line>(&line) {
                        Ok(Line::Done { id }) => {
                            failed_before.remove(&id);
                            done.insert(id);
                        }
                        Ok(Line::Failed { id, reason }) => {
                            if !done.contains(&id) {
                                failed_before.insert(id, reason);
                            }
                        }
                        // A line cut short by a crash.
                        Err(_) => tracing::debug!(line, "checkpoint line skipped"),
                    }
                }
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let file = if read_only {
            None
        } else {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            // A torn last line must not swallow the next one.
            if file.metadata()?.len() > 0 && !ends_with_newline(path)? {
                file.write_all(b"\n")?;
            }
            Some(file)
        };
        Ok(Checkpoint {
            path: path.to_owned(),
            file,
            done,
            failed_before,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_done(&self, id: &str) -> bool {
        self.done.contains(id)
    }

    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Objects that failed in an earlier run and are not done yet.
    pub fn failed_before(&self) -> &BTreeMap<String, String> {
        &self.failed_before
    }

    pub fn record_done(&mut self, id: &str) -> io::Result<()> {
        self.failed_before.remove(id);
        self.done.insert(id.to_owned());
        self.append(&Line::Done { id: id.to_owned() })
    }

    pub fn record_failed(&mut self, id: &str, reason: &str) -> io::Result<()> {
        self.append(&Line::Failed {
            id: id.to_owned(),
            reason: reason.to_owned(),
        })
    }

    fn append(&mut self, line: &Line) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut text = serde_json::to_string(line).expect("a checkpoint line serializes");
        text.push('\n');
        file.write_all(text.as_bytes())
    }

    /// Makes everything recorded durable.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_objects_survive_a_rerun_and_failed_ones_are_kept_for_retry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/import.checkpoint");
        {
            let mut checkpoint = Checkpoint::open(&path, false, false).unwrap();
            checkpoint.record_done("s3://b/one").unwrap();
            checkpoint
                .record_failed("s3://b/two", "corrupt gzip")
                .unwrap();
            checkpoint
                .record_failed("s3://b/three", "sink down")
                .unwrap();
            checkpoint.record_done("s3://b/three").unwrap();
            checkpoint.sync().unwrap();
        }
        // A crash in the middle of a line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"done":{"id":"s3://b/fo"#).unwrap();
        drop(file);

        let mut checkpoint = Checkpoint::open(&path, false, false).unwrap();
        assert!(checkpoint.is_done("s3://b/one"));
        assert!(checkpoint.is_done("s3://b/three"));
        assert!(!checkpoint.is_done("s3://b/two"));
        assert!(!checkpoint.is_done("s3://b/fo"));
        assert_eq!(
            checkpoint.failed_before().keys().collect::<Vec<_>>(),
            ["s3://b/two"]
        );
        checkpoint.record_done("s3://b/four").unwrap();
        drop(checkpoint);
        let checkpoint = Checkpoint::open(&path, false, true).unwrap();
        assert!(
            checkpoint.is_done("s3://b/four"),
            "the torn line did not swallow the next"
        );
        assert_eq!(checkpoint.done_count(), 3);

        let dry = Checkpoint::open(&path, true, true).unwrap();
        assert_eq!(
            dry.done_count(),
            0,
            "a dry run with --restart sees nothing done"
        );
        assert!(path.exists(), "and removes nothing");
        let restarted = Checkpoint::open(&path, true, false).unwrap();
        assert_eq!(restarted.done_count(), 0);
    }
}
