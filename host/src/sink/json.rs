//! Records as JSON lines: the body VictoriaLogs' `/insert/jsonline` takes,
//! what the file sink writes and `s3logd parse` prints, byte for byte, and
//! the documents of the other JSON stores (their own names for the time and
//! the message).
//!
//! This runs once per record on the hot path (it cost more than parsing),
//! so it writes straight into a reused buffer, with field keys escaped once
//! per session, and scans each line for bytes to escape only once: most
//! values are slices of the line (`_msg`), and a slice that holds none of
//! the line's escapable bytes is copied as it is.

use std::borrow::Cow;

use s3logd_rows::Value;
use s3logd_rows::calendar::civil_from_days;

use super::delivery::Encoded;
use super::{Encoding, ObjectContext, RecordEncoder};
use crate::parse::{Field, Record};

/// The JSON-lines encoding of VictoriaLogs and the file sink: a record a
/// line, `_time` and `_msg` named as VictoriaLogs names them.
pub struct JsonLines;

impl Encoding for JsonLines {
    fn encoder(&self, object: &ObjectContext<'_>) -> Box<dyn RecordEncoder> {
        Box::new(JsonLinesEncoder(JsonLineWriter::new(object.fields)))
    }
}

struct JsonLinesEncoder(JsonLineWriter);

impl RecordEncoder for JsonLinesEncoder {
    fn encode(&mut self, record: &Record<'_>, _index: u64, out: &mut Encoded) {
        self.0.write(record, out.bytes());
        out.end_record(record.line, record.time, "");
    }
}

/// Keys up to this long (quotes and colon included) are copied as one
/// fixed-size block; a copy of variable length is a call to `memcpy`.
const SHORT_KEY: usize = 32;

/// Likewise for string values that are slices of the message.
const SHORT_VALUE: usize = 32;

/// The names VictoriaLogs gives a record's time and message, which s3logd
/// uses wherever a store has no names of its own.
pub const TIME_KEY: &str = "_time";
pub const MSG_KEY: &str = "_msg";

/// What a parser's field is written as when its name is one of the
/// record's own keys.
const RENAMED_FIELD_PREFIX: &str = "log.";

/// The keys a record has of its own: its time and message, under the names
/// the store gives them, and the fields of its object (bucket, key and
/// those taken from the key, which VictoriaLogs' stream fields and Loki's
/// labels are made of). Fields from the log's content are written beside
/// them, so a parser's field of one of these names (a JSON log's own
/// `_msg`, a VPC flow log's `region` column) is renamed `log.<name>`:
/// whichever of two equal keys a store would keep, log content can then
/// neither duplicate nor replace the record's time, message or stream.
pub struct OwnKeys(Vec<String>);

impl OwnKeys {
    pub fn new(time: &str, msg: &str, object_fields: &[(String, String)]) -> OwnKeys {
        let names = object_fields.iter().map(|(name, _)| name.clone());
        OwnKeys(
            [time.to_owned(), msg.to_owned()]
                .into_iter()
                .chain(names)
                .collect(),
        )
    }

    /// The key a parser's field called `name` is written under.
    pub fn field_key<'a>(&self, name: &'a str) -> Cow<'a, str> {
        let mut key = Cow::Borrowed(name);
        // Again while the renamed key is taken too (a store's message
        // field configured as `log.message`, say).
        while self.0.iter().any(|own| *own == key) {
            key = Cow::Owned(format!("{RENAMED_FIELD_PREFIX}{key}"));
        }
        key
    }
}

/// Writes records of one object as JSON lines; a field named like one of
/// the record's own keys is written as [`OwnKeys`] says.
pub struct JsonLineWriter {
    /// `"_time":` and `"_msg":`, or the names a store gives them.
    time_key: Key,
    msg_key: Key,
    own_keys: OwnKeys,
    /// `"name":` for each field of the session, escaped once.
    keys: Vec<Key>,
    /// `,"name":"value"` for every field added to each record of the object.
    object_fields: Vec<u8>,
    /// Offsets in the current `_msg` of the bytes that need escaping.
    msg_escapes: Vec<usize>,
}

struct Key {
    padded: [u8; SHORT_KEY],
    len: usize,
    long: Vec<u8>,
}

