//! AWS WAF logs: one JSON record per line, `timestamp` in epoch
//! milliseconds. Keys are flattened by `s3logd-json-fields`; the request
//! headers, which WAF writes as a list of `{name, value}` objects, become
//! one field per header, `httpRequest.headers.<lower-case name>`, so they can
//! be queried by name. A header sent more than once is joined the way HTTP
//! joins repeated fields: with `, `, or `; ` for `cookie` (RFC 9113 §8.2.3).

use std::borrow::Cow;

use s3logd_json_fields::{EpochUnit, Flat, JsonFields, Leaf, RawValue};
use s3logd_parser_sdk::{Description, Options, Output, Parser};
use serde::Deserialize;

const TIMESTAMP: &str = "timestamp";
const HEADERS: &str = "httpRequest.headers";

pub struct Waf {
    fields: JsonFields,
    /// `httpRequest.headers.<name>`, rebuilt per header without allocating.
    header_field: String,
}

impl Parser for Waf {
    fn describe() -> Description {
        Description::new(
            "waf",
            env!("CARGO_PKG_VERSION"),
            "AWS WAF web ACL traffic logs",
        )
        .format("AWS WAF log")
        .key_pattern(r"(^|/)\d{12}_waflogs_[^/]+\.log(\.gz)?$")
        .first_line_pattern(r#"^\{"timestamp":\d+,"formatVersion":\d+,"webaclId":""#)
        .first_line_pattern(r#"^\{.*"webaclId":"arn:aws:wafv2:"#)
        .time_source("timestamp (epoch milliseconds)")
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Waf {
            fields: JsonFields::new(),
            header_field: String::new(),
        })
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let mut flat = Flat::new();
        self.fields
            .object(out, line, "", &[TIMESTAMP, HEADERS], &mut flat)
            .map_err(|e| format!("not a WAF JSON record: {e}"))?;
        let time = flat.claimed(0).ok_or("no timestamp")?;
        let time = EpochUnit::Millis
            .parse(time.get())
            .ok_or_else(|| format!("timestamp {} is not epoch milliseconds", time.get()))?;
        if let Some(headers) = flat.claimed(1) {
            self.headers(out, headers, &mut flat)
                .map_err(|e| format!("{HEADERS}: {e}"))?;
        }
        let mut row = out.row();
        row.time(time);
        flat.write(&mut row);
        Ok(())
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

impl Waf {
    /// One field per header name; anything but a list of `{name, value}`
    /// is flattened like any other value instead of being lost.
    fn headers<'de>(
        &mut self,
        out: &mut Output,
        raw: &'de RawValue,
        flat: &mut Flat<'de>,
    ) -> Result<(), serde_json::Error> {
        let Ok(headers) = serde_json::from_str::<Vec<Header<'de>>>(raw.get()) else {
            return self.fields.value(out, HEADERS, raw, flat);
        };
        for (name, value) in join_repeated(headers) {
            self.header_field.clear();
            self.header_field.push_str(HEADERS);
            self.header_field.push('.');
            self.header_field.push_str(&name);
            flat.push(self.fields.id(out, &self.header_field), Leaf::Str(value));
        }
        Ok(())
    }
}

/// Headers by lower-case name, in first-seen order, repeats joined.
fn join_repeated(headers: Vec<Header<'_>>) -> Vec<(String, Cow<'_, str>)> {
    let mut joined: Vec<(String, Cow<'_, str>)> = Vec::with_capacity(headers.len());
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        match joined.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, value)) => {
                let value = value.to_mut();
                value.push_str(if name == "cookie" { "; " } else { ", " });
                value.push_str(&header.value);
            }
            None => joined.push((name, header.value)),
        }
    }
    joined
}

s3logd_parser_sdk::export_parser!(Waf);

#[cfg(test)]
mod tests;
