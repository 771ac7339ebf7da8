//! Cutting a byte stream into batches of whole lines.
//!
//! A batch is about `batch_bytes` long (one parser call each: large enough
//! that call overhead vanishes, small enough to stay in cache) and always
//! ends at a line end, so a parser never sees half a line. A line longer
//! than a batch grows the buffer up to `max_line_bytes` (a CloudTrail file
//! is one long line); longer still, it is skipped in streaming fashion and
//! reported with its first few bytes, never held in memory. What the
//! buffers hold beyond a batch (a long line, the UTF-8 repair of a batch)
//! is told to a [`LineMemory`] before they grow, so that the collector
//! counts it in its in-flight budget.

use std::io::{self, Read};

#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub batch_bytes: usize,
    pub max_line_bytes: usize,
    /// How much of a line that gives no record is kept for the dead-letter
    /// output; of a line over `max_line_bytes`, all the batcher keeps.
    pub failed_line_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            batch_bytes: 256 << 10,
            max_line_bytes: 64 << 20,
            failed_line_bytes: 16 << 10,
        }
    }
}

impl BatchLimits {
    /// The most a batcher holds beyond its batch buffer: a buffer with a
    /// line of `max_line_bytes`, and a repaired copy as long.
    pub fn most_held(&self) -> usize {
        let line = self.max_line_bytes.saturating_add(1);
        line.saturating_sub(self.batch_bytes) + line.max(self.batch_bytes)
    }
}

/// Where the bytes a batcher holds beyond its batch buffer are counted:
/// told before its buffers grow, so that growing may wait for room, and
/// after they shrink.
pub trait LineMemory {
    fn hold(&mut self, bytes: usize);
}

/// Counted nowhere (`s3logd parse`, tests).
impl LineMemory for () {
    fn hold(&mut self, _bytes: usize) {}
}

/// The bytes last told to `memory`, so that it hears only of changes.
struct Held<M> {
    memory: M,
    bytes: usize,
}

impl<M: LineMemory> Held<M> {
    fn set(&mut self, bytes: usize) {
        if bytes != self.bytes {
            self.memory.hold(bytes);
            self.bytes = bytes;
        }
    }
}

