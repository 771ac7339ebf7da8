//! Names built per record from a template: an Elasticsearch index
//! (`alb-%Y.%m.%d`), a CloudWatch Logs group (`/aws/elb/{load_balancer}`).
//! `{field}` takes the record's field of that name, else the object's
//! (bucket, key, the fields taken from the key); `%Y %m %d %H` the record's
//! UTC time (the time of encoding for a record without one); `%%` is `%`.
//! A field a record lacks becomes `-`, so that every record has a name.

use s3logd_rows::Value;
use s3logd_rows::calendar::civil_from_days;

use super::now_nanos;
use crate::parse::{Field, Record};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(String),
    Year,
    Month,
    Day,
    Hour,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Renders one template for the records of one object.
pub struct Renderer {
    template: Template,
    object_fields: Vec<(String, String)>,
    /// For each `{field}` part, its position in the session's field table,
    /// learned as the table grows.
    positions: Vec<Option<usize>>,
    fields_seen: usize,
    scratch: Vec<u8>,
    /// For a template without fields: the hour last rendered and its
    /// name, since records of one object mostly share their hour.
    last: Option<(i64, String)>,
}

impl Template {
    /// Reads `text`; the error says what is wrong at which character.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let part = match c {
                '%' => match chars.next() {
                    Some((_, 'Y')) => Part::Year,
                    Some((_, 'm')) => Part::Month,
                    Some((_, 'd')) => Part::Day,
                    Some((_, 'H')) => Part::Hour,
                    Some((_, '%')) => {
                        literal.push('%');
                        continue;
                    }
                    other => {
                        let found = other.map_or("the end".to_owned(), |(_, c)| format!("%{c}"));
                        return Err(format!(
                            "{found} at character {at}: only %Y, %m, %d, %H and %% are known"
                        ));
                    }
                },
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, c)) => name.push(c),
                            None => return Err(format!("`{{` at character {at} is not closed")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("empty `{{}}` at character {at}"));
                    }
                    Part::Field(name)
                }
                c => {
                    literal.push(c);
                    continue;
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The name of every record, when the template names no field or time.
    pub fn constant(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// A renderer for the records of one object.
    pub fn renderer(&self, object_fields: &[(String, String)]) -> Renderer {
        let fields = self.parts.iter().filter(|p| matches!(p, Part::Field(_)));
        Renderer {
            template: self.clone(),
            object_fields: object_fields.to_vec(),
            positions: vec![None; fields.count()],
            fields_seen: 0,
            scratch: Vec::new(),
            last: None,
        }
    }
}

impl Renderer {
    /// Replaces `out` with the name of `record`.
    pub fn render(&mut self, record: &Record<'_>, out: &mut String) {
        self.learn_positions(record.fields);
        out.clear();
        let time = record.time.unwrap_or_else(now_nanos);
        let hour = time.div_euclid(3_600 * 1_000_000_000);
        if let Some((last_hour, name)) = &self.last
            && *last_hour == hour
        {
            out.push_str(name);
            return;
        }
        let (days, seconds) = (
            time.div_euclid(86_400 * 1_000_000_000),
            time.rem_euclid(86_400 * 1_000_000_000) / 1_000_000_000,
        );
        let (year, month, day) = civil_from_days(days);
        let mut field = 0;
        for part in &self.template.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Year => push_padded(out, year, 4),
                Part::Month => push_padded(out, month as i64, 2),
                Part::Day => push_padded(out, day as i64, 2),
                Part::Hour => push_padded(out, seconds / 3600, 2),
                Part::Field(name) => {
                    let value = self.positions[field]
                        .and_then(|position| record.values.get(position))
                        .filter(|value| !matches!(value, Value::Absent | Value::Str("")));
                    field += 1;
                    match value {
                        Some(value) => {
                            self.scratch.clear();
                            super::json::write_text(&mut self.scratch, value);
                            out.push_str(&String::from_utf8_lossy(&self.scratch));
                        }
                        None => match self.object_fields.iter().find(|(known, _)| known == name) {
                            Some((_, value)) if !value.is_empty() => out.push_str(value),
                            _ => out.push('-'),
                        },
                    }
                }
            }
        }
        if self.positions.is_empty() {
            self.last = Some((hour, out.clone()));
        }
    }

    fn learn_positions(&mut self, fields: &[Field]) {
        if fields.len() == self.fields_seen {
            return;
        }
        self.fields_seen = fields.len();
        let names = self.template.parts.iter().filter_map(|part| match part {
            Part::Field(name) => Some(name),
            _ => None,
        });
        for (position, name) in self.positions.iter_mut().zip(names) {
            *position = fields.iter().position(|field| field.name == *name);
        }
    }
}

fn push_padded(out: &mut String, n: i64, width: usize) {
    use std::fmt::Write;
    // Writing into a String does not fail.
    let _ = write!(out, "{n:0width$}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testing::{TestRecord, TestValue, field_table};

    fn render(template: &str, record: &TestRecord, object: &[(String, String)]) -> String {
        let template = Template::parse(template).unwrap();
        let fields = field_table(std::slice::from_ref(record));
        let values = record.values(&fields);
        let mut out = String::new();
        template
            .renderer(object)
            .render(&record.as_record(&fields, &values), &mut out);
        out
    }

    #[test]
    fn dates_come_from_the_record_time_in_utc() {
        // 2024-03-01T23:05:00Z
        let record = TestRecord::at(1_709_334_300_000_000_000);
        assert_eq!(render("alb-%Y.%m.%d-%H", &record, &[]), "alb-2024.03.01-23");
        assert_eq!(render("100%%-%Y", &record, &[]), "100%-2024");
    }

    #[test]
    fn fields_come_from_the_record_then_the_object() {
        let record = TestRecord::at(0)
            .with("load_balancer", TestValue::Str("app/web/1".into()))
            .with("status", TestValue::Int(503))
            .with("empty", TestValue::Str(String::new()));
        let object = [
            ("account".to_owned(), "123456789012".to_owned()),
            ("load_balancer".to_owned(), "from-key".to_owned()),
        ];
        assert_eq!(
            render(
                "/aws/elb/{load_balancer}/{account}/{status}",
                &record,
                &object
            ),
            "/aws/elb/app/web/1/123456789012/503"
        );
        assert_eq!(render("{missing}-{empty}", &record, &object), "---");
    }

    #[test]
    fn constant_templates_are_told_apart() {
        assert_eq!(
            Template::parse("/aws/100%%").unwrap().constant().as_deref(),
            Some("/aws/100%")
        );
        assert_eq!(Template::parse("x-%Y").unwrap().constant(), None);
        assert_eq!(Template::parse("{a}").unwrap().constant(), None);
    }

    #[test]
    fn malformed_templates_say_where() {
        assert_eq!(
            Template::parse("a-%Q").unwrap_err(),
            "%Q at character 2: only %Y, %m, %d, %H and %% are known"
        );
        assert_eq!(
            Template::parse("x{field").unwrap_err(),
            "`{` at character 1 is not closed"
        );
        assert_eq!(
            Template::parse("{}").unwrap_err(),
            "empty `{}` at character 0"
        );
        assert!(
            Template::parse("trailing %")
                .unwrap_err()
                .starts_with("the end at character 9")
        );
    }
}
