//! The key tree of the configuration, read off its `Deserialize` impls so that
//! environment overrides, unknown-key checks and the documentation test all
//! follow the structs without a hand-kept list of keys.
//!
//! A tracing deserializer offers every struct all of its fields, one element
//! to every list and nothing to every free-form map, and records what each
//! value asked for.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A single value; `text` when it is read as a string, so an environment
    /// value is taken verbatim instead of as TOML.
    Scalar { text: bool },
    /// A list of scalars.
    List,
    /// A struct: its keys in declaration order.
    Table(Vec<(&'static str, Shape)>),
    /// An array of tables such as `[[routes]]`, with the element's shape.
    TableList(Box<Shape>),
    /// A map with keys of the user's choosing (`headers`, `options`).
    FreeTable,
}

pub(super) fn shape_of<T: DeserializeOwned>() -> Shape {
    let mut shape = None;
    T::deserialize(Tracer { shape: &mut shape })
        .expect("configuration types deserialize from their traced shape");
    shape.expect("a traced type records its shape")
}

impl Shape {
    /// Every key below this table with its dotted path; array-of-tables
    /// elements appear as `routes.key_regex`.
    pub(super) fn key_paths(&self) -> Vec<(String, &Shape)> {
        let mut paths = Vec::new();
        self.collect_paths("", &mut paths);
        paths
    }

    fn collect_paths<'a>(&'a self, prefix: &str, paths: &mut Vec<(String, &'a Shape)>) {
        let fields = match self {
            Shape::Table(fields) => fields,
            Shape::TableList(element) => return element.collect_paths(prefix, paths),
            _ => return,
        };
        for (key, shape) in fields {
            let path = if prefix.is_empty() {
                (*key).to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            paths.push((path.clone(), shape));
            shape.collect_paths(&path, paths);
        }
    }
}

#[derive(Debug)]
struct TraceError(String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        TraceError(message.to_string())
    }
}

struct Tracer<'a> {
    shape: &'a mut Option<Shape>,
}

macro_rules! trace_scalars {
    ($($method:ident => $visit:ident($value:expr)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            *self.shape = Some(Shape::Scalar { text: false });
            visitor.$visit($value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    trace_scalars! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0), deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u8(0), deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f32(0.0), deserialize_f64 => visit_f64(0.0),
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, TraceError> {
        Err(de::Error::custom(
            "configuration types must name the type they read",
        ))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.shape = Some(Shape::Scalar { text: true });
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut element = None;
        let value = visitor.visit_seq(OneElement {
            shape: &mut element,
            given: false,
        })?;
        *self.shape = Some(match element {
            Some(table @ Shape::Table(_)) => Shape::TableList(Box::new(table)),
            _ => Shape::List,
        });
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.shape = Some(Shape::FreeTable);
        visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(
            &str,
            &str,
        )>()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut traced = Vec::with_capacity(fields.len());
        let value = visitor.visit_map(AllFields {
            fields,
            traced: &mut traced,
        })?;
        *self.shape = Some(Shape::Table(traced));
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        // Configuration enums are keywords such as `compression = "zstd"`.
        *self.shape = Some(Shape::Scalar { text: true });
        visitor.visit_enum(variants[0].into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

struct OneElement<'a> {
    shape: &'a mut Option<Shape>,
    given: bool,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = TraceError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        if std::mem::replace(&mut self.given, true) {
            return Ok(None);
        }
        seed.deserialize(Tracer { shape: self.shape }).map(Some)
    }
}

struct AllFields<'a> {
    fields: &'static [&'static str],
    traced: &'a mut Vec<(&'static str, Shape)>,
}

impl<'de> de::MapAccess<'de> for AllFields<'_> {
    type Error = TraceError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        let Some(field) = self.fields.get(self.traced.len()) else {
            return Ok(None);
        };
        seed.deserialize(field.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TraceError> {
        let field = self.fields[self.traced.len()];
        let mut shape = None;
        let value = seed.deserialize(Tracer { shape: &mut shape })?;
        self.traced
            .push((field, shape.expect("a traced value records its shape")));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        count: Option<u32>,
        tags: Vec<String>,
        items: Vec<Inner>,
        labels: BTreeMap<String, String>,
        inner: Inner,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    #[test]
    fn traces_every_kind_of_key() {
        let flag = || Shape::Table(vec![("flag", Shape::Scalar { text: false })]);
        assert_eq!(
            shape_of::<Outer>(),
            Shape::Table(vec![
                ("name", Shape::Scalar { text: true }),
                ("count", Shape::Scalar { text: false }),
                ("tags", Shape::List),
                ("items", Shape::TableList(Box::new(flag()))),
                ("labels", Shape::FreeTable),
                ("inner", flag()),
            ])
        );
        let paths: Vec<String> = shape_of::<Outer>()
            .key_paths()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            paths,
            [
                "name",
                "count",
                "tags",
                "items",
                "items.flag",
                "labels",
                "inner",
                "inner.flag"
            ]
        );
    }
}