impl Key {
    fn new(name: &str) -> Key {
        let mut long = Vec::with_capacity(name.len() + 3);
        write_str(&mut long, name);
        long.push(b':');
        let mut padded = [0; SHORT_KEY];
        let len = long.len();
        if len <= SHORT_KEY {
            padded[..len].copy_from_slice(&long);
            long = Vec::new();
        }
        Key { padded, len, long }
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        if self.long.is_empty() {
            push_block_prefix(out, &self.padded, self.len);
        } else {
            out.extend_from_slice(&self.long);
        }
    }
}

impl JsonLineWriter {
    /// `object_fields` are added to every record (bucket, key, and fields
    /// taken from the key).
    pub fn new(object_fields: &[(String, String)]) -> JsonLineWriter {
        JsonLineWriter::with_names(object_fields, TIME_KEY, MSG_KEY)
    }

    /// [`JsonLineWriter::new`] with the record's time and message under
    /// the names `time` and `msg` (`@timestamp` and `message`, say).
    pub fn with_names(object_fields: &[(String, String)], time: &str, msg: &str) -> JsonLineWriter {
        let mut extra = Vec::new();
        for (name, value) in object_fields {
            extra.push(b',');
            write_str(&mut extra, name);
            extra.push(b':');
            write_str(&mut extra, value);
        }
        JsonLineWriter {
            time_key: Key::new(time),
            msg_key: Key::new(msg),
            own_keys: OwnKeys::new(time, msg, object_fields),
            keys: Vec::new(),
            object_fields: extra,
            msg_escapes: Vec::new(),
        }
    }

    /// Appends one record and its `\n` to `out`.
    pub fn write(&mut self, record: &Record<'_>, out: &mut Vec<u8>) {
        self.learn_keys(record.fields);
        let msg = record.msg.unwrap_or("");
        // Room for the usual record, so that the many small writes below
        // rarely grow the buffer.
        out.reserve(2 * msg.len() + 48 * record.values.len() + self.object_fields.len() + 64);
        out.push(b'{');
        let mut first = true;
        let mut separator = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        if let Some(time) = record.time {
            separator(out);
            self.time_key.write(out);
            out.push(b'"');
            write_rfc3339(out, time);
            out.push(b'"');
        }
        self.msg_escapes.clear();
        if let Some(msg) = record.msg {
            separator(out);
            self.msg_key.write(out);
            let escapes = &mut self.msg_escapes;
            write_str_seeing_escapes(out, msg, |at| escapes.push(at));
        }
        let msg_range = msg.as_ptr() as usize..msg.as_ptr() as usize + msg.len();
        let mut msg_escapes = MsgEscapes {
            msg: msg.as_bytes(),
            at: &self.msg_escapes,
            cursor: 0,
        };
        for (key, value) in self.keys.iter().zip(record.values) {
            match value {
                Value::Str(s) if !s.is_empty() => {
                    separator(out);
                    key.write(out);
                    let at = s.as_ptr() as usize;
                    if msg_range.contains(&at) && at + s.len() <= msg_range.end {
                        msg_escapes.write_slice(out, s, at - msg_range.start);
                    } else {
                        write_str(out, s);
                    }
                }
                value if is_writable(value) => {
                    separator(out);
                    key.write(out);
                    write_value(out, value);
                }
                _ => {}
            }
        }
        if first && !self.object_fields.is_empty() {
            out.extend_from_slice(&self.object_fields[1..]);
        } else {
            out.extend_from_slice(&self.object_fields);
        }
        out.extend_from_slice(b"}\n");
    }

    fn learn_keys(&mut self, fields: &[Field]) {
        for field in &fields[self.keys.len().min(fields.len())..] {
            self.keys
                .push(Key::new(&self.own_keys.field_key(&field.name)));
        }
    }
}

fn is_writable(value: &Value<'_>) -> bool {
    match value {
        Value::Absent => false,
        // VictoriaLogs treats empty values as absent; sending them only costs bytes.
        Value::Str(s) => !s.is_empty(),
        Value::Float(f) => f.is_finite(),
        _ => true,
    }
}

