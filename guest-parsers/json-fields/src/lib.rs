//! Turning JSON log records into s3logd rows, shared by the JSON-family
//! parsers (WAF, CloudTrail, CloudWatch Logs through Firehose, JSON lines)
//! so that every JSON source reads the same way:
//!
//! - keys keep their JSON names; nested objects are flattened with `.`
//!   (`httpRequest.clientIp`);
//! - a field is declared with type `any` the first time its name is seen in
//!   a session;
//! - `null` and the string `-` (AWS's "no value") are absent;
//! - an array of strings becomes a string list and an array of integers an
//!   integer list; an empty array is absent; any other array (objects,
//!   floats, booleans, mixed) is kept as its JSON text, so one record can
//!   never spread over an unbounded number of fields (`ruleGroupList[7].…`);
//! - integers beyond `i64` keep their decimal text instead of losing digits.
//!
//! A caller *claims* the paths it handles itself (the record time, a list of
//! HTTP headers) and receives those values raw, unflattened.

mod epoch;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use s3logd_parser_sdk::{FieldId, FieldType, Output, Row};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

pub use epoch::EpochUnit;
pub use serde_json::value::RawValue;

/// One flattened value.
#[derive(Clone, Debug, PartialEq)]
pub enum Leaf<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    StrList(Vec<Cow<'de, str>>),
    IntList(Vec<i64>),
    /// An array that is not a plain list of strings or integers, as JSON.
    Json(String),
}

/// The JSON-named fields of one session: names to ids, declared on first sight.
#[derive(Default)]
pub struct JsonFields {
    ids: HashMap<String, FieldId>,
    /// The path being walked; kept to reuse its allocation.
    path: String,
}

/// The values of one record, ready to be written into a row.
#[derive(Debug, Default)]
pub struct Flat<'de> {
    values: Vec<(FieldId, Leaf<'de>)>,
    claimed: Vec<Option<&'de RawValue>>,
}

impl JsonFields {
    pub fn new() -> JsonFields {
        JsonFields::default()
    }

    /// The id of field `name`, declaring it (type `any`) the first time.
    pub fn id(&mut self, out: &mut Output, name: &str) -> FieldId {
        field_id(&mut self.ids, out, name)
    }

    /// Flattens the JSON object `json` into `flat`, its keys under `prefix`
    /// (empty for none). A value whose full path is `claims[i]` is not
    /// flattened but left in [`Flat::claimed`]`(i)`. On error (not JSON, not
    /// an object) `flat` gets no values.
    pub fn object<'de>(
        &mut self,
        out: &mut Output,
        json: &'de str,
        prefix: &str,
        claims: &[&str],
        flat: &mut Flat<'de>,
    ) -> Result<(), serde_json::Error> {
        if flat.claimed.len() < claims.len() {
            flat.claimed.resize(claims.len(), None);
        }
        let kept = flat.values.len();
        self.path.clear();
        self.path.push_str(prefix);
        let mut walk = Walk {
            ids: &mut self.ids,
            path: &mut self.path,
            out,
            flat,
            claims,
        };
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let result = ObjectSeed(&mut walk)
            .deserialize(&mut deserializer)
            .and_then(|()| deserializer.end());
        if result.is_err() {
            flat.values.truncate(kept);
        }
        result
    }

    /// Flattens one JSON value (typically a claimed one the caller decided
    /// not to use after all) as field `path`.
    pub fn value<'de>(
        &mut self,
        out: &mut Output,
        path: &str,
        raw: &'de RawValue,
        flat: &mut Flat<'de>,
    ) -> Result<(), serde_json::Error> {
        self.path.clear();
        self.path.push_str(path);
        let mut walk = Walk {
            ids: &mut self.ids,
            path: &mut self.path,
            out,
            flat,
            claims: &[],
        };
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        ValueSeed(&mut walk).deserialize(&mut deserializer)
    }
}

