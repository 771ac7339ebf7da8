//! Static fields declared once, so that the ids a parser fills rows with and
//! the schema it describes come from the same list.

/// Declares a parser's static fields as a module: a [`FieldId`] constant
/// per field, plus `schema()`, the fields for [`Description::fields`], and
/// `name(id)`, a field's name for error messages.
///
/// Each entry is `ID = "name": Type, "description";`, where `Type` is a
/// [`FieldType`] variant. An id is its entry's position in the list, the
/// same list `schema()` is built from, so adding, removing or moving a
/// field can never leave an id pointing at another field. The description
/// is also the constant's documentation.
///
/// ```
/// use s3logd_parser_sdk::testing::parse_one;
/// use s3logd_parser_sdk::{Description, Options, Output, Parser, text};
///
/// s3logd_parser_sdk::fields! {
///     /// The fields of a `host:port status` line.
///     mod field {
///         HOST = "host": String, "client host";
///         PORT = "port": Integer, "client port";
///         STATUS = "status": Integer, "response status";
///     }
/// }
///
/// struct Access;
///
/// impl Parser for Access {
///     fn describe() -> Description {
///         Description::new("access", "0.1.0", "host:port status lines").fields(field::schema())
///     }
///     fn open(_key: &str, _options: &Options) -> Result<Self, String> {
///         Ok(Access)
///     }
///     fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
///         let (endpoint, status) = line.split_once(' ').ok_or("no status")?;
///         let (host, port) = text::split_host_port(endpoint).ok_or("no port")?;
///         let parse = |id, value| {
///             text::parse_int(value)
///                 .ok_or_else(|| format!("{} {value:?} is not an integer", field::name(id)))
///         };
///         let (port, status) = (parse(field::PORT, port)?, parse(field::STATUS, status)?);
///         out.row()
///             .str(field::HOST, host)
///             .int(field::PORT, port)
///             .int(field::STATUS, status);
///         Ok(())
///     }
/// }
///
/// let record = parse_one::<Access>("key", "192.0.2.1:443 200");
/// assert_eq!(record.str("host"), Some("192.0.2.1"));
/// assert_eq!(record.int("port"), Some(443));
/// assert_eq!(record.int("status"), Some(200));
///
/// let names: Vec<String> = field::schema().into_iter().map(|f| f.name).collect();
/// assert_eq!(names, ["host", "port", "status"]);
/// assert_eq!(field::name(field::STATUS), "status");
/// ```
///
/// [`FieldId`]: crate::FieldId
/// [`FieldType`]: crate::FieldType
/// [`Description::fields`]: crate::Description::fields
#[macro_export]
macro_rules! fields {
    (
        $(#[$module_attribute:meta])*
        $visibility:vis mod $module:ident {
            $($id:ident = $name:literal: $ty:ident, $description:literal;)*
        }
    ) => {
        $(#[$module_attribute])*
        $visibility mod $module {
            /// The entries in order: each id is its entry's discriminant.
            #[allow(non_camel_case_types)]
            enum Position {
                $($id),*
            }

            $(
                #[doc = $description]
                pub const $id: $crate::FieldId = Position::$id as $crate::FieldId;
            )*

            const ENTRIES: &[(&str, $crate::FieldType, &str)] =
                &[$(($name, $crate::FieldType::$ty, $description)),*];

            /// The fields in id order, for `Description::fields`.
            pub fn schema() -> ::std::vec::Vec<$crate::Field> {
                ENTRIES
                    .iter()
                    .map(|&(name, ty, description)| $crate::Field::new(name, ty, description))
                    .collect()
            }

            /// The name of the field `id`, one of this module's constants
            /// (a field declared while parsing has no entry here).
            pub fn name(id: $crate::FieldId) -> &'static str {
                ENTRIES[id].0
            }
        }
    };
}
