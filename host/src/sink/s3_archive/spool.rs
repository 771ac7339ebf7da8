//! The spool directory: one file written at a time (`<name>.json.gz.part`),
//! each batch appended as a gzip member of its own and fsync'd before it
//! counts as stored; a file is finished (renamed to `<name>.json.gz`) when
//! it is old or large enough, and finished files wait there until their
//! upload succeeded.
//!
//! Crash recovery: at start, a `.part` left by a crash is cut back to its
//! last complete gzip member (a batch whose write the crash tore was never
//! acknowledged, so its records come again) and finished like any other.
//! A lock file keeps two processes (or two sinks) off one directory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::mpsc;

use super::ArchiveStats;
use super::naming;

/// The lock file in the spool directory.
const LOCK: &str = ".lock";

pub struct Spool {
    dir: PathBuf,
    /// Finish a file once it holds this many bytes before compression [0: never].
    rotate_bytes: u64,
    rotate_after: Duration,
    stats: Arc<ArchiveStats>,
    current: Mutex<Option<Current>>,
    /// Wakes the uploader when a file is finished; dropped with the spool,
    /// which tells the uploader that no more will come.
    finished: mpsc::Sender<()>,
    /// Held (locked) while the spool is open.
    _lock: File,
}

/// The file being written.
struct Current {
    file: File,
    /// Its finished name; it is written under [`naming::part_of`] it.
    name: String,
    /// Bytes in the file (complete members only).
    written: u64,
    /// Bytes of JSON lines in it, before compression.
    uncompressed: u64,
    created: Instant,
}

/// One batch as a gzip member: its bytes and the bytes they hold.
pub struct Member {
    pub gzip: Vec<u8>,
    pub uncompressed: u64,
}

/// Compresses `parts` (one batch's records, back to back) into one member.
pub fn compress(parts: &[Bytes]) -> io::Result<Member> {
    let uncompressed: u64 = parts.iter().map(|part| part.len() as u64).sum();
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(uncompressed as usize / 4 + 64),
        Compression::default(),
    );
    for part in parts {
        encoder.write_all(part)?;
    }
    Ok(Member {
        gzip: encoder.finish()?,
        uncompressed,
    })
}