impl<'de> Flat<'de> {
    pub fn new() -> Flat<'de> {
        Flat::default()
    }

    /// The value found at the `index`th claimed path, unless missing or null.
    pub fn claimed(&self, index: usize) -> Option<&'de RawValue> {
        self.claimed.get(index).copied().flatten()
    }

    /// Adds a value the caller built itself.
    pub fn push(&mut self, field: FieldId, leaf: Leaf<'de>) {
        self.values.push((field, leaf));
    }

    /// Sets every value on `row`.
    pub fn write(&self, row: &mut Row<'_>) {
        for (field, leaf) in &self.values {
            let field = *field;
            match leaf {
                Leaf::Str(s) => row.str(field, s),
                Leaf::Int(v) => row.int(field, *v),
                Leaf::Float(v) => row.float(field, *v),
                Leaf::Bool(v) => row.bool(field, *v),
                Leaf::StrList(items) => row.str_list(field, items.iter().map(|s| s.as_ref())),
                Leaf::IntList(items) => row.int_list(field, items.iter().copied()),
                Leaf::Json(text) => row.str(field, text),
            };
        }
    }
}

/// A JSON string, borrowed from the input unless it had escapes.
pub struct Text<'de>(pub Cow<'de, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

fn field_id(ids: &mut HashMap<String, FieldId>, out: &mut Output, name: &str) -> FieldId {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = out.declare(name, FieldType::Any);
    ids.insert(name.to_owned(), id);
    id
}

/// The state of one flattening pass.
struct Walk<'w, 'de> {
    ids: &'w mut HashMap<String, FieldId>,
    path: &'w mut String,
    out: &'w mut Output,
    flat: &'w mut Flat<'de>,
    claims: &'w [&'w str],
}

impl<'de> Walk<'_, 'de> {
    fn push(&mut self, leaf: Leaf<'de>) {
        let id = field_id(self.ids, self.out, self.path);
        self.flat.values.push((id, leaf));
    }

    fn push_str(&mut self, s: Cow<'de, str>) {
        if s != "-" {
            self.push(Leaf::Str(s));
        }
    }

    fn map<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key()? {
            let parent = self.path.len();
            if parent > 0 {
                self.path.push('.');
            }
            self.path.push_str(&key);
            match self
                .claims
                .iter()
                .position(|claim| *claim == self.path.as_str())
            {
                Some(slot) => {
                    let raw: &'de RawValue = map.next_value()?;
                    self.flat.claimed[slot] = (raw.get() != "null").then_some(raw);
                }
                None => map.next_value_seed(ValueSeed(self))?,
            }
            self.path.truncate(parent);
        }
        Ok(())
    }
}

/// The top level: only an object will do.
struct ObjectSeed<'a, 'w, 'de>(&'a mut Walk<'w, 'de>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.map(map)
    }
}

/// Any value below the top level, named by the walk's current path.
struct ValueSeed<'a, 'w, 'de>(&'a mut Walk<'w, 'de>);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Leaf::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Leaf::Int(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(match i64::try_from(v) {
            Ok(v) => Leaf::Int(v),
            Err(_) => Leaf::Str(Cow::Owned(v.to_string())),
        });
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Leaf::Float(v));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.0.push_str(Cow::Borrowed(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_str(Cow::Owned(v.to_owned()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push_str(Cow::Owned(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items: Vec<&'de RawValue> = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        if let Some(leaf) = array_leaf(&items).map_err(A::Error::custom)? {
            self.0.push(leaf);
        }
        Ok(())
    }
}

/// A list when the items are all strings or all integers, else JSON text.
fn array_leaf<'de>(items: &[&'de RawValue]) -> Result<Option<Leaf<'de>>, serde_json::Error> {
    if items.is_empty() {
        return Ok(None);
    }
    if items.iter().all(|item| item.get().starts_with('"')) {
        let strings = items
            .iter()
            .map(|item| serde_json::from_str::<Text<'de>>(item.get()).map(|text| text.0))
            .collect::<Result<_, _>>()?;
        return Ok(Some(Leaf::StrList(strings)));
    }
    let integers: Option<Vec<i64>> = items.iter().map(|item| item.get().parse().ok()).collect();
    Ok(Some(match integers {
        Some(integers) => Leaf::IntList(integers),
        None => {
            let texts: Vec<&str> = items.iter().map(|item| item.get()).collect();
            Leaf::Json(format!("[{}]", texts.join(",")))
        }
    }))
}

#[cfg(test)]
mod tests;
