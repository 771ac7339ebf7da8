//! Cutting a byte stream into batches of whole lines.
//!
//! A batch is about `batch_bytes` long (one parser call each: large enough
//! that call overhead vanishes, small enough to stay in cache) and always
//! ends at a line end, so a parser never sees half a line. A line longer
//! than a batch grows the buffer up to `max_line_bytes` (a CloudTrail file
//! is one long line); longer still, it is skipped in streaming fashion and
//! reported, never held in memory.

use std::io::{self, Read};

#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub batch_bytes: usize,
    pub max_line_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            batch_bytes: 256 << 10,
            max_line_bytes: 64 << 20,
        }
    }
}

/// What the batcher yields, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Whole lines, each ending in `\n` except possibly the object's last.
    Lines(&'a str),
    /// One line longer than `max_line_bytes`, dropped; its length.
    TooLong(u64),
}

pub struct LineBatcher<R> {
    reader: R,
    limits: BatchLimits,
    buf: Vec<u8>,
    /// `buf[consumed..filled]` is read but not yet handed out.
    consumed: usize,
    filled: usize,
    eof: bool,
    /// A failed read, handed out once the whole lines read before it are.
    read_error: Option<io::Error>,
    repaired: String,
    invalid_utf8_lines: u64,
    bytes_read: u64,
}

impl<R: Read> LineBatcher<R> {
    pub fn new(reader: R, limits: BatchLimits) -> LineBatcher<R> {
        LineBatcher {
            reader,
            limits,
            buf: vec![0; limits.batch_bytes.max(1)],
            consumed: 0,
            filled: 0,
            eof: false,
            read_error: None,
            repaired: String::new(),
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
                    return self.skip_long_line().map(|len| Some(Chunk::TooLong(len)));
                }
                let grown = (self.buf.len() * 2).min(self.limits.max_line_bytes + 1);
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
        // Give back what a long line took once it is gone.
        if self.buf.len() > self.limits.batch_bytes && self.filled <= self.limits.batch_bytes {
            self.buf.truncate(self.limits.batch_bytes.max(self.filled));
            self.buf.shrink_to_fit();
        }
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

    /// Drops the line at the start of the buffer through its `\n`; returns its length.
    fn skip_long_line(&mut self) -> io::Result<u64> {
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
                self.repaired.clear();
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    match std::str::from_utf8(line) {
                        Ok(text) => self.repaired.push_str(text),
                        Err(_) => {
                            self.invalid_utf8_lines += 1;
                            self.repaired.push_str(&String::from_utf8_lossy(line));
                        }
                    }
                }
                Chunk::Lines(&self.repaired)
            }
        }
    }
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
            },
        );
        let mut out = Vec::new();
        while let Some(chunk) = batcher.next_chunk().unwrap() {
            out.push(match chunk {
                Chunk::Lines(text) => text.to_string(),
                Chunk::TooLong(len) => format!("<too long: {len}>"),
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
    fn invalid_utf8_is_repaired_line_by_line_and_counted() {
        let input = b"good\nbad \xff byte\ngood again\n";
        let (batches, invalid) = chunks(input, 1024, 4096);
        assert_eq!(batches.concat(), "good\nbad \u{fffd} byte\ngood again\n");
        assert_eq!(invalid, 1);
    }
}
