//! Standard logging v2 records written as one JSON object per line. Keys
//! are the configured field names, kept as given; values keep their JSON
//! type.

use s3logd_parser_sdk::{DeclaredFields, FieldType, Output};
use serde_json::{Map, Value};

use crate::record_time;

pub fn parse_record(
    line: &str,
    out: &mut Output,
    declared: &mut DeclaredFields,
) -> Result<(), String> {
    let record: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let text = |key: &str| match record.get(key) {
        Some(Value::String(s)) if s != "-" => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    // The fields that make `_time` are not repeated as fields.
    let (time, time_keys): (Option<i64>, &[&str]) =
        match (text("date"), text("time"), text("timestamp")) {
            (Some(date), Some(time), _) => (
                Some(record_time::from_date_and_time(&date, &time)?),
                &["date", "time"],
            ),
            (_, _, Some(timestamp)) => (
                Some(record_time::from_timestamp(&timestamp)?),
                &["timestamp"],
            ),
            _ => (None, &[]),
        };
    let fields: Vec<_> = record
        .iter()
        .filter(|(key, _)| !time_keys.contains(&key.as_str()))
        .map(|(key, value)| (declared.id(out, key, FieldType::Any), value))
        .collect();
    let mut row = out.row();
    if let Some(nanos) = time {
        row.time(nanos);
    }
    for (field, value) in fields {
        match value {
            Value::Null => {}
            Value::String(s) => {
                row.str_or_dash(field, s);
            }
            Value::Bool(b) => {
                row.bool(field, *b);
            }
            Value::Number(n) => match n.as_i64() {
                Some(int) => {
                    row.int(field, int);
                }
                None => {
                    row.float(field, n.as_f64().unwrap_or(f64::NAN));
                }
            },
            nested => {
                row.str(field, &nested.to_string());
            }
        }
    }
    Ok(())
}
