//! Records as Loki push entries: each record's bytes are its entry
//! (`["<ns>","<line>"]`, or with structured metadata `["<ns>","<line>",{…}]`)
//! and its group is its stream's labels as a JSON object, so that a request
//! is the entries gathered by group.

use std::collections::BTreeMap;

use s3logd_rows::Value;

use crate::config::LokiLine;
use crate::config::sink::is_label_name;
use crate::parse::{Field, Record};
use crate::sink::delivery::{Encoded, Records};
use crate::sink::json::{JsonLineWriter, MSG_KEY, OwnKeys, TIME_KEY, write_str, write_text};
use crate::sink::{Encoding, ObjectContext, RecordEncoder, now_nanos};

/// A stream with no label at all is refused by Loki; it gets this one.
const FALLBACK_LABEL: (&str, &str) = ("job", "s3logd");

pub struct LokiEncoding {
    /// (label name, field name), in label-name order.
    labels: Vec<(String, String)>,
    static_labels: Vec<(String, String)>,
    line: LokiLine,
}

impl LokiEncoding {
    pub fn new(
        fields: Vec<String>,
        static_labels: &BTreeMap<String, String>,
        line: LokiLine,
    ) -> LokiEncoding {
        let mut labels: Vec<(String, String)> = fields
            .into_iter()
            .map(|field| (label_name(&field), field))
            .filter(|(label, _)| !static_labels.contains_key(label))
            .collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        LokiEncoding {
            labels,
            static_labels: static_labels
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            line,
        }
    }
}

/// A field name as a label name: characters Loki does not take become `_`.
fn label_name(field: &str) -> String {
    let mut name: String = field
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !is_label_name(&name) {
        name.insert(0, '_');
    }
    name
}

impl Encoding for LokiEncoding {
    fn encoder(&self, object: &ObjectContext<'_>) -> Box<dyn RecordEncoder> {
        Box::new(self.object_encoder(object))
    }
}

