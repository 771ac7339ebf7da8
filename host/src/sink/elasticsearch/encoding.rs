//! Records as `_bulk` NDJSON: per record an action line naming the index
//! (from the template, lower-cased as index names must be) and the `_id`,
//! then the document, `@timestamp` and `message` named as configured.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::{BulkAction, ElasticsearchOptions};
use crate::parse::Record;
use crate::sink::delivery::{Encoded, Origin};
use crate::sink::json::{JsonLineWriter, write_str};
use crate::sink::template::{Renderer, Template};
use crate::sink::{Encoding, ObjectContext, RecordEncoder};

pub struct BulkEncoding {
    index: Template,
    action: &'static str,
    deterministic_ids: bool,
    timestamp_field: String,
    message_field: String,
}

impl BulkEncoding {
    pub fn new(options: &ElasticsearchOptions) -> Result<BulkEncoding, String> {
        Ok(BulkEncoding {
            index: Template::parse(&options.index)?,
            action: match options.action {
                BulkAction::Create => "create",
                BulkAction::Index => "index",
            },
            deterministic_ids: options.deterministic_ids,
            timestamp_field: options.timestamp_field.clone(),
            message_field: options.message_field.clone(),
        })
    }
}

impl Encoding for BulkEncoding {
    fn encoder(&self, object: &ObjectContext<'_>) -> Box<dyn RecordEncoder> {
        Box::new(BulkEncoder {
            action: self.action,
            id_prefix: self.deterministic_ids.then(|| object_id(object.origin)),
            index: IndexName::new(&self.index, object.fields),
            document: JsonLineWriter::with_names(
                object.fields,
                &self.timestamp_field,
                &self.message_field,
            ),
        })
    }
}

/// The first 128 bits of SHA-256 over bucket, key and version, base64url:
/// the same for every delivery of one object version, different across
/// objects.
pub(super) fn object_id(origin: &Origin) -> String {
    let mut hasher = Sha256::new();
    for part in [&origin.bucket, &origin.key, &origin.version] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The index of each record; rendered once for a constant template.
enum IndexName {
    Constant(String),
    PerRecord { renderer: Renderer, name: String },
}

impl IndexName {
    fn new(template: &Template, object_fields: &[(String, String)]) -> IndexName {
        match template.constant() {
            Some(name) => IndexName::Constant(name.to_lowercase()),
            None => IndexName::PerRecord {
                renderer: template.renderer(object_fields),
                name: String::new(),
            },
        }
    }

    fn of(&mut self, record: &Record<'_>) -> &str {
        match self {
            IndexName::Constant(name) => name,
            IndexName::PerRecord { renderer, name } => {
                renderer.render(record, name);
                name.make_ascii_lowercase();
                name
            }
        }
    }
}

struct BulkEncoder {
    action: &'static str,
    id_prefix: Option<String>,
    index: IndexName,
    document: JsonLineWriter,
}

impl RecordEncoder for BulkEncoder {
    fn encode(&mut self, record: &Record<'_>, index: u64, out: &mut Encoded) {
        let bytes = out.bytes();
        bytes.extend_from_slice(b"{\"");
        bytes.extend_from_slice(self.action.as_bytes());
        bytes.extend_from_slice(b"\":{\"_index\":");
        write_str(bytes, self.index.of(record));
        if let Some(prefix) = &self.id_prefix {
            bytes.extend_from_slice(b",\"_id\":\"");
            bytes.extend_from_slice(prefix.as_bytes());
            bytes.push(b'-');
            bytes.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
            bytes.push(b'"');
        }
        bytes.extend_from_slice(b"}}\n");
        self.document.write(record, bytes);
        out.end_record(record.line, record.time, "");
    }
}
