//! `--keys-from FILE`: import exactly the keys a file lists instead of
//! listing the source. One key a line, as S3 spells it (UTF-8, not
//! URL-encoded); blank lines and lines starting with `#` are skipped; a
//! `\r` before the newline and a byte-order mark are dropped; nothing else
//! is trimmed, since a key may begin or end with spaces. The file is read
//! line by line as objects are dispatched, never whole.

use std::io::{self, BufRead};
use std::path::{Component, Path};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::listing::{Entry, ListStats, Store};

/// Keys read ahead of the objects in work; bounds the memory.
const READ_AHEAD: usize = 256;

/// The opened keys file: a name for messages and its lines.
pub struct KeysFile {
    pub name: String,
    pub reader: Box<dyn BufRead + Send>,
}

impl KeysFile {
    /// `-` is standard input.
    pub fn open(path: &str) -> io::Result<KeysFile> {
        let reader: Box<dyn BufRead + Send> = if path == "-" {
            Box::new(io::BufReader::new(io::stdin()))
        } else {
            Box::new(io::BufReader::new(std::fs::File::open(path)?))
        };
        let name = if path == "-" {
            "standard input".to_owned()
        } else {
            path.to_owned()
        };
        Ok(KeysFile { name, reader })
    }
}

/// The key a line holds, `None` for a blank line or a comment.
pub fn key_of_line(line: &str) -> Option<&str> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with('#') {
        return None;
    }
    Some(line)
}

/// The keys of a file, one at a time: `Err` for an unreadable line (I/O or
/// not UTF-8), after which the iterator ends.
pub struct Keys<R> {
    reader: R,
    line: Vec<u8>,
    number: u64,
    failed: bool,
}

impl<R: BufRead> Keys<R> {
    pub fn new(reader: R) -> Keys<R> {
        Keys {
            reader,
            line: Vec::new(),
            number: 0,
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for Keys<R> {
    type Item = Result<String, String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => {
                    self.failed = true;
                    return Some(Err(format!("line {}: {error}", self.number + 1)));
                }
            }
            self.number += 1;
            let mut bytes = &self.line[..];
            if self.number == 1 {
                bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                self.failed = true;
                return Some(Err(format!("line {} is not UTF-8", self.number)));
            };
            if let Some(key) = key_of_line(text) {
                return Some(Ok(key.to_owned()));
            }
        }
        None
    }
}

/// What the keys file names: an object to import, or one that cannot be
/// (`Err((key, reason))`: missing, not a file), a failed object.
pub type Named = Result<Entry, (String, String)>;

