//! JSON lines written by applications: s3logger's `dt=YYYY-MM-DD/…json.gz`
//! objects and any other app that writes one JSON object per line. Keys are
//! flattened by `s3logd-json-fields`. The record time is taken from
//! `time_field` (by default the first of `_time`, `time`, `timestamp`, `ts`,
//! `@timestamp` that is present; a dotted path reaches into nested objects)
//! and removed from the fields; `_msg` is the field `msg_field` names (by
//! default `_msg`), else the raw line. The defaults make a line s3logd
//! itself wrote (the file and `s3_archive` sinks) read back as the record
//! it was.
//!
//! `time_format` defaults to `auto` rather than `rfc3339`: the default time
//! fields are written as RFC 3339 text by some loggers and as Unix numbers
//! by others (zap's `ts`), and `auto` reads RFC 3339 text exactly as
//! `rfc3339` does.

use s3logd_json_fields::{EpochUnit, Flat, JsonFields, RawValue, Text};
use s3logd_parser_sdk::time::parse_iso8601;
use s3logd_parser_sdk::{Description, Options, Output, Parser};

/// `_time` first: a line s3logd itself wrote (the file and `s3_archive`
/// sinks) reads back as the record it was.
const DEFAULT_TIME_FIELDS: [&str; 5] = ["_time", "time", "timestamp", "ts", "@timestamp"];

/// The message of a line s3logd itself wrote; other lines are their own.
const DEFAULT_MSG_FIELD: &str = "_msg";

pub struct NdJson {
    fields: JsonFields,
    /// Candidates for the record time, first present wins.
    time_fields: Vec<String>,
    time_format: TimeFormat,
    msg_field: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum TimeFormat {
    Rfc3339,
    Unix(EpochUnit),
    /// RFC 3339 text, else a Unix time whose unit is guessed from its size.
    Auto,
}

/// `time_format` option values.
const TIME_FORMATS: [(&str, TimeFormat); 6] = [
    ("rfc3339", TimeFormat::Rfc3339),
    ("unix_s", TimeFormat::Unix(EpochUnit::Seconds)),
    ("unix_ms", TimeFormat::Unix(EpochUnit::Millis)),
    ("unix_us", TimeFormat::Unix(EpochUnit::Micros)),
    ("unix_ns", TimeFormat::Unix(EpochUnit::Nanos)),
    ("auto", TimeFormat::Auto),
];

impl TimeFormat {
    fn from_option(value: &str) -> Result<TimeFormat, String> {
        TIME_FORMATS
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, format)| *format)
            .ok_or_else(|| {
                let names: Vec<&str> = TIME_FORMATS.iter().map(|(name, _)| *name).collect();
                format!("time_format {value:?} is not one of {}", names.join(", "))
            })
    }

    fn name(self) -> &'static str {
        TIME_FORMATS
            .iter()
            .find(|(_, format)| *format == self)
            .map_or("?", |(name, _)| name)
    }

    /// UTC nanoseconds of a JSON string or number.
    fn parse(self, raw: &RawValue) -> Option<i64> {
        let text = match raw.get() {
            quoted if quoted.starts_with('"') => serde_json::from_str::<Text>(quoted).ok()?.0,
            number => number.into(),
        };
        match self {
            TimeFormat::Rfc3339 => parse_iso8601(&text),
            TimeFormat::Unix(unit) => unit.parse(&text),
            TimeFormat::Auto => parse_iso8601(&text).or_else(|| EpochUnit::parse_guessing(&text)),
        }
    }
}

impl Parser for NdJson {
    fn describe() -> Description {
        Description::new("ndjson", env!("CARGO_PKG_VERSION"), "JSON lines: one JSON object per line")
            .format("JSON lines (s3logger and application logs)")
            .key_pattern(r"(^|/)dt=\d{4}-\d\d-\d\d/\d{8}T\d{6}_[0-9a-f]{16}\.json(\.gz)?$")
            .first_line_pattern(r#"^\s*\{\s*""#)
            // Exports of JSON objects are often pretty-printed.
            .json_documents()
            .option(
                "time_field",
                "field holding the record time (dotted path for nested keys); default: the first present of _time, time, timestamp, ts, @timestamp",
                None,
            )
            .option(
                "time_format",
                "rfc3339, unix_s, unix_ms, unix_us, unix_ns, or auto (RFC 3339 text, else a Unix time with the unit guessed from its size)",
                Some("auto"),
            )
            .option("msg_field", "field to use as _msg (removed from the fields); default: _msg when present (a line s3logd wrote), else the raw line", None)
            .time_source("time_field (default: _time, time, timestamp, ts or @timestamp)")
    }

    fn open(_key: &str, options: &Options) -> Result<Self, String> {
        let time_fields = match options.get("time_field") {
            Some(field) => vec![field.to_owned()],
            None => DEFAULT_TIME_FIELDS.map(String::from).to_vec(),
        };
        Ok(NdJson {
            fields: JsonFields::new(),
            time_fields,
            time_format: TimeFormat::from_option(options.get("time_format").unwrap_or("auto"))?,
            msg_field: options
                .get("msg_field")
                .unwrap_or(DEFAULT_MSG_FIELD)
                .to_owned(),
        })
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let claims: Vec<&str> = self
            .time_fields
            .iter()
            .chain([&self.msg_field])
            .map(String::as_str)
            .collect();
        let mut flat = Flat::new();
        self.fields
            .object(out, line, "", &claims, &mut flat)
            .map_err(|e| format!("not a JSON object: {e}"))?;
        let time_slot = (0..self.time_fields.len()).find(|&slot| flat.claimed(slot).is_some());
        let time = match time_slot {
            Some(slot) => {
                let raw = flat.claimed(slot).expect("found above");
                Some(self.time_format.parse(raw).ok_or_else(|| {
                    format!(
                        "{} {} is not a {} time",
                        self.time_fields[slot],
                        raw.get(),
                        self.time_format.name()
                    )
                })?)
            }
            None => None,
        };
        for (slot, name) in self.time_fields.iter().enumerate() {
            if let Some(raw) = flat.claimed(slot).filter(|_| Some(slot) != time_slot) {
                self.fields
                    .value(out, name, raw, &mut flat)
                    .map_err(|e| e.to_string())?;
            }
        }
        let msg = flat.claimed(self.time_fields.len()).map(|raw| {
            match serde_json::from_str::<Text>(raw.get()) {
                Ok(text) => text.0,
                Err(_) => raw.get().into(),
            }
        });
        let mut row = out.row();
        if let Some(time) = time {
            row.time(time);
        }
        if let Some(msg) = &msg {
            row.msg(msg);
        }
        flat.write(&mut row);
        Ok(())
    }
}

s3logd_parser_sdk::export_parser!(NdJson);

#[cfg(test)]
mod tests;
