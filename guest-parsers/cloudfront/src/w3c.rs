//! W3C extended log records: the columns a `#Fields` header names, their
//! field names and types, and one tab-separated record.

use s3logd_parser_sdk::{DeclaredFields, FieldId, FieldType, Output};

use crate::record_time;

const INTEGER_FIELDS: [&str; 7] = [
    "sc_status",
    "sc_bytes",
    "cs_bytes",
    "c_port",
    "sc_content_len",
    "sc_range_start",
    "sc_range_end",
];
const FLOAT_FIELDS: [&str; 2] = ["time_taken", "time_to_first_byte"];

enum Column {
    Date,
    Time,
    /// The v2 `timestamp`, the record time when there is no date and time.
    Timestamp,
    Text(FieldId),
    Integer(FieldId, String),
    Float(FieldId, String),
}

/// The columns of the current `#Fields` header, in order.
pub struct Columns(Vec<Column>);

/// `cs(User-Agent)` → `cs_user_agent`, `x-edge-location` → `x_edge_location`.
pub fn field_name(w3c_name: &str) -> String {
    w3c_name
        .chars()
        .filter(|&c| c != ')')
        .map(|c| match c {
            '-' | '(' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

impl Columns {
    /// `names`: what follows `#Fields:`, space-separated W3C names.
    pub fn from_header(names: &str, out: &mut Output, declared: &mut DeclaredFields) -> Columns {
        let columns = names
            .split_ascii_whitespace()
            .map(|w3c_name| {
                let name = field_name(w3c_name);
                match name.as_str() {
                    "date" => Column::Date,
                    "time" => Column::Time,
                    "timestamp" => Column::Timestamp,
                    known if INTEGER_FIELDS.contains(&known) => {
                        Column::Integer(declared.id(out, &name, FieldType::Integer), name)
                    }
                    known if FLOAT_FIELDS.contains(&known) => {
                        Column::Float(declared.id(out, &name, FieldType::Float), name)
                    }
                    _ => Column::Text(declared.id(out, &name, FieldType::String)),
                }
            })
            .collect();
        Columns(columns)
    }

    pub fn parse_record(&self, line: &str, out: &mut Output) -> Result<(), String> {
        let mut values = line.split('\t');
        let (mut date, mut time, mut timestamp) = (None, None, None);
        let mut row = out.row();
        for (column, value) in self.0.iter().zip(values.by_ref()) {
            if value == "-" {
                continue;
            }
            match column {
                Column::Date => date = Some(value),
                Column::Time => time = Some(value),
                Column::Timestamp => timestamp = Some(value),
                Column::Text(field) => {
                    row.str(*field, value);
                }
                Column::Integer(field, name) => {
                    let number = value
                        .parse()
                        .map_err(|_| format!("{name} `{value}` is not an integer"))?;
                    row.int(*field, number);
                }
                Column::Float(field, name) => {
                    let number = value
                        .parse()
                        .map_err(|_| format!("{name} `{value}` is not a number"))?;
                    row.float(*field, number);
                }
            }
        }
        match (date, time, timestamp) {
            (Some(date), Some(time), _) => {
                row.time(record_time::from_date_and_time(date, time)?);
            }
            (Some(half), None, _) | (None, Some(half), _) => {
                return Err(format!(
                    "`{half}` is only half of the date and time columns"
                ));
            }
            (None, None, Some(timestamp)) => {
                row.time(record_time::from_timestamp(timestamp)?);
            }
            (None, None, None) => {}
        }
        let mut extras = values.peekable();
        while let Some(extra) = extras.next() {
            // Some files end records with a tab: an empty last column is no field.
            if extra.is_empty() && extras.peek().is_none() {
                break;
            }
            row.extra(extra);
        }
        Ok(())
    }
}