impl Spool {
    /// Opens (creating) `dir`, locks it, and finishes every `.part` a
    /// crash left there. `finished` is woken whenever a file is finished.
    pub fn open(
        dir: &Path,
        rotate_bytes: u64,
        rotate_after: Duration,
        stats: Arc<ArchiveStats>,
        finished: mpsc::Sender<()>,
    ) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another sink or process", dir.display()),
            )
        })?;
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(finished) = naming::finished_of_part(name) {
                parts.push((name.to_owned(), finished));
            }
        }
        for (part, finished) in parts {
            recover_part(&dir.join(&part), &dir.join(&finished))?;
            tracing::info!(spool = %dir.display(), file = finished, "finished a file left by an earlier run");
        }
        sync_dir(dir)?;
        let (files, bytes) = finished_files(dir)?
            .iter()
            .fold((0, 0), |(files, bytes), (_, len)| (files + 1, bytes + len));
        stats.spool_files.store(files, Relaxed);
        stats.spool_bytes.store(bytes, Relaxed);
        Ok(Spool {
            dir: dir.to_owned(),
            rotate_bytes,
            rotate_after,
            stats,
            current: Mutex::new(None),
            finished,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `member` to the current file (opening one when there is
    /// none or it is due) and fsyncs it: once this returns `Ok`, the
    /// records are on disk. A failed write leaves the file as it was.
    pub fn append(&self, member: &Member) -> io::Result<()> {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|open| self.is_old(open)) {
            self.finish(&mut current)?;
        }
        let open = match &mut *current {
            Some(open) => open,
            None => current.insert(self.create()?),
        };
        let result = open
            .file
            .write_all(&member.gzip)
            .and_then(|()| open.file.sync_data());
        if let Err(error) = result {
            // Cut the torn member off; failing that, the file's end is
            // unknown: finish it as recovery would.
            if open
                .file
                .set_len(open.written)
                .and_then(|()| open.file.sync_data())
                .is_err()
            {
                let (name, written) = (open.name.clone(), open.written);
                *current = None;
                match recover_part(&self.part_path(&name), &self.dir.join(&name)) {
                    // Nothing was complete: the file is gone.
                    Ok(()) if written == 0 => {
                        self.stats.spool_files.fetch_sub(1, Relaxed);
                    }
                    Ok(()) => {
                        let _ = self.finished.try_send(());
                    }
                    // Left as a `.part`: the next start finishes it.
                    Err(_) => {}
                }
            }
            return Err(error);
        }
        open.written += member.gzip.len() as u64;
        open.uncompressed += member.uncompressed;
        self.stats
            .spool_bytes
            .fetch_add(member.gzip.len() as u64, Relaxed);
        if self.rotate_bytes > 0 && open.uncompressed >= self.rotate_bytes {
            self.finish(&mut current)?;
        }
        Ok(())
    }

    /// Finishes the current file if it is old enough.
    pub fn rotate_if_due(&self) -> io::Result<()> {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|open| self.is_old(open)) {
            self.finish(&mut current)?;
        }
        Ok(())
    }

    /// Finishes the current file, whatever its age.
    pub fn rotate(&self) -> io::Result<()> {
        let mut current = self.lock();
        self.finish(&mut current)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn part_path(&self, name: &str) -> PathBuf {
        self.dir.join(naming::part_of(name))
    }

    fn is_old(&self, open: &Current) -> bool {
        open.created.elapsed() >= self.rotate_after
    }

    fn create(&self) -> io::Result<Current> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let name = naming::file_name(now, fastrand::u64(..));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(self.part_path(&name))?;
        // The file's entry must survive a crash as much as its data.
        sync_dir(&self.dir)?;
        self.stats.spool_files.fetch_add(1, Relaxed);
        Ok(Current {
            file,
            name,
            written: 0,
            uncompressed: 0,
            created: Instant::now(),
        })
    }

    /// Renames the current file to its finished name and wakes the
    /// uploader. Its data is already on disk (every append fsyncs).
    fn finish(&self, current: &mut Option<Current>) -> io::Result<()> {
        let Some(open) = current.take() else {
            return Ok(());
        };
        let name = open.name;
        drop(open.file);
        std::fs::rename(self.part_path(&name), self.dir.join(&name))?;
        sync_dir(&self.dir)?;
        let _ = self.finished.try_send(());
        Ok(())
    }
}

impl Drop for Spool {
    /// The sink stopped: the file being written is finished, so that the
    /// uploader's last round (or the next start) takes it.
    fn drop(&mut self) {
        if let Err(error) = self.rotate() {
            tracing::warn!(spool = %self.dir.display(), %error, "could not finish the spool's current file; the next start will");
        }
    }
}

/// Finished files of the spool, by name (oldest first), with their sizes.
pub fn finished_files(dir: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if naming::is_finished(&name) {
            files.push((name, entry.metadata()?.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// Cuts `part` back to its complete gzip members and renames it to
/// `finished`; removes it when none is complete.
pub fn recover_part(part: &Path, finished: &Path) -> io::Result<()> {
    let len = std::fs::metadata(part)?.len();
    let complete = complete_members(part)?;
    if complete == 0 {
        return std::fs::remove_file(part);
    }
    if complete < len {
        let file = OpenOptions::new().write(true).open(part)?;
        file.set_len(complete)?;
        file.sync_all()?;
        tracing::warn!(file = %part.display(), cut = len - complete, "cut a torn batch off a file left by a crash");
    }
    std::fs::rename(part, finished)
}

/// The length of the complete gzip members at the start of `path`.
fn complete_members(path: &Path) -> io::Result<u64> {
    let mut reader = Counting {
        inner: BufReader::new(File::open(path)?),
        consumed: 0,
    };
    let mut complete = 0;
    loop {
        if reader.fill_buf()?.is_empty() {
            return Ok(complete);
        }
        let decoded = {
            let mut member = flate2::bufread::GzDecoder::new(&mut reader);
            io::copy(&mut member, &mut io::sink())
        };
        match decoded {
            Ok(_) => complete = reader.consumed,
            Err(_) => return Ok(complete),
        }
    }
}

/// A reader that counts what was consumed of it.
struct Counting<R> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.consumed += amount as u64;
        self.inner.consume(amount);
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
