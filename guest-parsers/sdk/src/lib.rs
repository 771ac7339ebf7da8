//! The parser SDK: write a log parser as plain Rust, get an s3logd component.
//!
//! A parser implements [`Parser`]: it describes itself, opens a session per
//! object and turns one line into zero or more rows. The SDK does everything
//! else: the WIT export (`export_parser!`), splitting batches into lines,
//! the row encoding, error entries and counters. The same code runs natively
//! through [`BatchParser`], which is how parsers are unit-tested and
//! benchmarked without WebAssembly.
//!
//! ```
//! use s3logd_parser_sdk::{Description, Options, Output, Parser};
//!
//! s3logd_parser_sdk::fields! {
//!     mod field {
//!         FIRST = "first": String, "the first word";
//!     }
//! }
//!
//! struct Words;
//!
//! impl Parser for Words {
//!     fn describe() -> Description {
//!         Description::new("words", env!("CARGO_PKG_VERSION"), "first word of a line")
//!             .fields(field::schema())
//!     }
//!     fn open(_key: &str, _options: &Options) -> Result<Self, String> {
//!         Ok(Words)
//!     }
//!     fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
//!         let first = line.split(' ').next().ok_or("empty line")?;
//!         out.row().str(field::FIRST, first);
//!         Ok(())
//!     }
//! }
//!
//! s3logd_parser_sdk::export_parser!(Words);
//! ```
//!
//! Static fields are declared with [`fields!`], which gives each one an id
//! and the schema from the same list; fields named by the data (a header
//! line, JSON keys) are declared at run time with [`Output::declare`] or
//! [`DeclaredFields`].

mod batch;
mod declared;
mod describe;
mod fields;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;
pub mod time;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod component;

pub use batch::{BatchParser, FieldId, MAX_CARRIED_BYTES, Output, Row};
pub use declared::DeclaredFields;
pub use describe::{Description, Field, Input, OptionDoc, Options};
pub use s3logd_rows::FieldType;

/// A log format parser. One value of the implementing type parses one object.
pub trait Parser: Sized + 'static {
    /// Name, version, detection patterns, options and static fields.
    fn describe() -> Description;

    /// Starts an object. `options` holds only options named in
    /// [`Description::options`]; the SDK refuses any other.
    fn open(object_key: &str, options: &Options) -> Result<Self, String>;

    /// Parses one line (without its line ending) into rows; a parser that
    /// declares [`Description::json_documents`] gets a whole document here.
    ///
    /// Call [`Output::row`] once per record. A line that yields no row and
    /// no error is counted as skipped (headers, comments). Returning an error
    /// discards the row being built and records the error against this line;
    /// rows already finished for the line are kept.
    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String>;
}

/// Exports a [`Parser`] as the `s3logd:parser` component interface.
///
/// Expands to nothing when not compiling for WebAssembly, so the crate
/// stays usable (and testable) natively.
#[macro_export]
macro_rules! export_parser {
    ($parser:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Component;
            impl $crate::component::Guest for Component {
                type Session = $crate::component::ComponentSession<$parser>;
                fn describe() -> $crate::component::Info {
                    $crate::component::describe::<$parser>()
                }
                fn open(
                    object_key: ::std::string::String,
                    options: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<$crate::component::Session, ::std::string::String> {
                    $crate::component::open::<$parser>(&object_key, options)
                }
            }
            $crate::component::bindings::export!(Component with_types_in $crate::component::bindings);
        };
    };
}
