//! Running a parser natively in unit tests: lines in, named and typed
//! records out, decoded through the same row encoding the host reads; and
//! checking its detection patterns and reading its sample objects.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use regex::Regex;
use s3logd_rows::{Counters, Decoder, Entry, FieldType, Value};

use crate::{BatchParser, Parser};

/// An owned copy of a decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Owned {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(i64),
    List(Vec<Owned>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub time: Option<i64>,
    pub msg: Option<String>,
    /// Present fields only, by name.
    pub fields: BTreeMap<String, Owned>,
}

impl Record {
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.fields.get(name)? {
            Owned::Str(s) => Some(s),
            other => panic!("field {name} is {other:?}, not a string"),
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.fields.get(name)? {
            Owned::Int(v) => Some(*v),
            other => panic!("field {name} is {other:?}, not an integer"),
        }
    }

    pub fn float(&self, name: &str) -> Option<f64> {
        match self.fields.get(name)? {
            Owned::Float(v) => Some(*v),
            other => panic!("field {name} is {other:?}, not a float"),
        }
    }

    pub fn timestamp(&self, name: &str) -> Option<i64> {
        match self.fields.get(name)? {
            Owned::Timestamp(v) => Some(*v),
            other => panic!("field {name} is {other:?}, not a timestamp"),
        }
    }

    pub fn list(&self, name: &str) -> Option<&[Owned]> {
        match self.fields.get(name)? {
            Owned::List(v) => Some(v),
            other => panic!("field {name} is {other:?}, not a list"),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }
}

/// Everything one object produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    /// Line number (1-based within the whole input, as `s3logd parse`
    /// prints it) and reason.
    pub errors: Vec<(u64, String)>,
    pub counters: Counters,
    /// Field names in table order, with their types.
    pub fields: Vec<(String, FieldType)>,
}

impl Parsed {
    /// The declared field names, in table order.
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The errors with borrowed reasons, to compare with literals.
    pub fn error_reasons(&self) -> Vec<(u64, &str)> {
        self.errors
            .iter()
            .map(|(line, reason)| (*line, reason.as_str()))
            .collect()
    }
}

/// Parses `input` as one object, in batches of at most `lines_per_batch`
/// lines, checking that every value matches its field's declared type.
pub fn parse_batched<P: Parser>(
    object_key: &str,
    options: &[(&str, &str)],
    input: &str,
    lines_per_batch: usize,
) -> Result<Parsed, String> {
    let options = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut parser = BatchParser::<P>::open(object_key, options)?;
    let mut parsed = Parsed {
        fields: P::describe()
            .fields
            .into_iter()
            .map(|f| (f.name, f.ty))
            .collect(),
        ..Parsed::default()
    };
    let mut line_base = 0u64;
    let mut add = |parsed: &mut Parsed, batch: &str, line_base: u64| {
        let counters = decode_into(parsed, &parser.parse(batch), batch, line_base);
        parsed.counters.lines += counters.lines;
        parsed.counters.skipped += counters.skipped;
        parsed.counters.rows_with_extra += counters.rows_with_extra;
        u64::from(counters.lines)
    };
    for batch in batches(input, lines_per_batch.max(1)) {
        line_base += add(&mut parsed, batch, line_base);
    }
    // The empty batch that ends every object, as the host sends it; what
    // it reports is on the object's last line.
    add(&mut parsed, "", line_base.saturating_sub(1));
    Ok(parsed)
}

/// Parses `input` as one object in a single batch.
pub fn parse<P: Parser>(
    object_key: &str,
    options: &[(&str, &str)],
    input: &str,
) -> Result<Parsed, String> {
    parse_batched::<P>(object_key, options, input, usize::MAX)
}

/// Parses one line and returns its only record, panicking otherwise.
pub fn parse_one<P: Parser>(object_key: &str, line: &str) -> Record {
    let parsed = parse::<P>(object_key, &[], line).expect("open failed");
    assert!(parsed.errors.is_empty(), "errors: {:?}", parsed.errors);
    assert_eq!(parsed.records.len(), 1, "records: {:?}", parsed.records);
    parsed.records.into_iter().next().unwrap()
}