/// Reads `file` and sends each key's object of `store` to `out`, in the
/// file's order; stops early when `out` is closed. S3 keys are full keys:
/// one not under `prefix` is skipped (counted outside the range). Local
/// keys are relative to the source directory (`prefix`). `head` asks S3
/// for each object's size and ETag (and whether it exists) first, for
/// `--enqueue` and `--dry-run`; otherwise a missing object fails when read.
pub async fn feed(
    file: KeysFile,
    store: &Store,
    prefix: &str,
    head: bool,
    stats: &Arc<ListStats>,
    out: &mpsc::Sender<Named>,
) -> Result<(), String> {
    let (sender, mut keys) = mpsc::channel(READ_AHEAD);
    let name = file.name.clone();
    let reader = file.reader;
    std::thread::Builder::new()
        .name("keys-from".into())
        .spawn(move || {
            for key in Keys::new(reader) {
                if sender.blocking_send(key).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| format!("reading {name}: {error}"))?;
    while let Some(key) = keys.recv().await {
        let key = key.map_err(|error| format!("reading {name}: {error}"))?;
        let named = match store {
            Store::S3 {
                client,
                bucket,
                expected_owner,
            } => {
                if !key.starts_with(prefix) {
                    tracing::warn!(%key, %prefix, "listed key is not under the source's prefix; skipped");
                    stats.outside_range.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if head {
                    head_object(client, bucket, expected_owner.clone(), key).await
                } else {
                    Ok(Entry {
                        key,
                        size: 0,
                        last_modified: None,
                        etag: None,
                    })
                }
            }
            Store::Local { root } => local(root, &format!("{prefix}{key}")),
        };
        if let Ok(entry) = &named {
            stats.listed.fetch_add(1, Ordering::Relaxed);
            stats.listed_bytes.fetch_add(entry.size, Ordering::Relaxed);
        }
        if out.send(named).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

async fn head_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    expected_owner: Option<String>,
    key: String,
) -> Named {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(&key)
        .set_expected_bucket_owner(expected_owner);
    match head.send().await {
        Ok(head) => Ok(Entry {
            size: head
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            last_modified: head.last_modified().map(|t| t.secs()),
            etag: head.e_tag().map(|etag| etag.trim_matches('"').to_owned()),
            key,
        }),
        Err(error) => {
            let missing = error
                .raw_response()
                .is_some_and(|response| response.status().as_u16() == 404);
            let reason = if missing {
                "no such key".to_owned()
            } else {
                format!(
                    "HeadObject failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&error)
                )
            };
            Err((key, reason))
        }
    }
}

/// The file `key` names below `root`.
fn local(root: &Path, key: &str) -> Named {
    let relative = Path::new(key);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err((
            key.to_owned(),
            "not a plain path below the source directory".to_owned(),
        ));
    }
    match std::fs::metadata(root.join(relative)) {
        Ok(metadata) if metadata.is_file() => Ok(Entry {
            key: key.to_owned(),
            size: metadata.len(),
            last_modified: metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
            etag: None,
        }),
        Ok(_) => Err((key.to_owned(), "not a file".to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err((key.to_owned(), "no such file".to_owned()))
        }
        Err(error) => Err((key.to_owned(), format!("cannot read: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &[u8]) -> Vec<Result<String, String>> {
        Keys::new(text).collect()
    }

    #[test]
    fn blank_lines_and_comments_are_skipped_and_keys_kept_as_spelled() {
        let text = "# failed keys\n\nAWSLogs/a b+c.log\n   \n  leading space.log \r\n#x\nlast%20not-decoded.log";
        assert_eq!(
            keys(text.as_bytes()),
            vec![
                Ok("AWSLogs/a b+c.log".to_owned()),
                Ok("  leading space.log ".to_owned()),
                Ok("last%20not-decoded.log".to_owned()),
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_dropped_and_utf8_is_kept() {
        let text = "\u{feff}clé ü.log\r\nzwei.log\r\n";
        assert_eq!(
            keys(text.as_bytes()),
            vec![Ok("clé ü.log".to_owned()), Ok("zwei.log".to_owned())]
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_ends_the_keys_with_its_number() {
        let text = b"one.log\n\xff\xfe.log\nthree.log\n";
        assert_eq!(
            keys(text),
            vec![
                Ok("one.log".to_owned()),
                Err("line 2 is not UTF-8".to_owned())
            ]
        );
    }

    #[test]
    fn an_empty_file_names_nothing() {
        assert!(keys(b"").is_empty());
        assert!(keys(b"\n\n# only comments\n").is_empty());
    }

    /// Reads lazily: a reader that fails after its first line still gives
    /// that line first (nothing is read whole ahead of the consumer).
    #[test]
    fn the_file_is_read_a_line_at_a_time() {
        struct Endless(u64);
        impl io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let line = format!("key-{}\n", self.0);
                self.0 += 1;
                let n = line.len().min(buf.len());
                buf[..n].copy_from_slice(&line.as_bytes()[..n]);
                Ok(n)
            }
        }
        let mut keys = Keys::new(io::BufReader::with_capacity(16, Endless(0)));
        assert_eq!(keys.next(), Some(Ok("key-0".to_owned())));
        assert_eq!(keys.next(), Some(Ok("key-1".to_owned())));
    }

    #[test]
    fn local_keys_are_files_below_the_root() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x y+z.log"), "hello\n").unwrap();
        let found = local(dir.path(), "a/x y+z.log").unwrap();
        assert_eq!((found.key.as_str(), found.size), ("a/x y+z.log", 6));
        assert_eq!(
            local(dir.path(), "a/missing.log"),
            Err(("a/missing.log".to_owned(), "no such file".to_owned()))
        );
        assert_eq!(
            local(dir.path(), "a").unwrap_err().1,
            "not a file".to_owned()
        );
        assert!(local(dir.path(), "../etc/passwd").is_err());
        assert!(local(dir.path(), "/etc/passwd").is_err());
    }
}
