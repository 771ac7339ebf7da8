//! Any object bytes through decompression sniffing and line batching, with
//! small limits so that lengths around the line limit are common: every
//! line read comes out once, whole and repaired, or as too long; no batch
//! is longer than the batcher's buffer may be.
//!
//! Input: four bytes for the batch size, the line limit, the kept head of
//! a too-long line and the most one read returns, then the object.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use s3logd::decode::{BatchLimits, Chunk, Compression, LineBatcher, decompress};

use crate::Input;

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = BatchLimits {
        batch_bytes: 1 + usize::from(input.byte() % 64),
        max_line_bytes: usize::from(input.byte() % 96),
        failed_line_bytes: usize::from(input.byte() % 24),
    };
    let read_size = 1 + usize::from(input.byte() % 16);
    let object = input.rest();

    let decompressed = decompress(Trickle {
        rest: object,
        read_size,
    });
    let refused = object.starts_with(b"PAR1") || object.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let (compression, reader) = match decompressed {
        Ok(found) => found,
        Err(error) => {
            assert!(refused, "only Parquet and zstd are refused: {error}");
            return;
        }
    };
    assert!(!refused, "Parquet and zstd are refused");
    let gzip = object.starts_with(&[0x1f, 0x8b]);
    assert_eq!(compression == Compression::Gzip, gzip);

    let read = Rc::new(RefCell::new(Vec::new()));
    let mut batcher = LineBatcher::new(
        Recording {
            inner: reader,
            read: Rc::clone(&read),
        },
        limits,
    );
    let mut lines = LinesOut::default();
    let ended = loop {
        match batcher.next_chunk() {
            Ok(Some(chunk)) => lines.push(chunk, &limits),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    let read = read.borrow();
    assert_eq!(batcher.bytes_read(), read.len() as u64);
    let complete = match &ended {
        Ok(()) => &read[..],
        // The line a failed read cut short is dropped.
        Err(_) => &read[..memchr::memrchr(b'\n', &read).map_or(0, |end| end + 1)],
    };
    let repaired = lines.check_against(complete, &limits);
    assert_eq!(batcher.invalid_utf8_lines(), repaired);

    if ended.is_ok() {
        if !gzip {
            assert_eq!(&read[..], object, "plain objects pass unchanged");
        } else if let Ok(expected) = gunzip(object) {
            assert_eq!(*read, expected);
        }
    }
}

fn gunzip(object: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    MultiGzDecoder::new(object).read_to_end(&mut out)?;
    Ok(out)
}

/// Hands out at most `read_size` bytes per read, as a network stream may.
struct Trickle<'a> {
    rest: &'a [u8],
    read_size: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.read_size).min(self.rest.len());
        let (given, rest) = self.rest.split_at(len);
        buf[..len].copy_from_slice(given);
        self.rest = rest;
        Ok(len)
    }
}

/// Keeps a copy of every byte the batcher read.
struct Recording<R> {
    inner: R,
    read: Rc<RefCell<Vec<u8>>>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.inner.read(buf)?;
        self.read.borrow_mut().extend_from_slice(&buf[..len]);
        Ok(len)
    }
}

/// One line as the batcher handed it on.
enum LineOut {
    /// With its `\n`, if it had one.
    Passed(String),
    TooLong {
        len: u64,
        head: String,
    },
}

#[derive(Default)]
struct LinesOut {
    lines: Vec<LineOut>,
}

impl LinesOut {
    fn push(&mut self, chunk: Chunk<'_>, limits: &BatchLimits) {
        match chunk {
            Chunk::Lines(text) => {
                assert!(!text.is_empty(), "a batch holds a line");
                let most = limits.batch_bytes.max(limits.max_line_bytes + 1);
                assert!(
                    text.len() <= most,
                    "a batch of {} bytes, over the {most} its buffer may hold",
                    text.len()
                );
                assert!(
                    !matches!(self.lines.last(), Some(LineOut::Passed(last)) if !last.ends_with('\n')),
                    "only the last line of an object may lack its line end"
                );
                for line in text.split_inclusive('\n') {
                    let text_len = line.strip_suffix('\n').unwrap_or(line).len();
                    assert!(
                        text_len <= limits.max_line_bytes,
                        "a line of {text_len} bytes passed the limit of {}",
                        limits.max_line_bytes
                    );
                    self.lines.push(LineOut::Passed(line.to_owned()));
                }
            }
            Chunk::TooLong { len, head } => {
                assert!(len > limits.max_line_bytes as u64);
                assert!(
                    head.len() <= 3 * limits.failed_line_bytes,
                    "a head of {} bytes, not the first {} repaired",
                    head.len(),
                    limits.failed_line_bytes
                );
                assert!(!head.contains('\n'), "a too-long line's head is one line");
                self.lines.push(LineOut::TooLong {
                    len,
                    head: head.to_owned(),
                });
            }
        }
    }

    /// Checks that the lines handed on are the lines of `read`, in order,
    /// and returns how many of them were repaired.
    fn check_against(&self, read: &[u8], limits: &BatchLimits) -> u64 {
        let expected: Vec<&[u8]> = read.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(
            self.lines.len(),
            expected.len(),
            "every line read is handed on once"
        );
        let mut repaired = 0;
        for (out, raw) in self.lines.iter().zip(expected) {
            let lossy = String::from_utf8_lossy(raw);
            match out {
                LineOut::Passed(text) => {
                    assert_eq!(*text, lossy);
                    repaired += u64::from(std::str::from_utf8(raw).is_err());
                }
                LineOut::TooLong { len, head } => {
                    let raw_len = raw.strip_suffix(b"\n").unwrap_or(raw).len();
                    let lossy_len = lossy.strip_suffix('\n').unwrap_or(&lossy).len();
                    assert!(
                        *len == raw_len as u64 || *len == lossy_len as u64,
                        "a too-long line of {raw_len} bytes ({lossy_len} repaired) said to be {len}"
                    );
                    let kept = raw.len().min(limits.failed_line_bytes);
                    assert!(
                        (0..=kept).any(|end| String::from_utf8_lossy(&raw[..end]) == *head),
                        "the head of a too-long line is its start"
                    );
                }
            }
        }
        repaired
    }
}
