//! What a parser says about itself, and the options a user gives it.

use crate::FieldType;

/// A parser's self-description, mirrored into the WIT `info` record.
#[derive(Clone, Debug, Default)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub description: String,
    pub formats: Vec<String>,
    pub key_patterns: Vec<String>,
    pub first_line_patterns: Vec<String>,
    pub options: Vec<OptionDoc>,
    pub fields: Vec<Field>,
    pub time_source: String,
    /// What one `parse_line` call receives.
    pub input: Input,
}

/// What a parser's `parse_line` is handed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Input {
    /// Each line on its own.
    #[default]
    Lines,
    /// Whole JSON documents, however they are laid out over lines: from the
    /// line where an object or array opens to the line where its brackets
    /// close. A document that spans lines is handed over compacted (the
    /// whitespace between its tokens removed), so the parser gets the same
    /// text as for the document's one-line form.
    ///
    /// A broken document does not swallow the lines after it: it ends at a
    /// line that stops inside a string (JSON strings cannot span lines), and
    /// before a line that opens an object or array in its first column
    /// where no value is expected (the line before ends in neither `[`, `,`
    /// nor `:`), as the next line of NDJSON cut short by a crash does. A
    /// line outside any document (a scalar, garbage) is handed over alone;
    /// blank lines between documents are skipped.
    ///
    /// Errors of a document are reported on the line it starts on (or ends
    /// on, when it began in an earlier batch). The object's end reaches the
    /// parser too: a document left open is handed over as it is, so a
    /// streaming parser keeps what came before the cut and reports the rest.
    JsonDocuments,
}

impl Description {
    pub fn new(name: &str, version: &str, description: &str) -> Description {
        Description {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            ..Description::default()
        }
    }

    pub fn format(mut self, format: &str) -> Self {
        self.formats.push(format.into());
        self
    }

    /// A regular expression (Rust `regex` syntax) matched against S3 keys.
    pub fn key_pattern(mut self, pattern: &str) -> Self {
        self.key_patterns.push(pattern.into());
        self
    }

    /// A regular expression matched against the start of an object: its
    /// first line, and its first 4 KiB across line breaks (`^` is the start
    /// of the object, `$` the end of the first line). Among parsers whose
    /// patterns match, the longest matched text wins.
    pub fn first_line_pattern(mut self, pattern: &str) -> Self {
        self.first_line_patterns.push(pattern.into());
        self
    }

    pub fn option(mut self, name: &str, description: &str, default: Option<&str>) -> Self {
        self.options.push(OptionDoc {
            name: name.into(),
            description: description.into(),
            default_value: default.map(Into::into),
        });
        self
    }

    /// `parse_line` receives whole JSON documents instead of single lines
    /// (see [`Input::JsonDocuments`]): for formats such as CloudTrail whose
    /// files may be one line or pretty-printed over thousands.
    pub fn json_documents(mut self) -> Self {
        self.input = Input::JsonDocuments;
        self
    }

    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    pub fn fields(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.fields.extend(fields);
        self
    }

    pub fn time_source(mut self, source: &str) -> Self {
        self.time_source = source.into();
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub description: String,
}

impl Field {
    pub fn new(name: &str, ty: FieldType, description: &str) -> Field {
        Field {
            name: name.into(),
            ty,
            description: description.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionDoc {
    pub name: String,
    pub description: String,
    pub default_value: Option<String>,
}

/// The options a session was opened with, already checked against the
/// parser's [`Description::options`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    /// Keeps `pairs` if every name is documented in `accepted`.
    pub fn check(pairs: Vec<(String, String)>, accepted: &[OptionDoc]) -> Result<Options, String> {
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, _)| !accepted.iter().any(|doc| doc.name == *name))
        {
            let names: Vec<&str> = accepted.iter().map(|doc| doc.name.as_str()).collect();
            return Err(if names.is_empty() {
                format!("unknown option `{name}`: this parser takes no options")
            } else {
                format!(
                    "unknown option `{name}`: this parser accepts {}",
                    names.join(", ")
                )
            });
        }
        Ok(Options { pairs })
    }

    /// The value the user gave, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
