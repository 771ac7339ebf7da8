//! One object parsed with the user's pattern: options checked once at open,
//! fields declared at the first line, one row per matching line.

use regex::{CaptureLocations, Regex};
use s3logd_parser_sdk::{FieldId, FieldType, Options, Output};

use crate::time_format::TimeFormat;

pub struct RegexSession {
    pattern: Regex,
    locations: CaptureLocations,
    /// Groups that become fields, as (group index, name), in pattern order.
    columns: Vec<(usize, String)>,
    /// The columns' field ids, once declared at the first line.
    field_ids: Option<Vec<FieldId>>,
    time: Option<TimeGroup>,
    msg_group: Option<usize>,
}

struct TimeGroup {
    index: usize,
    name: String,
    format: TimeFormat,
}

impl RegexSession {
    pub fn open(options: &Options) -> Result<RegexSession, String> {
        let source = options.get("pattern").ok_or(
            "the regex parser needs the `pattern` option: a regular expression whose named groups become fields",
        )?;
        let pattern = Regex::new(source)
            .map_err(|err| format!("option `pattern` does not compile: {err}"))?;
        let group = |option: &str| -> Result<Option<(usize, String)>, String> {
            let Some(name) = options.get(option) else {
                return Ok(None);
            };
            let index = pattern
                .capture_names()
                .position(|group| group == Some(name))
                .ok_or_else(|| {
                    format!("option `{option}`: the pattern has no group named `{name}`")
                })?;
            Ok(Some((index, name.to_string())))
        };
        let time_group = group("time_field")?;
        let msg_group = group("msg_field")?.map(|(index, _)| index);
        let time = match (time_group, options.get("time_format")) {
            (Some((index, name)), format) => Some(TimeGroup {
                index,
                name,
                format: TimeFormat::from_option(format.unwrap_or("rfc3339"))?,
            }),
            (None, Some(_)) => return Err("option `time_format` needs `time_field`".to_string()),
            (None, None) => None,
        };
        let time_index = time.as_ref().map(|t| t.index);
        let mut columns = Vec::new();
        for (index, name) in pattern.capture_names().enumerate() {
            let Some(name) = name else { continue };
            if Some(index) == time_index || Some(index) == msg_group {
                continue;
            }
            if name.starts_with('_') {
                return Err(format!(
                    "group `{name}`: names starting with `_` are kept for the record's own fields (`_time`, `_msg`)"
                ));
            }
            columns.push((index, name.to_string()));
        }
        Ok(RegexSession {
            locations: pattern.capture_locations(),
            pattern,
            columns,
            field_ids: None,
            time,
            msg_group,
        })
    }

    pub fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let field_ids = self.field_ids.get_or_insert_with(|| {
            self.columns
                .iter()
                .map(|(_, name)| out.declare(name, FieldType::String))
                .collect()
        });
        if self
            .pattern
            .captures_read(&mut self.locations, line)
            .is_none()
        {
            return Err("line does not match the `pattern` option".to_string());
        }
        let locations = &self.locations;
        let group = |index: usize| locations.get(index).map(|(start, end)| &line[start..end]);

        let mut row = out.row();
        if let Some(time) = &self.time {
            let text = group(time.index).ok_or_else(|| {
                format!(
                    "time_field group `{}` did not take part in the match",
                    time.name
                )
            })?;
            let nanos = time.format.parse(text).ok_or_else(|| {
                format!(
                    "time_field `{}` value {text:?} is not a time in the format {}",
                    time.name, time.format
                )
            })?;
            row.time(nanos);
        }
        if let Some(msg) = self.msg_group.and_then(group) {
            row.msg(msg);
        }
        for ((index, _), &field) in self.columns.iter().zip(field_ids.iter()) {
            if let Some(value) = group(*index) {
                row.str_or_dash(field, value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