/// What the batcher yields, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Whole lines, each ending in `\n` except possibly the object's last.
    Lines(&'a str),
    /// One line longer than `max_line_bytes` (as it is, or once its invalid
    /// UTF-8 is replaced), dropped: its length and its
    /// first `failed_line_bytes` bytes (invalid UTF-8 replaced).
    TooLong { len: u64, head: &'a str },
}

pub struct LineBatcher<R, M = ()> {
    reader: R,
    limits: BatchLimits,
    held: Held<M>,
    buf: Vec<u8>,
    /// `buf[consumed..filled]` is read but not yet handed out.
    consumed: usize,
    filled: usize,
    eof: bool,
    /// A failed read, handed out once the whole lines read before it are.
    read_error: Option<io::Error>,
    repaired: String,
    too_long_head: String,
    invalid_utf8_lines: u64,
    bytes_read: u64,
}

impl<R: Read> LineBatcher<R> {
    pub fn new(reader: R, limits: BatchLimits) -> LineBatcher<R> {
        LineBatcher::counted(reader, limits, ())
    }
}

impl<R: Read, M: LineMemory> LineBatcher<R, M> {
    /// A batcher whose buffers beyond a batch are counted in `memory`.
    pub fn counted(reader: R, limits: BatchLimits, memory: M) -> LineBatcher<R, M> {
        // A line over the limit must not fit in a batch, however far below
        // the batch size the limit is set: it has to meet the too-long path.
        let limits = BatchLimits {
            batch_bytes: limits
                .batch_bytes
                .min(limits.max_line_bytes.saturating_add(1)),
            ..limits
        };
        LineBatcher {
            reader,
            limits,
            held: Held { memory, bytes: 0 },
            buf: vec![0; limits.batch_bytes.max(1)],
            consumed: 0,
            filled: 0,
            eof: false,
            read_error: None,
            repaired: String::new(),
            too_long_head: String::new(),
            invalid_utf8_lines: 0,
            bytes_read: 0,
        }
    }

    /// Lines that were not valid UTF-8 and were repaired with U+FFFD.
    pub fn invalid_utf8_lines(&self) -> u64 {
        self.invalid_utf8_lines
    }

    /// Decompressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next chunk, `None` at the end of the stream. When reading fails,
    /// the whole lines read before the failure come first, then the error;
    /// the line it cut short is dropped.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk<'_>>> {
        self.compact();
        loop {
            // A batch ends at the last line end in the buffer, once the
            // buffer is full or the stream is done or broken.
            let pending = &self.buf[..self.filled];
            if self.filled == self.buf.len() || self.eof || self.read_error.is_some() {
                if let Some(last) = memchr::memrchr(b'\n', pending) {
                    self.consumed = last + 1;
                    return Ok(Some(self.lines(last + 1)));
                }
                if let Some(error) = self.read_error.take() {
                    return Err(error);
                }
                if self.eof {
                    if self.filled == 0 {
                        return Ok(None);
                    }
                    self.consumed = self.filled;
                    return Ok(Some(self.lines(self.filled)));
                }
                // A line longer than the buffer.
                if self.buf.len() > self.limits.max_line_bytes {
                    let len = self.skip_long_line()?;
                    return Ok(Some(Chunk::TooLong {
                        len,
                        head: &self.too_long_head,
                    }));
                }
                let grown = (self.buf.len().saturating_mul(2))
                    .min(self.limits.max_line_bytes.saturating_add(1));
                self.held
                    .set(self.beyond_batch(grown) + self.repaired.capacity());
                self.buf.reserve_exact(grown - self.buf.len());
                self.buf.resize(grown, 0);
            }
            if let Err(error) = self.fill() {
                self.read_error = Some(error);
            }
        }
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
        // Give back what a long line or a repair took once it is gone.
        if self.buf.len() > self.limits.batch_bytes && self.filled <= self.limits.batch_bytes {
            self.buf.truncate(self.limits.batch_bytes.max(self.filled));
            self.buf.shrink_to_fit();
        }
        if self.repaired.capacity() > self.limits.batch_bytes {
            self.repaired = String::new();
        }
        self.held
            .set(self.beyond_batch(self.buf.len()) + self.repaired.capacity());
    }

    /// What a line buffer of `len` bytes holds beyond a batch.
    fn beyond_batch(&self, len: usize) -> usize {
        len.saturating_sub(self.limits.batch_bytes)
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the line at the start of the buffer through its `\n`, keeping
    /// its head; returns its length.
    fn skip_long_line(&mut self) -> io::Result<u64> {
        let filled = &self.buf[..self.filled];
        keep_head(
            &mut self.too_long_head,
            filled,
            self.limits.failed_line_bytes,
        );
        let mut skipped = 0u64;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf[..self.filled]) {
                self.consumed = end + 1;
                self.compact();
                return Ok(skipped + end as u64);
            }
            skipped += self.filled as u64;
            self.filled = 0;
            self.fill()?;
            if self.eof && self.filled == 0 {
                return Ok(skipped);
            }
        }
    }

    fn lines(&mut self, len: usize) -> Chunk<'_> {
        let bytes = &self.buf[..len];
        match std::str::from_utf8(bytes) {
            Ok(text) => Chunk::Lines(text),
            Err(_) => {
                // Repair may make a line three times as long: the batch is
                // cut before the line that would take its copy past the
                // buffer's length, and a first line that alone would pass
                // the line limit is dropped as too long.
                let room = self.buf.len();
                let (mut end, mut repaired_len) = (0, 0);
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    let line_len = repaired_len_of(line);
                    let text_len = line_len - usize::from(line.ends_with(b"\n"));
                    if end == 0 && text_len > self.limits.max_line_bytes {
                        self.consumed = line.len();
                        let text = line.strip_suffix(b"\n").unwrap_or(line);
                        keep_head(&mut self.too_long_head, text, self.limits.failed_line_bytes);
                        return Chunk::TooLong {
                            len: text_len as u64,
                            head: &self.too_long_head,
                        };
                    }
                    if end > 0 && repaired_len + line_len > room {
                        break;
                    }
                    end += line.len();
                    repaired_len += line_len;
                }
                self.consumed = end;
                let capacity = self.repaired.capacity().max(repaired_len);
                self.held.set(self.beyond_batch(room) + capacity);
                self.repaired.clear();
                self.repaired.reserve_exact(repaired_len);
                for line in bytes[..end].split_inclusive(|&b| b == b'\n') {
                    if push_repaired(&mut self.repaired, line) {
                        self.invalid_utf8_lines += 1;
                    }
                }
                Chunk::Lines(&self.repaired)
            }
        }
    }
}

/// The length of `bytes` once every invalid sequence is replaced by U+FFFD.
fn repaired_len_of(bytes: &[u8]) -> usize {
    bytes
        .utf8_chunks()
        .map(|chunk| {
            let replaced = !chunk.invalid().is_empty();
            chunk.valid().len() + usize::from(replaced) * char::REPLACEMENT_CHARACTER.len_utf8()
        })
        .sum()
}

