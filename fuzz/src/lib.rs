//! Fuzz targets of s3logd: one function per kind of input that comes from
//! outside the collector, each taking any bytes and asserting what must
//! hold for them (never a panic; an error is fine). `fuzz_targets/` runs
//! them under libFuzzer and `tests/corpora.rs` replays the corpora and
//! regressions through them in `cargo test`.

pub mod config;
pub mod notification;
pub mod object_lines;
pub mod parsers;
pub mod row_decoder;

/// What a target does with one input: returns, or panics on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz_targets/` file, `corpus/` and
/// `regressions/` directories.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config::run),
    ("notification", notification::run),
    ("object_lines", object_lines::run),
    ("parsers", parsers::run),
    ("row_decoder", row_decoder::run),
];

/// Reads a fuzz input front to back: control bytes first, then the payload.
/// Past the end every read gives zeros, so that any input is a valid one.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.rest.split_first() else {
            return 0;
        };
        self.rest = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// The next `len` bytes, or all that is left when fewer.
    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn rest(self) -> &'a [u8] {
        self.rest
    }
}