fn batches(input: &str, lines_per_batch: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, b) in input.bytes().enumerate() {
        if b == b'\n' {
            count += 1;
            if count == lines_per_batch {
                out.push(&input[start..=i]);
                start = i + 1;
                count = 0;
            }
        }
    }
    if start < input.len() || out.is_empty() {
        out.push(&input[start..]);
    }
    out
}

fn decode_into(parsed: &mut Parsed, encoded: &[u8], batch: &str, line_base: u64) -> Counters {
    let mut decoder = Decoder::new(encoded, batch).expect("bad batch header");
    let mut values = Vec::new();
    loop {
        match decoder
            .next_entry(&mut values)
            .expect("invalid row encoding")
        {
            Some(Entry::Field { ty, name }) => parsed.fields.push((name.to_string(), ty)),
            Some(Entry::Row(row)) => {
                let mut fields = BTreeMap::new();
                for (i, value) in values.iter().enumerate() {
                    let (name, ty) = parsed
                        .fields
                        .get(i)
                        .unwrap_or_else(|| panic!("value {i} has no declared field"));
                    if let Some(owned) = owned(*value) {
                        check_type(name, *ty, &owned);
                        fields.insert(name.clone(), owned);
                    }
                }
                parsed.records.push(Record {
                    time: row.time,
                    msg: match row.msg {
                        Value::Str(s) => Some(s.to_string()),
                        Value::Absent => None,
                        other => panic!("_msg must be a string, got {other:?}"),
                    },
                    fields,
                });
            }
            // The encoding counts a batch's lines from 0.
            Some(Entry::Error { line, reason }) => parsed
                .errors
                .push((line_base + u64::from(line) + 1, reason.to_string())),
            Some(Entry::End(counters)) => return counters,
            None => unreachable!("the decoder stops after the end entry"),
        }
    }
}

fn owned(value: Value<'_>) -> Option<Owned> {
    Some(match value {
        Value::Absent => return None,
        Value::Str(s) => Owned::Str(s.to_string()),
        Value::Int(v) => Owned::Int(v),
        Value::Float(v) => Owned::Float(v),
        Value::Bool(v) => Owned::Bool(v),
        Value::Timestamp(v) => Owned::Timestamp(v),
        Value::List(items) => Owned::List(items.iter().filter_map(owned).collect()),
    })
}

/// The host's rules (its `parse::session`): a float field takes an integer
/// too, and absent list items were dropped by [`owned`].
fn check_type(name: &str, ty: FieldType, value: &Owned) {
    let ok = match (ty, value) {
        (FieldType::String, Owned::Str(_))
        | (FieldType::Integer | FieldType::Float, Owned::Int(_))
        | (FieldType::Float, Owned::Float(_))
        | (FieldType::Boolean, Owned::Bool(_))
        | (FieldType::Timestamp, Owned::Timestamp(_)) => true,
        (FieldType::Any, _) => true,
        (FieldType::StringList, Owned::List(items)) => {
            items.iter().all(|i| matches!(i, Owned::Str(_)))
        }
        (FieldType::IntegerList, Owned::List(items)) => {
            items.iter().all(|i| matches!(i, Owned::Int(_)))
        }
        _ => false,
    };
    assert!(ok, "field {name} is declared {ty:?} but holds {value:?}");
}

/// Whether one of `P`'s key patterns matches `key`.
pub fn matches_key<P: Parser>(key: &str) -> bool {
    any_pattern_matches(&P::describe().key_patterns, key)
}

/// Whether one of `P`'s first-line patterns matches `line`.
pub fn matches_first_line<P: Parser>(line: &str) -> bool {
    any_pattern_matches(&P::describe().first_line_patterns, line)
}

fn any_pattern_matches(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| {
        Regex::new(pattern)
            .unwrap_or_else(|e| panic!("invalid pattern {pattern:?}: {e}"))
            .is_match(text)
    })
}

/// The text of `samples_dir/file`, gunzipped when it starts with the gzip
/// magic bytes (the host decides the same way).
pub fn read_sample(samples_dir: impl AsRef<Path>, file: &str) -> String {
    let path = samples_dir.as_ref().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return String::from_utf8(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    text
}