/// A value as text, for names and labels: a string as it is, anything else
/// as its JSON form (a time without its quotes).
pub fn write_text(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Str(s) => out.extend_from_slice(s.as_bytes()),
        Value::Timestamp(nanos) => write_rfc3339(out, *nanos),
        value => write_value(out, value),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Absent => out.extend_from_slice(b"null"),
        Value::Str(s) => write_str(out, s),
        Value::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Value::Float(v) => write_float(out, *v),
        Value::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Value::Timestamp(nanos) => {
            out.push(b'"');
            write_rfc3339(out, *nanos);
            out.push(b'"');
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, &item);
            }
            out.push(b']');
        }
    }
}

/// Writes `v` as ryu's shortest round-trip form, `null` when not finite.
/// Log timings are decimals of a few places (`0.001`, `-1`): those are
/// written from their whole number of millionths, cheaper than ryu's
/// general search and the same text. A decimal of at most six places that
/// reads back as `v` is the shortest that does, since the doubles below
/// 10^9 are closer together than 10^-6.
fn write_float(out: &mut Vec<u8>, v: f64) {
    let millionths = v * 1e6;
    // From 10^-5 up, ryu writes plain decimals (no exponent).
    let n = millionths as i64;
    if (10.0..1e15).contains(&millionths.abs()) && n as f64 == millionths && millionths / 1e6 == v {
        if n < 0 {
            out.push(b'-');
        }
        let (whole, fraction) = (n.unsigned_abs() / 1_000_000, n.unsigned_abs() % 1_000_000);
        out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        if fraction == 0 {
            out.extend_from_slice(b".0");
        } else {
            push_fraction(out, fraction as u32, 6);
        }
    } else if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends `.` and the `width` (at most 9) decimal digits of `fraction`
/// without their trailing zeros; nothing when `fraction` is 0.
fn push_fraction(out: &mut Vec<u8>, fraction: u32, width: usize) {
    if fraction == 0 {
        return;
    }
    let mut digits = width;
    let mut rest = fraction;
    while rest.is_multiple_of(10) {
        rest /= 10;
        digits -= 1;
    }
    let mut text = [b'.'; 10];
    let mut end = digits + 1;
    while end > 2 {
        put_pair(&mut text[end - 2..end], rest % 100);
        rest /= 100;
        end -= 2;
    }
    if end == 2 {
        put_pair(&mut text[1..2], rest);
    }
    out.extend_from_slice(&text[..=digits]);
}

/// Writes `s` as a JSON string, copying unescaped runs whole.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_str_seeing_escapes(out, s, |_| {});
}

/// [`write_str`], telling `escaped` the offset of every byte it escapes.
#[inline]
fn write_str_seeing_escapes(out: &mut Vec<u8>, s: &str, mut escaped: impl FnMut(usize)) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut from = 0;
    while let Some(found) = first_to_escape(&bytes[from..]) {
        let at = from + found;
        out.extend_from_slice(&bytes[from..at]);
        write_escaped(out, bytes[at]);
        escaped(at);
        from = at + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Where the current `_msg`'s escaped bytes are, for writing slices of it.
/// Values mostly come in line order, so a cursor that only moves forward
/// answers in constant time; a slice from further back looks its position up.
struct MsgEscapes<'e> {
    msg: &'e [u8],
    at: &'e [usize],
    cursor: usize,
}

impl MsgEscapes<'_> {
    /// Writes `s`, which starts at offset `start` of the message.
    fn write_slice(&mut self, out: &mut Vec<u8>, s: &str, start: usize) {
        if self.cursor > 0 && self.at[self.cursor - 1] >= start {
            self.cursor = self.at.partition_point(|&at| at < start);
        }
        while self.at.get(self.cursor).is_some_and(|&at| at < start) {
            self.cursor += 1;
        }
        if self
            .at
            .get(self.cursor)
            .is_some_and(|&at| at < start + s.len())
        {
            write_str(out, s);
            return;
        }
        out.push(b'"');
        // Most values are short: copied as one fixed-size block of the
        // message where it has the bytes, then cut to length.
        match self.msg.get(start..start + SHORT_VALUE) {
            Some(block) if s.len() <= SHORT_VALUE => {
                push_block_prefix::<SHORT_VALUE>(out, block.try_into().expect("a block"), s.len());
            }
            _ => out.extend_from_slice(s.as_bytes()),
        }
        out.push(b'"');
    }
}

/// Appends the first `len` bytes of `block` by copying all of it and
/// cutting back: a copy of constant size is a few stores, one of variable
/// size a call to `memcpy`.
#[inline(always)]
fn push_block_prefix<const N: usize>(out: &mut Vec<u8>, block: &[u8; N], len: usize) {
    out.extend_from_slice(block);
    out.truncate(out.len() - (N - len));
}

