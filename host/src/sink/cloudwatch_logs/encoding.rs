//! Records as CloudWatch Logs events: the message bytes of each record,
//! grouped by `"<log group>\n<log stream>"` rendered from the templates, so
//! that the store can send each stream's events in calls of their own.

use super::super::delivery::Encoded;
use super::super::json::JsonLineWriter;
use super::super::template::{Renderer, Template};
use super::super::{Encoding, ObjectContext, RecordEncoder};
use crate::config::CloudWatchMessage;
use crate::parse::Record;

/// Separates the log group from the log stream in a record's group key: a
/// log group name cannot hold a newline (`[\.\-_/#A-Za-z0-9]+`), so the
/// first newline is always the separator.
pub(super) const SEPARATOR: char = '\n';

pub struct CloudWatchEncoding {
    pub(super) log_group: Template,
    pub(super) log_stream: Template,
    pub(super) message: CloudWatchMessage,
}

impl Encoding for CloudWatchEncoding {
    fn encoder(&self, object: &ObjectContext<'_>) -> Box<dyn RecordEncoder> {
        Box::new(CloudWatchEncoder {
            log_group: self.log_group.renderer(object.fields),
            log_stream: self.log_stream.renderer(object.fields),
            json: match self.message {
                // The record as `s3logd parse` prints it (`_time`, `_msg`
                // and every field), so Logs Insights discovers the fields.
                CloudWatchMessage::Json => Some(JsonLineWriter::new(object.fields)),
                CloudWatchMessage::Raw => None,
            },
            group: String::new(),
            stream: String::new(),
        })
    }
}

struct CloudWatchEncoder {
    log_group: Renderer,
    log_stream: Renderer,
    json: Option<JsonLineWriter>,
    /// Reused for every record: the group key is built here, then copied
    /// by `end_record` only when it is new for the object.
    group: String,
    stream: String,
}

impl RecordEncoder for CloudWatchEncoder {
    fn encode(&mut self, record: &Record<'_>, _index: u64, out: &mut Encoded) {
        let bytes = out.bytes();
        match &mut self.json {
            Some(writer) => {
                writer.write(record, bytes);
                // An event is one message: the line's `\n` is not part of it.
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
            }
            None => {
                let msg = record.msg.unwrap_or("");
                let msg = msg.strip_suffix('\n').unwrap_or(msg);
                let msg = msg.strip_suffix('\r').unwrap_or(msg);
                bytes.extend_from_slice(msg.as_bytes());
            }
        }
        self.log_group.render(record, &mut self.group);
        self.log_stream.render(record, &mut self.stream);
        self.group.push(SEPARATOR);
        self.group.push_str(&self.stream);
        out.end_record(record.line, record.time, &self.group);
    }
}
