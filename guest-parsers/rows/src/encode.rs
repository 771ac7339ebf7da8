//! Writing a batch: used inside parser components by the SDK.

use crate::{Counters, FieldType, NO_TIME, VERSION, tag};

/// One field's value in the row being built.
///
/// Strings and lists are resolved when set (to a span of the input, or to
/// bytes in the encoder's scratch area), so a row can be filled in any order
/// and written out positionally without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Slot {
    #[default]
    Absent,
    Span {
        offset: u32,
        len: u32,
    },
    /// An already encoded value in the scratch area.
    Scratch {
        start: u32,
        len: u32,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(i64),
}

/// Builds one batch's encoded output.
pub struct Encoder {
    out: Vec<u8>,
    scratch: Vec<u8>,
    input_addr: usize,
    input_len: usize,
}

impl Encoder {
    /// `input` is the batch being parsed: strings borrowed from it are sent as spans.
    pub fn new(input: &str) -> Encoder {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        out.push(VERSION);
        Encoder {
            out,
            scratch: Vec::new(),
            input_addr: input.as_ptr() as usize,
            input_len: input.len(),
        }
    }

    pub fn declare_field(&mut self, ty: FieldType, name: &str) {
        self.out.push(tag::FIELD);
        self.out.push(ty as u8);
        let name = &name[..name.floor_char_boundary(u16::MAX as usize)];
        self.out
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.out.extend_from_slice(name.as_bytes());
    }

    /// A string value: a span when `s` lies inside the input, else a copy.
    #[inline(always)]
    pub fn str(&mut self, s: &str) -> Slot {
        let offset = (s.as_ptr() as usize).wrapping_sub(self.input_addr);
        if offset <= self.input_len && s.len() <= self.input_len - offset {
            Slot::Span {
                offset: offset as u32,
                len: s.len() as u32,
            }
        } else {
            let start = self.scratch.len();
            push_inline(&mut self.scratch, s);
            self.scratch_slot(start)
        }
    }

    /// Starts a list value; finish it with [`ListWriter::finish`].
    pub fn list(&mut self) -> ListWriter<'_> {
        let start = self.scratch.len();
        self.scratch.push(tag::LIST);
        self.scratch.extend_from_slice(&0u32.to_le_bytes());
        ListWriter {
            encoder: self,
            start,
            count: 0,
        }
    }

    /// Writes a row. `time` is UTC nanoseconds or [`NO_TIME`]; `values` are
    /// positional, trailing absent ones may be left off.
    pub fn row(&mut self, time: Option<i64>, msg: Slot, values: &[Slot]) {
        let count = values
            .iter()
            .rposition(|v| *v != Slot::Absent)
            .map_or(0, |i| i + 1);
        self.out.reserve(12 + 9 * (count + 1) + self.scratch.len());
        self.out.push(tag::ROW);
        self.out
            .extend_from_slice(&time.unwrap_or(NO_TIME).to_le_bytes());
        self.write_slot(msg);
        self.out.extend_from_slice(&(count as u16).to_le_bytes());
        for slot in &values[..count] {
            self.write_slot(*slot);
        }
        self.scratch.clear();
    }

    /// Records that line `line` (0-based within the batch) failed.
    pub fn error(&mut self, line: u32, reason: &str) {
        self.out.push(tag::ERROR);
        self.out.extend_from_slice(&line.to_le_bytes());
        let reason = &reason[..reason.floor_char_boundary(u16::MAX as usize)];
        self.out
            .extend_from_slice(&(reason.len() as u16).to_le_bytes());
        self.out.extend_from_slice(reason.as_bytes());
        self.scratch.clear();
    }

    pub fn finish(mut self, counters: Counters) -> Vec<u8> {
        self.out.push(tag::END);
        for n in [counters.lines, counters.skipped, counters.rows_with_extra] {
            self.out.extend_from_slice(&n.to_le_bytes());
        }
        self.out
    }

    fn scratch_slot(&self, start: usize) -> Slot {
        Slot::Scratch {
            start: start as u32,
            len: (self.scratch.len() - start) as u32,
        }
    }

    /// Runs for every value of every row. Each value goes out as one copy
    /// of a constant 9 bytes, trimmed afterwards when it is shorter: in
    /// wasm a copy of variable length is a call, a constant one is two
    /// stores.
    #[inline(always)]
    fn write_slot(&mut self, slot: Slot) {
        let mut bytes = [0u8; 9];
        let (tag, payload): (u8, Option<[u8; 8]>) = match slot {
            Slot::Absent => (tag::ABSENT, None),
            Slot::Span { offset, len } => {
                let span = u64::from(offset) | (u64::from(len) << 32);
                (tag::SPAN, Some(span.to_le_bytes()))
            }
            Slot::Scratch { start, len } => {
                let start = start as usize;
                self.out
                    .extend_from_slice(&self.scratch[start..start + len as usize]);
                return;
            }
            Slot::Int(v) => (tag::INT, Some(v.to_le_bytes())),
            Slot::Float(v) => (tag::FLOAT, Some(v.to_le_bytes())),
            Slot::Bool(v) => (if v { tag::TRUE } else { tag::FALSE }, None),
            Slot::Timestamp(v) => (tag::TIMESTAMP, Some(v.to_le_bytes())),
        };
        bytes[0] = tag;
        let unused = match payload {
            Some(payload) => {
                bytes[1..].copy_from_slice(&payload);
                0
            }
            None => 8,
        };
        self.out.extend_from_slice(&bytes);
        self.out.truncate(self.out.len() - unused);
    }
}

/// Appends the elements of one list value.
pub struct ListWriter<'e> {
    encoder: &'e mut Encoder,
    start: usize,
    count: u32,
}

impl ListWriter<'_> {
    pub fn str(&mut self, s: &str) {
        // An inline copy is already appended in place by `Encoder::str`.
        if let Slot::Span { offset, len } = self.encoder.str(s) {
            let scratch = &mut self.encoder.scratch;
            scratch.push(tag::SPAN);
            scratch.extend_from_slice(&offset.to_le_bytes());
            scratch.extend_from_slice(&len.to_le_bytes());
        }
        self.count += 1;
    }

    pub fn int(&mut self, v: i64) {
        self.encoder.scratch.push(tag::INT);
        self.encoder.scratch.extend_from_slice(&v.to_le_bytes());
        self.count += 1;
    }

    pub fn finish(self) -> Slot {
        let at = self.start + 1;
        self.encoder.scratch[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.encoder.scratch_slot(self.start)
    }
}

fn push_inline(buf: &mut Vec<u8>, s: &str) {
    buf.push(tag::INLINE);
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}
