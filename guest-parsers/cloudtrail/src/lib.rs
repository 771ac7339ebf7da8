//! AWS CloudTrail log files: each object is one JSON document
//! `{"Records":[…]}`, as AWS writes it on one (often several-megabyte) line
//! or pretty-printed over many, as AWS's documentation shows it; the SDK
//! hands the parser the whole document either way. Each element is a
//! row: `eventTime` becomes `_time`, `_msg` is the element's own JSON text
//! (a slice of the line, never re-serialised), and the other keys are
//! flattened by `s3logd-json-fields`, except the service-specific objects
//! (`requestParameters`, `responseElements`, `additionalEventData`,
//! `serviceEventDetails`), kept as JSON text: their keys differ for every
//! API call, and flattening them would create thousands of fields (beyond
//! Elasticsearch's default limit of 1000 per index).
//!
//! Elements are read one by one as the document streams through the JSON
//! reader; a bad element is an error of its own and the others still
//! become rows. Digest files (`CloudTrail-Digest` in the key) hold no
//! events and are skipped whole.

use std::borrow::Cow;
use std::fmt;

use s3logd_json_fields::{Flat, JsonFields, Leaf, RawValue, Text};
use s3logd_parser_sdk::time::parse_iso8601;
use s3logd_parser_sdk::{Description, Options, Output, Parser};
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// Claimed paths: the record time, then the objects kept as JSON text.
const CLAIMS: [&str; 5] = [
    "eventTime",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
];

pub struct CloudTrail {
    fields: JsonFields,
    /// A digest file: nothing in it is an event.
    digest: bool,
}

impl Parser for CloudTrail {
    fn describe() -> Description {
        Description::new(
            "cloudtrail",
            env!("CARGO_PKG_VERSION"),
            "AWS CloudTrail log files, one row per event",
        )
        .format("AWS CloudTrail log file")
        .key_pattern(r"(^|/)\d{12}_CloudTrail_[a-z0-9-]+_\d{8}T\d{4}Z_[A-Za-z0-9]+\.json(\.gz)?$")
        .first_line_pattern(r#"^\{\s*"Records"\s*:\s*\["#)
        .json_documents()
        .time_source("eventTime")
    }

    fn open(key: &str, _options: &Options) -> Result<Self, String> {
        Ok(CloudTrail {
            fields: JsonFields::new(),
            digest: key.contains("CloudTrail-Digest"),
        })
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        if self.digest {
            return Ok(());
        }
        let mut deserializer = serde_json::Deserializer::from_str(line);
        Document { trail: self, out }
            .deserialize(&mut deserializer)
            .and_then(|()| deserializer.end())
            .map_err(|e| format!("not a CloudTrail log file: {e}"))
    }
}

impl CloudTrail {
    /// One element of `Records`: a row, or an error naming the element.
    fn record(&mut self, out: &mut Output, index: usize, event: &RawValue) {
        if let Err(reason) = self.event_row(out, event) {
            out.error(&format!("Records[{index}]: {reason}"));
        }
    }

    fn event_row(&mut self, out: &mut Output, event: &RawValue) -> Result<(), String> {
        let mut flat = Flat::new();
        self.fields
            .object(out, event.get(), "", &CLAIMS, &mut flat)
            .map_err(|e| e.to_string())?;
        let time = flat.claimed(0).ok_or("no eventTime")?;
        let time = serde_json::from_str::<Text>(time.get())
            .ok()
            .and_then(|text| parse_iso8601(&text.0))
            .ok_or_else(|| format!("eventTime {} is not an ISO 8601 time", time.get()))?;
        for (slot, name) in CLAIMS.iter().enumerate().skip(1) {
            let Some(value) = flat.claimed(slot) else {
                continue;
            };
            if value.get().starts_with(['{', '[']) {
                flat.push(
                    self.fields.id(out, name),
                    Leaf::Str(Cow::Borrowed(value.get())),
                );
            } else {
                self.fields
                    .value(out, name, value, &mut flat)
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut row = out.row();
        row.time(time).msg(event.get());
        flat.write(&mut row);
        out.finish_row();
        Ok(())
    }
}

/// The top-level object: finds `Records`, ignores anything else.
struct Document<'a> {
    trail: &'a mut CloudTrail,
    out: &'a mut Output,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"Records":[…]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(Text(key)) = map.next_key()? {
            if key == "Records" {
                map.next_value_seed(Records {
                    trail: &mut *self.trail,
                    out: &mut *self.out,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(A::Error::custom("no Records array"))
        }
    }
}

/// The `Records` array, turned into rows element by element.
struct Records<'a> {
    trail: &'a mut CloudTrail,
    out: &'a mut Output,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Records array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(event) = seq.next_element::<&RawValue>()? {
            self.trail.record(self.out, index, event);
            index += 1;
        }
        Ok(())
    }
}

s3logd_parser_sdk::export_parser!(CloudTrail);

#[cfg(test)]
mod tests;