impl LokiEncoding {
    fn object_encoder(&self, object: &ObjectContext<'_>) -> LokiEncoder {
        LokiEncoder {
            labels: self.labels.clone(),
            static_labels: self.static_labels.clone(),
            object_fields: object.fields.to_vec(),
            own_keys: OwnKeys::new(TIME_KEY, MSG_KEY, object.fields),
            positions: vec![None; self.labels.len()],
            fields_seen: 0,
            json: (self.line == LokiLine::Json).then(|| JsonLineWriter::new(object.fields)),
            group: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

struct LokiEncoder {
    labels: Vec<(String, String)>,
    static_labels: Vec<(String, String)>,
    object_fields: Vec<(String, String)>,
    /// A label names a field as the JSON line has it: a parser's field
    /// named like an object field is not the object's.
    own_keys: OwnKeys,
    /// Each label's field in the session's table, learned as it grows.
    positions: Vec<Option<usize>>,
    fields_seen: usize,
    /// The line as JSON; `None`: the raw line with structured metadata.
    json: Option<JsonLineWriter>,
    group: Vec<u8>,
    scratch: Vec<u8>,
}

impl RecordEncoder for LokiEncoder {
    fn encode(&mut self, record: &Record<'_>, _index: u64, out: &mut Encoded) {
        self.learn_positions(record.fields);
        self.write_group(record);
        let time = record.time.unwrap_or_else(now_nanos);
        let bytes = out.bytes();
        bytes.extend_from_slice(b"[\"");
        bytes.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
        bytes.extend_from_slice(b"\",");
        match &mut self.json {
            Some(writer) => {
                self.scratch.clear();
                writer.write(record, &mut self.scratch);
                self.scratch.pop();
                write_str(bytes, &String::from_utf8_lossy(&self.scratch));
            }
            None => {
                write_str(bytes, record.msg.unwrap_or(""));
                write_metadata(bytes, record, &mut self.scratch);
            }
        }
        bytes.push(b']');
        let group = String::from_utf8_lossy(&self.group);
        out.end_record(record.line, record.time, &group);
    }
}

impl LokiEncoder {
    fn learn_positions(&mut self, fields: &[Field]) {
        if fields.len() == self.fields_seen {
            return;
        }
        self.fields_seen = fields.len();
        for (position, (_, field)) in self.positions.iter_mut().zip(&self.labels) {
            *position = fields
                .iter()
                .position(|known| self.own_keys.field_key(&known.name) == field.as_str());
        }
    }

    /// The record's labels as a JSON object, in label-name order (static
    /// ones included), into `self.group`.
    fn write_group(&mut self, record: &Record<'_>) {
        self.group.clear();
        self.group.push(b'{');
        let mut fields = self.labels.iter().zip(&self.positions).peekable();
        let mut statics = self.static_labels.iter().peekable();
        let mut written = 0;
        loop {
            // Both lists are in name order: merge them.
            let take_static = match (fields.peek(), statics.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(((field_label, _), _)), Some((static_label, _))) => {
                    static_label < field_label
                }
            };
            let (label, value): (&str, Option<Value<'_>>) = if take_static {
                let (label, value) = statics.next().expect("peeked");
                (label, Some(Value::Str(value)))
            } else {
                let ((label, field), position) = fields.next().expect("peeked");
                let value = position
                    .and_then(|at| record.values.get(at).copied())
                    .filter(|value| !matches!(value, Value::Absent | Value::Str("")))
                    .or_else(|| {
                        self.object_fields
                            .iter()
                            .find(|(name, value)| name == field && !value.is_empty())
                            .map(|(_, value)| Value::Str(value))
                    });
                (label, value)
            };
            let Some(value) = value else { continue };
            if written > 0 {
                self.group.push(b',');
            }
            written += 1;
            write_str(&mut self.group, label);
            self.group.push(b':');
            match value {
                Value::Str(text) => write_str(&mut self.group, text),
                value => {
                    self.scratch.clear();
                    write_text(&mut self.scratch, &value);
                    write_str(&mut self.group, &String::from_utf8_lossy(&self.scratch));
                }
            }
        }
        if written == 0 {
            write_str(&mut self.group, FALLBACK_LABEL.0);
            self.group.push(b':');
            write_str(&mut self.group, FALLBACK_LABEL.1);
        }
        self.group.push(b'}');
    }
}

/// `,{"field":"value",…}`: every present field as text (Loki's structured
/// metadata takes strings only); nothing for a record without fields.
fn write_metadata(out: &mut Vec<u8>, record: &Record<'_>, scratch: &mut Vec<u8>) {
    let mut first = true;
    for (field, value) in record.present() {
        if matches!(value, Value::Str("")) {
            continue;
        }
        out.extend_from_slice(if first { b",{" } else { b"," });
        first = false;
        write_str(out, &field.name);
        out.push(b':');
        scratch.clear();
        write_text(scratch, &value);
        write_str(out, &String::from_utf8_lossy(scratch));
    }
    if !first {
        out.push(b'}');
    }
}

/// `{"streams":[{"stream":<labels>,"values":[<entries>]},…]}`, entries of
/// one stream in the order they came.
pub(super) fn push_body(records: &Records) -> Vec<u8> {
    let mut streams: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for record in records.iter() {
        streams.entry(record.group).or_default().push(record.bytes);
    }
    let mut body = Vec::with_capacity(records.bytes_len() as usize + 64 * streams.len() + 16);
    body.extend_from_slice(b"{\"streams\":[");
    for (i, (labels, entries)) in streams.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"stream\":");
        body.extend_from_slice(labels.as_bytes());
        body.extend_from_slice(b",\"values\":[");
        for (j, entry) in entries.into_iter().enumerate() {
            if j > 0 {
                body.push(b',');
            }
            body.extend_from_slice(entry);
        }
        body.extend_from_slice(b"]}");
    }
    body.extend_from_slice(b"]}");
    body
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sink::testing::{TestRecord, TestValue, field_table, origin};

    #[test]
    fn a_field_named_like_an_object_field_does_not_choose_the_stream() {
        let encoding = LokiEncoding::new(
            vec!["log_type".into(), "elb".into()],
            &BTreeMap::new(),
            LokiLine::Json,
        );
        let object_fields = [("log_type".to_owned(), "alb".to_owned())];
        let origin = Arc::new(origin("a.log"));
        let mut encoder = encoding.object_encoder(&ObjectContext {
            origin: &origin,
            fields: &object_fields,
        });
        let record = TestRecord::at(0)
            .with("log_type", TestValue::Str("forged".into()))
            .with("elb", TestValue::Str("app/web/1".into()));
        let fields = field_table(std::slice::from_ref(&record));
        let values = record.values(&fields);
        let mut encoded = Encoded::new(Vec::new(), origin.clone());
        encoder.encode(&record.as_record(&fields, &values), 0, &mut encoded);
        let group = String::from_utf8(encoder.group.clone()).unwrap();
        assert_eq!(group, r#"{"elb":"app/web/1","log_type":"alb"}"#);
    }
}