/// Position of the first byte JSON requires escaping: below 0x20, a quote
/// or a backslash. It scans nearly every byte of every line, sixteen at a
/// time where SSE2 is there (every x86-64), eight at a time elsewhere.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut blocks = bytes.chunks_exact(16);
        for (i, block) in blocks.by_ref().enumerate() {
            let block: &[u8; 16] = block.try_into().expect("16-byte block");
            // SAFETY: SSE2 is part of the x86-64 baseline.
            let mask = unsafe { escape_mask_sse2(block) };
            if mask != 0 {
                return Some(i * 16 + mask.trailing_zeros() as usize);
            }
        }
        let tail = blocks.remainder();
        first_to_escape_by_words(tail).map(|at| bytes.len() - tail.len() + at)
    }
    #[cfg(not(target_arch = "x86_64"))]
    first_to_escape_by_words(bytes)
}

/// Bit `i` is set when `block[i]` needs escaping.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn escape_mask_sse2(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: `block` is 16 readable bytes; the load is unaligned.
    let v = unsafe { _mm_loadu_si128(block.as_ptr().cast::<__m128i>()) };
    let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    _mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(quote, backslash))) as u32
}

/// [`first_to_escape`] eight bytes per step: in each 64-bit word, a byte's
/// high bit is set in `found` when the byte is below 0x20, a quote or a
/// backslash. Borrows can only mark bytes above a true match, so the lowest
/// mark is exact.
fn first_to_escape_by_words(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let equal_to = |word: u64, byte: u8| {
        let diff = word ^ (ONES * u64::from(byte));
        diff.wrapping_sub(ONES) & !diff
    };
    let mut words = bytes.chunks_exact(8);
    for (i, word) in words.by_ref().enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let found = (control | equal_to(word, b'"') | equal_to(word, b'\\')) & HIGH;
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    let tail_start = bytes.len() - tail.len();
    tail.iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| tail_start + i)
}

fn write_escaped(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        }
    }
}

/// Writes UTC nanoseconds as RFC 3339 with `Z`, with as many fraction
/// digits as the value needs (`2018-07-02T22:23:00.186641Z`). Every record
/// has one or two: the text is built in fixed buffers from two-digit pairs.
pub fn write_rfc3339(out: &mut Vec<u8>, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let of_day = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if (0..=9999).contains(&year) {
        let mut digits = [0u8; 4];
        put_pair(&mut digits[..2], year as u32 / 100);
        put_pair(&mut digits[2..], year as u32 % 100);
        out.extend_from_slice(&digits);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
    }
    let mut text = *b"-MM-DDTHH:MM:SS";
    put_pair(&mut text[1..3], month);
    put_pair(&mut text[4..6], day);
    put_pair(&mut text[7..9], of_day / 3600);
    put_pair(&mut text[10..12], of_day / 60 % 60);
    put_pair(&mut text[13..15], of_day % 60);
    out.extend_from_slice(&text);
    push_fraction(out, frac, 9);
    out.push(b'Z');
}

/// The last `slot.len()` (one or two) decimal digits of `n < 100`.
#[inline(always)]
fn put_pair(slot: &mut [u8], n: u32) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let pair = &PAIRS[2 * n as usize..2 * n as usize + 2];
    slot.copy_from_slice(&pair[2 - slot.len()..]);
}

#[cfg(test)]
mod tests {
    use s3logd_rows::FieldType;

    use super::super::testing::{TestRecord, TestValue, field_table};
    use super::*;

