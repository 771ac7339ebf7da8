//! The fields a VPC flow log may name in its header line (versions 2 to 8),
//! their types, and the mapping of a record's values onto them.

use s3logd_parser_sdk::text::space_separated;
use s3logd_parser_sdk::{DeclaredFields, FieldId, FieldType, Output, Row};

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    /// Unix seconds, kept as a timestamp field.
    Seconds,
    /// Unix seconds: a timestamp field and the record time.
    StartSeconds,
}

/// Every documented field; any other name in a header is kept as text.
const KNOWN: [(&str, Kind); 40] = [
    // Version 2: the default format, in its order.
    ("version", Kind::Integer),
    ("account-id", Kind::Text),
    ("interface-id", Kind::Text),
    ("srcaddr", Kind::Text),
    ("dstaddr", Kind::Text),
    ("srcport", Kind::Integer),
    ("dstport", Kind::Integer),
    ("protocol", Kind::Integer),
    ("packets", Kind::Integer),
    ("bytes", Kind::Integer),
    ("start", Kind::StartSeconds),
    ("end", Kind::Seconds),
    ("action", Kind::Text),
    ("log-status", Kind::Text),
    // Version 3.
    ("vpc-id", Kind::Text),
    ("subnet-id", Kind::Text),
    ("instance-id", Kind::Text),
    ("tcp-flags", Kind::Integer),
    ("type", Kind::Text),
    ("pkt-srcaddr", Kind::Text),
    ("pkt-dstaddr", Kind::Text),
    // Version 4.
    ("region", Kind::Text),
    ("az-id", Kind::Text),
    ("sublocation-type", Kind::Text),
    ("sublocation-id", Kind::Text),
    // Version 5.
    ("pkt-src-aws-service", Kind::Text),
    ("pkt-dst-aws-service", Kind::Text),
    ("flow-direction", Kind::Text),
    // A numeric code (1 = through another resource in the same VPC, …).
    ("traffic-path", Kind::Integer),
    // Version 7: ECS.
    ("ecs-cluster-arn", Kind::Text),
    ("ecs-cluster-name", Kind::Text),
    ("ecs-container-instance-arn", Kind::Text),
    ("ecs-container-instance-id", Kind::Text),
    ("ecs-container-id", Kind::Text),
    ("ecs-second-container-id", Kind::Text),
    ("ecs-service-name", Kind::Text),
    ("ecs-task-definition-arn", Kind::Text),
    ("ecs-task-arn", Kind::Text),
    ("ecs-task-id", Kind::Text),
    // Version 8.
    ("reject-reason", Kind::Text),
];

/// A line is a header when every word is shaped like a field name
/// (lower case, digits, dashes) and at least one is a documented one. Record
/// values never qualify: ids like `eni-…` are not field names, and `-`,
/// addresses, numbers and upper-case words (`ACCEPT`, `OK`) are not
/// name-shaped. Words are separated by runs of spaces, as in records.
pub fn is_header(line: &str) -> bool {
    let mut any_known = false;
    for word in space_separated(line) {
        let name_shaped = word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_shaped {
            return false;
        }
        any_known |= kind_of(word).is_some();
    }
    any_known
}

/// First-line detection: a line made only of documented field names,
/// separated as [`is_header`] separates them.
pub fn header_pattern() -> String {
    let names: Vec<&str> = KNOWN.iter().map(|(name, _)| *name).collect();
    let name = format!("(?:{})", names.join("|"));
    format!("^ *(?:{name} +)*{name} *$")
}

fn kind_of(name: &str) -> Option<Kind> {
    KNOWN
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, kind)| kind)
}

struct Column {
    name: String,
    kind: Kind,
    field: FieldId,
}

/// The fields of the current header, in column order.
pub struct Columns(Vec<Column>);

impl Columns {
    /// Declares the header's fields (once per session per name), with
    /// dashes turned into underscores.
    pub fn from_header(line: &str, out: &mut Output, declared: &mut DeclaredFields) -> Columns {
        let columns = space_separated(line)
            .map(|name| {
                let kind = kind_of(name).unwrap_or(Kind::Text);
                let ty = match kind {
                    Kind::Text => FieldType::String,
                    Kind::Integer => FieldType::Integer,
                    Kind::Seconds | Kind::StartSeconds => FieldType::Timestamp,
                };
                Column {
                    name: name.to_string(),
                    kind,
                    field: declared.id(out, &name.replace('-', "_"), ty),
                }
            })
            .collect();
        Columns(columns)
    }

    /// Values are separated by runs of spaces: AWS's own examples include
    /// a record with two spaces between values.
    pub fn parse_record(&self, line: &str, out: &mut Output) -> Result<(), String> {
        let mut values = space_separated(line);
        let mut row = out.row();
        for (column, value) in self.0.iter().zip(values.by_ref()) {
            if value != "-" {
                column.set(&mut row, value)?;
            }
        }
        for extra in values {
            row.extra(extra);
        }
        Ok(())
    }
}

impl Column {
    fn set(&self, row: &mut Row<'_>, value: &str) -> Result<(), String> {
        match self.kind {
            Kind::Text => {
                row.str(self.field, value);
            }
            Kind::Integer => {
                row.int(self.field, self.parse(value)?);
            }
            Kind::Seconds => {
                row.timestamp(self.field, self.nanos(value)?);
            }
            Kind::StartSeconds => {
                let nanos = self.nanos(value)?;
                row.timestamp(self.field, nanos).time(nanos);
            }
        }
        Ok(())
    }

    fn parse(&self, value: &str) -> Result<i64, String> {
        value
            .parse()
            .map_err(|_| format!("{} `{value}` is not an integer", self.name))
    }

    fn nanos(&self, value: &str) -> Result<i64, String> {
        self.parse(value)?
            .checked_mul(1_000_000_000)
            .ok_or_else(|| format!("{} `{value}` is out of range", self.name))
    }
}
