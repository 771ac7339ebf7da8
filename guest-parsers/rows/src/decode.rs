//! Reading a batch: used by the host, which must not trust the guest.
//!
//! Every offset and length is bounds-checked, spans must fall on character
//! boundaries of the (already UTF-8-validated) input and inline strings are
//! validated, so a broken or hostile parser yields a [`DecodeError`], never
//! a panic or an invalid `&str`.

use std::fmt;

use crate::{Counters, FieldType, NO_TIME, VERSION, Value, tag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub at: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid row encoding at byte {}: {}",
            self.at, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// One entry of a batch.
#[derive(Debug, PartialEq)]
pub enum Entry<'a> {
    Field {
        ty: FieldType,
        name: &'a str,
    },
    /// A record; its values are in the `values` vector given to [`Decoder::next_entry`].
    Row(Row<'a>),
    Error {
        line: u32,
        reason: &'a str,
    },
    End(Counters),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// UTC nanoseconds.
    pub time: Option<i64>,
    pub msg: Value<'a>,
}

/// The elements of a list value, validated when the row was decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ListValues<'a> {
    count: u32,
    bytes: &'a [u8],
    input: &'a str,
}

impl<'a> ListValues<'a> {
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let mut reader = Reader {
            buf: self.bytes,
            pos: 0,
            input: self.input,
        };
        (0..self.count).map(move |_| {
            reader
                .scalar()
                .expect("list elements are validated when the row is decoded")
        })
    }
}

/// Iterates over the entries of one batch.
pub struct Decoder<'a> {
    reader: Reader<'a>,
    done: bool,
}

impl<'a> Decoder<'a> {
    /// `batch` is a parser's output for `input`.
    pub fn new(batch: &'a [u8], input: &'a str) -> Result<Decoder<'a>, DecodeError> {
        let mut reader = Reader {
            buf: batch,
            pos: 0,
            input,
        };
        if reader.u8()? != VERSION {
            return Err(reader.error("unsupported row encoding version"));
        }
        Ok(Decoder {
            reader,
            done: false,
        })
    }

    /// The next entry, or `None` after the `end` entry. For a row, `values`
    /// is cleared and filled with its positional values.
    pub fn next_entry(
        &mut self,
        values: &mut Vec<Value<'a>>,
    ) -> Result<Option<Entry<'a>>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        let r = &mut self.reader;
        let entry = match r.u8()? {
            tag::FIELD => {
                let ty =
                    FieldType::from_u8(r.u8()?).ok_or_else(|| r.error("unknown field type"))?;
                let len = r.u16()? as usize;
                let name = r.utf8(len)?;
                Entry::Field { ty, name }
            }
            tag::ROW => {
                let time = r.i64()?;
                let msg = r.value()?;
                let count = r.u16()?;
                values.clear();
                values.reserve(count.into());
                for _ in 0..count {
                    values.push(r.value()?);
                }
                Entry::Row(Row {
                    time: (time != NO_TIME).then_some(time),
                    msg,
                })
            }
            tag::ERROR => {
                let line = r.u32()?;
                let len = r.u16()? as usize;
                let reason = r.utf8(len)?;
                Entry::Error { line, reason }
            }
            tag::END => {
                let counters = Counters {
                    lines: r.u32()?,
                    skipped: r.u32()?,
                    rows_with_extra: r.u32()?,
                };
                if r.pos != r.buf.len() {
                    return Err(r.error("bytes after the end entry"));
                }
                self.done = true;
                Entry::End(counters)
            }
            _ => return Err(r.error("unknown entry tag")),
        };
        Ok(Some(entry))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    input: &'a str,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            at: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.error("truncated"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    fn utf8(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            at,
            reason: "string is not UTF-8",
        })
    }

    // Inlined so that a value is built in registers and stored once into
    // the row: returned through the stack, its 16-byte reload missed store
    // forwarding and cost more than the rest of decoding.
    #[inline(always)]
    fn value(&mut self) -> Result<Value<'a>, DecodeError> {
        if self.buf.get(self.pos) == Some(&tag::LIST) {
            self.pos += 1;
            let count = self.u32()?;
            let start = self.pos;
            for _ in 0..count {
                self.scalar()?;
            }
            return Ok(Value::List(ListValues {
                count,
                bytes: &self.buf[start..self.pos],
                input: self.input,
            }));
        }
        self.scalar()
    }

    /// Runs for every value of every row: fixed-size values are read with
    /// one bounds check.
    #[inline(always)]
    fn scalar(&mut self) -> Result<Value<'a>, DecodeError> {
        let at = self.pos;
        let truncated = || DecodeError {
            at,
            reason: "truncated",
        };
        let (&tag, after_tag) = self.buf[at..].split_first().ok_or_else(truncated)?;
        let word = || -> Result<[u8; 8], DecodeError> {
            let bytes = after_tag.get(..8).ok_or_else(truncated)?;
            Ok(bytes.try_into().expect("8 bytes"))
        };
        let (value, payload_len) = match tag {
            tag::ABSENT => (Value::Absent, 0),
            tag::SPAN => {
                let word = word()?;
                let offset = u32::from_le_bytes(word[..4].try_into().expect("4 bytes")) as usize;
                let len = u32::from_le_bytes(word[4..].try_into().expect("4 bytes")) as usize;
                let span = offset
                    .checked_add(len)
                    .and_then(|end| self.input.get(offset..end))
                    .ok_or(DecodeError {
                        at,
                        reason: "span outside the input or not on a character boundary",
                    })?;
                (Value::Str(span), 8)
            }
            tag::INLINE => {
                self.pos += 1;
                let len = self.u32()? as usize;
                return Ok(Value::Str(self.utf8(len)?));
            }
            tag::INT => (Value::Int(i64::from_le_bytes(word()?)), 8),
            tag::FLOAT => (Value::Float(f64::from_le_bytes(word()?)), 8),
            tag::TRUE => (Value::Bool(true), 0),
            tag::FALSE => (Value::Bool(false), 0),
            tag::TIMESTAMP => (Value::Timestamp(i64::from_le_bytes(word()?)), 8),
            tag::LIST => return Err(self.error("list nested in a list")),
            _ => {
                return Err(DecodeError {
                    at,
                    reason: "unknown value tag",
                });
            }
        };
        self.pos = at + 1 + payload_len;
        Ok(value)
    }
}