/// Appends `bytes` with every invalid sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy` does; whether any was.
fn push_repaired(out: &mut String, bytes: &[u8]) -> bool {
    let mut replaced = false;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
            replaced = true;
        }
    }
    replaced
}

/// Keeps the first `keep` bytes of `line` in `head`, repaired.
fn keep_head(head: &mut String, line: &[u8], keep: usize) {
    head.clear();
    push_repaired(head, &line[..line.len().min(keep)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], batch_bytes: usize, max_line_bytes: usize) -> (Vec<String>, u64) {
        let mut batcher = LineBatcher::new(
            input,
            BatchLimits {
                batch_bytes,
                max_line_bytes,
                ..BatchLimits::default()
            },
        );
        let mut out = Vec::new();
        while let Some(chunk) = batcher.next_chunk().unwrap() {
            out.push(match chunk {
                Chunk::Lines(text) => text.to_string(),
                Chunk::TooLong { len, .. } => format!("<too long: {len}>"),
            });
        }
        (out, batcher.invalid_utf8_lines())
    }

    #[test]
    fn batches_end_at_line_ends_and_keep_every_byte() {
        let input: String = (0..1000).map(|i| format!("line number {i}\n")).collect();
        let (batches, _) = chunks(input.as_bytes(), 100, 1000);
        assert!(batches.len() > 100);
        assert!(batches.iter().all(|b| b.ends_with('\n') && b.len() <= 100));
        assert_eq!(batches.concat(), input);
    }

    #[test]
    fn the_last_line_may_lack_its_newline() {
        let (batches, _) = chunks(b"a\nb\nlast", 4, 100);
        assert_eq!(batches.concat(), "a\nb\nlast");
        assert_eq!(batches.last().unwrap(), "last");
    }

    #[test]
    fn lines_longer_than_a_batch_grow_the_buffer_up_to_the_limit() {
        let long = "x".repeat(500);
        let input = format!("short\n{long}\nafter\n");
        let (batches, _) = chunks(input.as_bytes(), 64, 1000);
        assert_eq!(batches.concat(), input);
        assert!(batches.iter().any(|b| b.contains(&long)));
    }

    #[test]
    fn lines_past_the_limit_are_skipped_and_reported() {
        let huge = "y".repeat(10_000);
        let input = format!("before\n{huge}\nafter\n{huge}");
        let (batches, _) = chunks(input.as_bytes(), 64, 1000);
        assert_eq!(
            batches,
            [
                "before\n",
                "<too long: 10000>",
                "after\n",
                "<too long: 10000>"
            ]
        );
    }

    #[test]
    fn of_a_line_past_the_limit_only_its_head_is_kept() {
        // The head ends inside the `é`, whose first byte is replaced.
        let input = format!("{}\u{e9}{}\nafter\n", "a".repeat(9), "b".repeat(5000));
        let limits = BatchLimits {
            batch_bytes: 64,
            max_line_bytes: 1000,
            failed_line_bytes: 10,
        };
        let mut batcher = LineBatcher::new(input.as_bytes(), limits);
        assert_eq!(
            batcher.next_chunk().unwrap(),
            Some(Chunk::TooLong {
                len: 5011,
                head: "aaaaaaaaa\u{fffd}"
            })
        );
        assert_eq!(batcher.next_chunk().unwrap(), Some(Chunk::Lines("after\n")));
    }

    #[test]
    fn a_line_too_long_only_once_repaired_keeps_a_head_without_its_line_end() {
        // 8 invalid bytes are 24 once repaired: over the limit of 20 though
        // the raw line fits, and shorter than the head kept.
        let input = b"\xff\xff\xff\xff\xff\xff\xff\xff\nafter\n";
        let limits = BatchLimits {
            batch_bytes: 64,
            max_line_bytes: 20,
            failed_line_bytes: 16,
        };
        let mut batcher = LineBatcher::new(&input[..], limits);
        assert_eq!(
            batcher.next_chunk().unwrap(),
            Some(Chunk::TooLong {
                len: 24,
                head: &"\u{fffd}".repeat(8)
            })
        );
        assert_eq!(batcher.next_chunk().unwrap(), Some(Chunk::Lines("after\n")));
    }

    #[test]
    fn a_line_over_a_limit_below_the_batch_size_is_too_long_too() {
        let input = format!("short\n{}\n{}\nafter\n", "x".repeat(150), "y".repeat(100));
        let limits = BatchLimits {
            batch_bytes: 1024,
            max_line_bytes: 100,
            failed_line_bytes: 10,
        };
        let mut batcher = LineBatcher::new(input.as_bytes(), limits);
        let mut chunks = Vec::new();
        while let Some(chunk) = batcher.next_chunk().unwrap() {
            chunks.push(match chunk {
                Chunk::Lines(text) => text.to_owned(),
                Chunk::TooLong { len, head } => format!("too long: {len} {head}"),
            });
        }
        // A line of exactly the limit still passes.
        let lines: String = chunks
            .iter()
            .filter(|c| !c.starts_with("too long"))
            .cloned()
            .collect();
        assert_eq!(lines, format!("short\n{}\nafter\n", "y".repeat(100)));
        assert_eq!(
            chunks
                .iter()
                .filter(|c| c.starts_with("too long"))
                .collect::<Vec<_>>(),
            ["too long: 150 xxxxxxxxxx"]
        );
    }

    /// Hands out its bytes, then fails, as a gzip stream cut short does.
    struct CutShort<'a>(&'a [u8]);

    impl Read for CutShort<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut short"));
            }
            self.0.read(buf)
        }
    }

    /// A batcher with room for all of `bytes`, so that only the error ends a batch.
    fn cut_short_after(bytes: &[u8]) -> LineBatcher<CutShort<'_>> {
        let limits = BatchLimits {
            batch_bytes: 1024,
            max_line_bytes: 4096,
            ..BatchLimits::default()
        };
        LineBatcher::new(CutShort(bytes), limits)
    }

    #[test]
    fn lines_read_before_a_read_error_come_first_and_the_cut_line_is_dropped() {
        let mut batcher = cut_short_after(b"one\ntwo\nhalf a li");
        assert_eq!(
            batcher.next_chunk().unwrap(),
            Some(Chunk::Lines("one\ntwo\n"))
        );
        let error = batcher.next_chunk().unwrap_err();
        assert_eq!(error.to_string(), "cut short");
    }

    #[test]
    fn a_read_error_before_any_line_end_is_returned_at_once() {
        let mut batcher = cut_short_after(b"half a li");
        assert_eq!(batcher.next_chunk().unwrap_err().to_string(), "cut short");
    }

    #[test]
    fn a_line_limit_at_the_top_of_the_range_does_not_overflow() {
        let long = format!("{}\n", "z".repeat(300));
        let (batches, _) = chunks(long.as_bytes(), 64, usize::MAX);
        assert_eq!(batches, [long]);
    }

    #[test]
    fn a_repaired_batch_stays_within_its_buffer_and_a_repaired_line_within_the_limit() {
        // Every byte invalid: repair triples each line.
        let invalid = [[0xff; 20].as_slice(), b"\n"].concat();
        let mut input = invalid.repeat(6);
        input.extend_from_slice(&[0xfe; 50]);
        input.push(b'\n');
        let (batches, invalid_lines) = chunks(&input, 64, 100);
        let repaired = format!("{}\n", "\u{fffd}".repeat(20));
        let mut expected = vec![repaired; 6];
        expected.push("<too long: 150>".to_owned());
        assert_eq!(batches, expected);
        assert_eq!(invalid_lines, 6);
    }

    /// Remembers every size it is told.
    #[derive(Default)]
    struct Told(Vec<usize>);

    impl LineMemory for &mut Told {
        fn hold(&mut self, bytes: usize) {
            self.0.push(bytes);
        }
    }

    #[test]
    fn what_the_buffers_hold_beyond_a_batch_is_told_before_they_grow_and_after_they_shrink() {
        let limits = BatchLimits {
            batch_bytes: 64,
            max_line_bytes: 1000,
            ..BatchLimits::default()
        };
        let long = format!("short\n{}\nafter\n", "x".repeat(500));
        let mut told = Told::default();
        let mut batcher = LineBatcher::counted(long.as_bytes(), limits, &mut told);
        while batcher.next_chunk().unwrap().is_some() {}
        drop(batcher);
        assert_eq!(told.0, [64, 192, 448, 0]);

        // The repaired copy of 200 invalid bytes takes 601.
        let invalid = [[0xff; 200].as_slice(), b"\n"].concat();
        let mut told = Told::default();
        let mut batcher = LineBatcher::counted(invalid.as_slice(), limits, &mut told);
        while batcher.next_chunk().unwrap().is_some() {}
        drop(batcher);
        assert_eq!(told.0, [64, 192, 192 + 601, 0]);
        assert!(192 + 601 <= limits.most_held());
    }

    #[test]
    fn invalid_utf8_is_repaired_line_by_line_and_counted() {
        let input = b"good\nbad \xff byte\ngood again\n";
        let (batches, invalid) = chunks(input, 1024, 4096);
        assert_eq!(batches.concat(), "good\nbad \u{fffd} byte\ngood again\n");
        assert_eq!(invalid, 1);
    }
}
