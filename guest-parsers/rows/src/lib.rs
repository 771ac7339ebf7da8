//! The row encoding: how a parser component hands its rows to the host.
//!
//! A `session.parse(lines)` call returns one byte buffer instead of a WIT
//! list of records, because lifting nested WIT values costs more than the
//! parse itself (measured before the contract was settled; BENCHMARKS.md). Strings that are
//! substrings of the input travel as spans, so the host reads them in place.
//!
//! The encoding is part of the contract `s3logd:parser@0.1.0`; a breaking
//! change here is a new contract version. All integers are little-endian.
//!
//! ```text
//! batch   := VERSION:u8 entry* end
//! entry   := 0x01 field-type:u8 name-len:u16 name          declare a field
//!          | 0x02 time:i64 msg:value count:u16 value*count   one record
//!          | 0x03 line:u32 reason-len:u16 reason              a line that failed
//! end     := 0x00 lines:u32 skipped:u32 rows-with-extra:u32
//! value   := 0x00                        absent
//!          | 0x01 offset:u32 len:u32     span of the input
//!          | 0x02 len:u32 bytes          string built by the parser
//!          | 0x03 i64 | 0x04 f64 | 0x05 (true) | 0x06 (false)
//!          | 0x07 i64                    timestamp, UTC nanoseconds
//!          | 0x08 count:u32 value*count  list of scalars
//! ```
//!
//! A row's values are positional: value `i` belongs to field `i` of the
//! session's field table (the parser's static fields, then every field it
//! declared, in order). Fields past `count` are absent. `time` is
//! [`NO_TIME`] when the record has none. `line` in an error entry is the
//! 0-based index of the line within the batch.

pub mod calendar;
mod decode;
mod encode;

pub use decode::{DecodeError, Decoder, Entry, ListValues, Row};
pub use encode::{Encoder, Slot};

/// Version byte at the start of every batch.
pub const VERSION: u8 = 1;

/// `time` of a row that carries no record time.
pub const NO_TIME: i64 = i64::MIN;

/// Field types, numbered as in the WIT `field-type` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FieldType {
    String = 0,
    Integer = 1,
    Float = 2,
    Boolean = 3,
    Timestamp = 4,
    StringList = 5,
    IntegerList = 6,
    /// Values of any type, as self-describing sources (JSON) give them.
    Any = 7,
}

impl FieldType {
    pub const ALL: [FieldType; 8] = [
        FieldType::String,
        FieldType::Integer,
        FieldType::Float,
        FieldType::Boolean,
        FieldType::Timestamp,
        FieldType::StringList,
        FieldType::IntegerList,
        FieldType::Any,
    ];

    pub fn from_u8(b: u8) -> Option<FieldType> {
        Self::ALL.get(usize::from(b)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::StringList => "string-list",
            FieldType::IntegerList => "integer-list",
            FieldType::Any => "any",
        }
    }
}

/// Batch counters from the `end` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Lines the parser was given.
    pub lines: u32,
    /// Lines that were neither records nor errors (headers, comments,
    /// blank lines, skipped control records).
    pub skipped: u32,
    /// Rows that carried fields beyond the documented ones.
    pub rows_with_extra: u32,
}

/// A decoded value, borrowing from the input or the encoded buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Absent,
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(i64),
    List(ListValues<'a>),
}

mod tag {
    pub const END: u8 = 0x00;
    pub const FIELD: u8 = 0x01;
    pub const ROW: u8 = 0x02;
    pub const ERROR: u8 = 0x03;

    pub const ABSENT: u8 = 0x00;
    pub const SPAN: u8 = 0x01;
    pub const INLINE: u8 = 0x02;
    pub const INT: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const TRUE: u8 = 0x05;
    pub const FALSE: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LIST: u8 = 0x08;
}

#[cfg(test)]
mod tests;
