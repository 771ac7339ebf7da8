//! Records as JSON lines: the body VictoriaLogs' `/insert/jsonline` takes,
//! and what `s3logd parse` prints, byte for byte.
//!
//! This runs once per record on the hot path, so it writes straight into a
//! reused buffer with field keys escaped once per session rather than per
//! record.

use s3logd_rows::Value;

use crate::parse::{Field, Record};

/// Writes records of one object as JSON lines.
pub struct JsonLineWriter {
    /// `"name":` for each field of the session, escaped once.
    keys: Vec<Vec<u8>>,
    /// `,"name":"value"` for every field added to each record of the object.
    object_fields: Vec<u8>,
}

impl JsonLineWriter {
    /// `object_fields` are added to every record (bucket, key, and fields
    /// taken from the key).
    pub fn new(object_fields: &[(String, String)]) -> JsonLineWriter {
        let mut extra = Vec::new();
        for (name, value) in object_fields {
            extra.push(b',');
            write_str(&mut extra, name);
            extra.push(b':');
            write_str(&mut extra, value);
        }
        JsonLineWriter {
            keys: Vec::new(),
            object_fields: extra,
        }
    }

    /// Appends one record and its `\n` to `out`.
    pub fn write(&mut self, record: &Record<'_>, out: &mut Vec<u8>) {
        self.learn_keys(record.fields);
        out.push(b'{');
        let mut first = true;
        let mut separator = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        if let Some(time) = record.time {
            separator(out);
            out.extend_from_slice(b"\"_time\":\"");
            write_rfc3339(out, time);
            out.push(b'"');
        }
        if let Some(msg) = record.msg {
            separator(out);
            out.extend_from_slice(b"\"_msg\":");
            write_str(out, msg);
        }
        for (i, value) in record.values.iter().enumerate() {
            if !is_writable(value) {
                continue;
            }
            separator(out);
            out.extend_from_slice(&self.keys[i]);
            write_value(out, value);
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
            let mut key = Vec::with_capacity(field.name.len() + 3);
            write_str(&mut key, &field.name);
            key.push(b':');
            self.keys.push(key);
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

fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Absent => out.extend_from_slice(b"null"),
        Value::Str(s) => write_str(out, s),
        Value::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Value::Float(v) if v.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(*v).as_bytes())
        }
        Value::Float(_) => out.extend_from_slice(b"null"),
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

/// Writes `s` as a JSON string, copying unescaped runs whole.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    while let Some(at) = first_to_escape(rest) {
        out.extend_from_slice(&rest[..at]);
        write_escaped(out, rest[at]);
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Position of the first byte JSON requires escaping. This scans every
/// byte of every record (the raw line in `_msg` and most field values), so
/// it tests eight bytes per step: in each 64-bit word, a byte's high bit is
/// set in `found` when the byte is below 0x20, a quote or a backslash. Borrows
/// can only mark bytes above a true match, so the lowest mark is exact.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
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
/// digits as the value needs (`2018-07-02T22:23:00.186641Z`).
pub fn write_rfc3339(out: &mut Vec<u8>, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let digits = |n: u32, width: usize, out: &mut Vec<u8>| {
        let mut buf = [b'0'; 9];
        let mut n = n;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    };
    if (0..=9999).contains(&year) {
        digits(year as u32, 4, out);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
    }
    out.push(b'-');
    digits(month, 2, out);
    out.push(b'-');
    digits(day, 2, out);
    out.push(b'T');
    digits(of_day / 3600, 2, out);
    out.push(b':');
    digits(of_day / 60 % 60, 2, out);
    out.push(b':');
    digits(of_day % 60, 2, out);
    if frac != 0 {
        out.push(b'.');
        let mut width = 9;
        let mut trimmed = frac;
        while trimmed.is_multiple_of(10) {
            trimmed /= 10;
            width -= 1;
        }
        digits(trimmed, width, out);
    }
    out.push(b'Z');
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use s3logd_rows::FieldType;

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
    fn strings_are_escaped_per_json() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\te\u{1}f é");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#""a\"b\\c\nd\te\u0001f é""#);
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\u{1}f é");
    }

    #[test]
    fn the_word_scan_finds_the_first_byte_to_escape_at_every_position() {
        // Every escapable byte, and its neighbours that must not match, at
        // each offset of a word and in the tail after the last whole word.
        let background = "aé\u{7f}\u{80}!#[]\u{a0}\u{ffff} ".repeat(3);
        for needle in [0u8, 0x1f, b'\n', b'"', b'\\'] {
            for at in 0..background.len() {
                if !background.is_char_boundary(at) {
                    continue;
                }
                let mut text = background.clone().into_bytes();
                text.insert(at, needle);
                text.insert(text.len(), needle);
                assert_eq!(first_to_escape(&text), Some(at), "{needle:#x} at {at}");
            }
        }
        assert_eq!(first_to_escape(background.as_bytes()), None);
        assert_eq!(first_to_escape(b""), None);
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

    #[test]
    fn a_record_with_nothing_but_object_fields_is_still_valid_json() {
        let record = Record {
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