    fn rfc3339(nanos: i64) -> String {
        let mut out = Vec::new();
        write_rfc3339(&mut out, nanos);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_round_trip_through_the_parser_sdk() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2018-07-02T22:23:00.186641Z",
            "2000-02-29T23:59:59.999999999Z",
            "1969-12-31T23:59:59.5Z",
            "2038-01-19T03:14:08.000001Z",
        ] {
            let nanos = s3logd_parser_sdk::time::parse_iso8601(text).unwrap();
            assert_eq!(rfc3339(nanos), text);
        }
    }

    #[test]
    fn any_time_is_written_as_the_parser_sdk_reads_it_back() {
        let mut rng = fastrand::Rng::with_seed(7);
        // Years 0000 to 9999, nanosecond fractions of every length.
        let span = 253_402_300_800_000_000_000_i128 + 62_167_219_200_000_000_000;
        for _ in 0..20_000 {
            let nanos = (rng.i128(0..span) - 62_167_219_200_000_000_000) as i64;
            let nanos = nanos - nanos % 10_i64.pow(rng.u32(0..10));
            let text = rfc3339(nanos);
            let fraction = text.split_once('.').map(|(_, f)| f);
            assert!(
                fraction.is_none_or(|f| f != "Z" && !f.ends_with("0Z")),
                "{text}"
            );
            assert_eq!(
                s3logd_parser_sdk::time::parse_iso8601(&text),
                Some(nanos),
                "{text}"
            );
        }
    }

    #[test]
    fn floats_are_written_as_ryu_writes_them() {
        let mut rng = fastrand::Rng::with_seed(11);
        let decimals: Vec<f64> = (0..100_000)
            .map(|_| {
                let text = format!(
                    "{}.{:06}",
                    rng.i64(-1_000..1_000_000),
                    rng.u32(0..1_000_000)
                );
                text.parse::<f64>().unwrap() / 10_f64.powi(rng.i32(0..8))
            })
            .collect();
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e-5,
            9.999_99e-6,
            1e-6,
            0.1 + 0.2,
            999_999_999.999_999,
            1e9,
            123_456_789.123_456,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e300,
            -1e-300,
        ];
        let randoms = (0..100_000).map(|_| f64::from_bits(rng.u64(..)));
        for v in edges.into_iter().chain(decimals).chain(randoms) {
            let mut out = Vec::new();
            write_float(&mut out, v);
            let expected = if v.is_finite() {
                ryu::Buffer::new().format_finite(v).to_owned()
            } else {
                "null".to_owned()
            };
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{v:e}");
        }
    }

    #[test]
    fn strings_are_escaped_per_json() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\te\u{1}f é");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#""a\"b\\c\nd\te\u0001f é""#);
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\u{1}f é");
    }

    #[test]
    fn both_scans_find_the_first_byte_to_escape_at_every_position() {
        // Every escapable byte, and its neighbours that must not match, at
        // each offset of a block and in the tail after the last whole one.
        let background = "aé\u{7f}\u{80}!#[]\u{a0}\u{ffff} ".repeat(3);
        for scan in [first_to_escape, first_to_escape_by_words] {
            for needle in [0u8, 0x1f, b'\n', b'"', b'\\'] {
                for at in 0..background.len() {
                    if !background.is_char_boundary(at) {
                        continue;
                    }
                    let mut text = background.clone().into_bytes();
                    text.insert(at, needle);
                    text.insert(text.len(), needle);
                    assert_eq!(scan(&text), Some(at), "{needle:#x} at {at}");
                }
            }
            assert_eq!(scan(background.as_bytes()), None);
            assert_eq!(scan(b""), None);
        }
    }

    #[test]
    fn slices_of_the_message_are_escaped_exactly_when_they_hold_an_escaped_byte() {
        let line = "h2 \"GET /a\\b?q=1 HTTP/2.0\" \"curl/8 \\\"x\\\"\" tab\there plain-tail";
        let piece = |text: &str| {
            let at = line.find(text).unwrap();
            Value::Str(&line[at..at + text.len()])
        };
        let names = [
            "request", "ua", "tabbed", "tail", "quote", "copy", "type", "agent",
        ];
        let fields: Vec<Field> = names
            .iter()
            .map(|name| field(name, FieldType::String))
            .collect();
        let copied = String::from("not \"in\" the line");
        let values = [
            piece("GET /a\\b?q=1 HTTP/2.0"),
            piece("curl/8 \\\"x\\\""),
            piece("tab\there"),
            piece("plain-tail"),
            piece("\""),
            Value::Str(&copied),
            // Short and clean, with a block's worth of the line after them.
            piece("h2"),
            piece("curl/8"),
        ];
        let record = Record {
            line: 1,
            time: None,
            msg: Some(line),
            fields: &fields,
            values: &values,
        };
        let mut out = Vec::new();
        JsonLineWriter::new(&[]).write(&record, &mut out);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["_msg"], line);
        for (name, value) in names.iter().zip(values) {
            let Value::Str(text) = value else {
                unreachable!()
            };
            assert_eq!(parsed[name], text, "{name}");
        }
    }

    fn field(name: &str, ty: FieldType) -> Field {
        Field {
            name: name.into(),
            ty,
            description: String::new(),
        }
    }

    #[test]
    fn records_carry_time_msg_present_fields_and_object_fields() {
        let fields = [
            field("type", FieldType::String),
            field("missing", FieldType::String),
            field("status", FieldType::Integer),
            field("took", FieldType::Float),
            field("empty", FieldType::String),
            field("at", FieldType::Timestamp),
            field("ok", FieldType::Boolean),
        ];
        let values = [
            Value::Str("h2"),
            Value::Absent,
            Value::Int(-1),
            Value::Float(0.25),
            Value::Str(""),
            Value::Timestamp(1_000_000_000),
            Value::Bool(true),
        ];
        let record = Record {
            line: 1,
            time: Some(0),
            msg: Some("raw \"line\""),
            fields: &fields,
            values: &values,
        };
        let mut writer = JsonLineWriter::new(&[("bucket".into(), "b".into())]);
        let mut out = Vec::new();
        writer.write(&record, &mut out);
        assert!(out.ends_with(b"}\n"));
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "_time": "1970-01-01T00:00:00Z",
                "_msg": "raw \"line\"",
                "type": "h2",
                "status": -1,
                "took": 0.25,
                "at": "1970-01-01T00:00:01Z",
                "ok": true,
                "bucket": "b",
            })
        );
    }

    /// A JSON object's keys and values in the order written, duplicates
    /// kept (a map would keep only one of them).
    fn entries(line: &[u8]) -> Vec<(String, serde_json::Value)> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Vec<(String, serde_json::Value)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries)
            }
        }
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        serde::Deserializer::deserialize_map(&mut deserializer, Entries).unwrap()
    }

    #[test]
    fn fields_named_like_the_records_own_keys_cannot_overwrite_them() {
        let record = TestRecord::at(0)
            .with("_time", TestValue::Str("1999-01-01T00:00:00Z".into()))
            .with("_msg", TestValue::Str("forged message".into()))
            .with("log_type", TestValue::Str("forged stream".into()))
            .with("status", TestValue::Int(200));
        let fields = field_table(std::slice::from_ref(&record));
        let values = record.values(&fields);
        let object_fields = [("log_type".to_owned(), "alb".to_owned())];
        let mut out = Vec::new();
        JsonLineWriter::new(&object_fields).write(&record.as_record(&fields, &values), &mut out);
        let written = entries(&out);
        let keys: Vec<&str> = written.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "_time",
                "_msg",
                "log._time",
                "log._msg",
                "log.log_type",
                "status",
                "log_type"
            ]
        );
        let value = |key: &str| &written.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(value("_time"), "1970-01-01T00:00:00Z");
        assert_eq!(value("_msg"), "line");
        assert_eq!(value("log_type"), "alb");
        assert_eq!(value("log._time"), "1999-01-01T00:00:00Z");
        assert_eq!(value("log._msg"), "forged message");
        assert_eq!(value("log.log_type"), "forged stream");

        // Other stores name the record's own keys otherwise: `_msg` is then
        // a field like any.
        let record = TestRecord::at(0)
            .with("message", TestValue::Str("forged message".into()))
            .with("_msg", TestValue::Str("a field like any".into()));
        let fields = field_table(std::slice::from_ref(&record));
        let values = record.values(&fields);
        let mut out = Vec::new();
        JsonLineWriter::with_names(&[], "@timestamp", "message")
            .write(&record.as_record(&fields, &values), &mut out);
        let keys: Vec<String> = entries(&out).into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["@timestamp", "message", "log.message", "_msg"]);
    }

    #[test]
    fn a_record_with_nothing_but_object_fields_is_still_valid_json() {
        let record = Record {
            line: 1,
            time: None,
            msg: None,
            fields: &[],
            values: &[],
        };
        let mut out = Vec::new();
        JsonLineWriter::new(&[("k".into(), "v".into())]).write(&record, &mut out);
        assert_eq!(out, b"{\"k\":\"v\"}\n");
        let mut out = Vec::new();
        JsonLineWriter::new(&[]).write(&record, &mut out);
        assert_eq!(out, b"{}\n");
    }
}
