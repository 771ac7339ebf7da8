//! The WIT export: wit-bindgen's bindings and the glue behind `export_parser!`.

use std::cell::RefCell;

use crate::{BatchParser, Description, FieldType, Parser};

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "parser-component",
        pub_export_macro: true,
        default_bindings_module: "s3logd_parser_sdk::component::bindings",
    });
}

use bindings::exports::s3logd::parser::parser as wit;
pub use wit::{Guest, Info, Session};

/// A session resource: one [`BatchParser`] per object.
pub struct ComponentSession<P>(RefCell<BatchParser<P>>);

impl<P: Parser> wit::GuestSession for ComponentSession<P> {
    fn parse(&self, lines: String) -> Vec<u8> {
        self.0.borrow_mut().parse(&lines)
    }
}

pub fn open<P: Parser>(
    object_key: &str,
    options: Vec<(String, String)>,
) -> Result<Session, String> {
    let parser = BatchParser::<P>::open(object_key, options)?;
    Ok(Session::new(ComponentSession(RefCell::new(parser))))
}

pub fn describe<P: Parser>() -> Info {
    let d: Description = P::describe();
    Info {
        name: d.name,
        version: d.version,
        description: d.description,
        formats: d.formats,
        key_patterns: d.key_patterns,
        first_line_patterns: d.first_line_patterns,
        options: d
            .options
            .into_iter()
            .map(|o| wit::OptionDoc {
                name: o.name,
                description: o.description,
                default_value: o.default_value,
            })
            .collect(),
        fields: d
            .fields
            .into_iter()
            .map(|f| wit::Field {
                name: f.name,
                type_: field_type(f.ty),
                description: f.description,
            })
            .collect(),
        time_source: d.time_source,
    }
}

fn field_type(ty: FieldType) -> wit::FieldType {
    match ty {
        FieldType::String => wit::FieldType::String,
        FieldType::Integer => wit::FieldType::Integer,
        FieldType::Float => wit::FieldType::Float,
        FieldType::Boolean => wit::FieldType::Boolean,
        FieldType::Timestamp => wit::FieldType::Timestamp,
        FieldType::StringList => wit::FieldType::StringList,
        FieldType::IntegerList => wit::FieldType::IntegerList,
        FieldType::Any => wit::FieldType::Any,
    }
}
