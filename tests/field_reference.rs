//! Generates `docs/parsers.md`, the field reference of every bundled parser,
//! and checks that the committed file is what the parsers say today.
//!
//! Everything in the reference comes from the components the binary embeds:
//! each parser's self-description (what `s3logd parsers` prints: name,
//! description, formats, detection patterns, `_time` source, options and
//! fields) and, for the examples, the records the parser makes of its own
//! samples (`guest-parsers/<parser>/samples/`, parsed as `s3logd` parses an
//! object: decompressed, cut into batches, run in the sandbox).
//!
//! When a parser changes, regenerate the file:
//!
//! ```sh
//! S3LOGD_BLESS=1 cargo test -p s3logd --test field_reference
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use s3logd::decode::BatchLimits;
use s3logd::parse::{Field, Limits, LoadedParser, Parsers, Record, RecordVisitor, Runtime};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};
use s3logd::sink::json::{write_str, write_text};
use s3logd_rows::Value;

/// The generated file, relative to the workspace root.
const REFERENCE: &str = "docs/parsers.md";
const BLESS: &str = "S3LOGD_BLESS";
const REGENERATE: &str = "S3LOGD_BLESS=1 cargo test -p s3logd --test field_reference";

/// Examples longer than this many characters are cut, with `…`.
const EXAMPLE_CHARS: usize = 60;

/// Option names and values for one sample.
type Options = &'static [(&'static str, &'static str)];

/// Samples a parser cannot read without options (the `regex` parser has no
/// format of its own): (parser, sample file, options).
const SAMPLE_OPTIONS: &[(&str, &str, Options)] = &[(
    "regex",
    "nginx-combined.log",
    &[
        (
            "pattern",
            r#"^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$"#,
        ),
        ("time_field", "time_local"),
        ("time_format", "%d/%b/%Y:%H:%M:%S %z"),
    ],
)];

#[test]
fn docs_parsers_md_is_generated_from_the_bundled_parsers() {
    let root = workspace();
    let runtime = Arc::new(Runtime::new(Limits::default()).expect("the parser runtime"));
    let parsers = Parsers::load(runtime, &[]).expect("the bundled parsers");
    let rendered = render(&root, &parsers);
    let path = root.join(REFERENCE);

    if std::env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(path.parent().expect("docs/")).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!(
            "{REFERENCE} cannot be read ({e}).\nIt is generated: run `{REGENERATE}` to write it."
        ),
    };
    if committed != rendered {
        panic!(
            "{REFERENCE} is not what the bundled parsers describe today ({}).\n\
             The file is generated from the parsers' self-descriptions and samples; \
             do not edit it by hand. Regenerate it with:\n\n    {REGENERATE}\n",
            first_difference(&committed, &rendered)
        );
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is in the workspace")
        .to_path_buf()
}

fn first_difference(committed: &str, rendered: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut rendered_lines = rendered.lines();
    for number in 1.. {
        match (committed_lines.next(), rendered_lines.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => return "they differ only in line endings".to_string(),
            (a, b) => {
                return format!(
                    "first difference at line {number}:\n  in the file: {}\n  generated:   {}",
                    a.map_or("(end of file)".to_string(), |l| format!("{l:?}")),
                    b.map_or("(end of file)".to_string(), |l| format!("{l:?}")),
                );
            }
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------------
// Samples and what the parser makes of them

/// One sample object of a parser.
struct Sample {
    file: String,
    path: PathBuf,
    /// The S3 key it is parsed under (from `keys.tsv`, else its file name).
    key: String,
    options: Vec<(String, String)>,
}

/// The sample objects of `parser`, by file name.
fn samples(root: &Path, parser: &str) -> Vec<Sample> {
    let dir = root.join("guest-parsers").join(parser).join("samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let keys: BTreeMap<String, String> = std::fs::read_to_string(dir.join("keys.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect();
    let mut files: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "keys.tsv" && !name.starts_with('.') && !name.ends_with(".md"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let options = SAMPLE_OPTIONS
                .iter()
                .find(|(p, f, _)| *p == parser && *f == file)
                .map(|(_, _, options)| {
                    options
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            Sample {
                key: keys.get(&file).cloned().unwrap_or_else(|| file.clone()),
                path: dir.join(&file),
                file,
                options,
            }
        })
        .collect()
}

/// What the samples of one parser showed.
#[derive(Default)]
struct Seen {
    /// The first present value of each field, by (name, type), as shown.
    examples: BTreeMap<(String, &'static str), String>,
    /// Fields declared while parsing (not in the description), in the
    /// order first seen.
    declared: Vec<Field>,
    first_time: Option<i64>,
    /// (sample file, records, line errors) per sample.
    counts: Vec<(String, u64, u64)>,
}

struct Collect<'s> {
    seen: &'s mut Seen,
    described: usize,
    records: u64,
    errors: u64,
}

impl RecordVisitor for Collect<'_> {
    fn record(&mut self, record: &Record<'_>) {
        self.records += 1;
        if self.seen.first_time.is_none() {
            self.seen.first_time = record.time;
        }
        for field in record.fields.iter().skip(self.described) {
            if !self
                .seen
                .declared
                .iter()
                .any(|known| known.name == field.name && known.ty == field.ty)
            {
                self.seen.declared.push(field.clone());
            }
        }
        for (field, value) in record.present() {
            let Some(shown) = example(&value) else {
                continue;
            };
            self.seen
                .examples
                .entry((field.name.clone(), field.ty.name()))
                .or_insert(shown);
        }
    }

    fn line_error(&mut self, _line: u64, _text: &str, _reason: &str) {
        self.errors += 1;
    }
}

fn parse_samples(parsers: &Parsers, parser: &Arc<LoadedParser>, samples: &[Sample]) -> Seen {
    let mut seen = Seen::default();
    for sample in samples {
        let bytes = std::fs::read(&sample.path).unwrap();
        let mut collect = Collect {
            seen: &mut seen,
            described: parser.info.fields.len(),
            records: 0,
            errors: 0,
        };
        let mut summary = ObjectSummary::default();
        let choice = ParserChoice::Named(parser.clone(), sample.options.clone());
        let result = parse_object(
            parsers,
            &choice,
            &sample.key,
            bytes.as_slice(),
            BatchLimits::default(),
            &mut collect,
            &mut summary,
        );
        if let Err(e) = result {
            panic!(
                "{}: the {} parser could not read its own sample: {e}\n\
                 (a sample that needs options goes into SAMPLE_OPTIONS in {})",
                sample.path.display(),
                parser.info.name,
                file!()
            );
        }
        let (records, errors) = (collect.records, collect.errors);
        seen.counts.push((sample.file.clone(), records, errors));
    }
    seen
}

// ---------------------------------------------------------------------------
// Rendering

/// The whole reference.
fn render(root: &Path, all: &Parsers) -> String {
    let mut parsers: Vec<&Arc<LoadedParser>> = all.iter().collect();
    parsers.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let mut seen: Vec<Seen> = Vec::new();
    let mut sample_lists = Vec::new();
    for parser in &parsers {
        let samples = samples(root, &parser.info.name);
        seen.push(parse_samples(all, parser, &samples));
        sample_lists.push(samples);
    }

    let mut out = String::new();
    let _ = writeln!(out, "# Bundled parsers: field reference");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "<!-- Generated by tests/field_reference.rs; do not edit by hand. \
         Regenerate with: {REGENERATE} -->"
    );
    let _ = writeln!(out);
    out.push_str(INTRO);
    let _ = writeln!(out);
    let _ = writeln!(out, "| parser | reads |");
    let _ = writeln!(out, "|---|---|");
    for parser in &parsers {
        let name = &parser.info.name;
        let _ = writeln!(
            out,
            "| [`{name}`](#{}) | {} |",
            anchor(name),
            cell(&parser.info.description)
        );
    }
    for ((parser, seen), samples) in parsers.iter().zip(&seen).zip(&sample_lists) {
        out.push('\n');
        render_parser(&mut out, parser, seen, samples);
    }
    out
}

const INTRO: &str = "\
Every field each bundled parser emits, with its type, its meaning and an
example. The names, types, descriptions, detection patterns and options are
the parsers' own self-descriptions (what `s3logd parsers` prints); the
examples are the first value each field takes in the parser's bundled
samples (`guest-parsers/<parser>/samples/`), parsed the way s3logd parses an
S3 object, and written as the field appears in the JSON record. `—` means
no sample has a value for the field; long examples are cut with `…`.

Besides these fields every record has `_time` and `_msg`, and the collector
adds the fields it knows from the object (`bucket`, `key`, `log_type`,
`account`, `region`, `load_balancer`, `distribution_id`). How records are
shaped (absent values, numbers, times, lists, `extra_N`) is in
[record-conventions.md](record-conventions.md).

Types: `string`, `integer`, `float`, `boolean`, `timestamp` (RFC 3339, UTC),
`string-list`, `integer-list` (JSON arrays), and `any` for fields of JSON
sources, whose values keep the type the source gave them.
";

fn render_parser(out: &mut String, parser: &LoadedParser, seen: &Seen, samples: &[Sample]) {
    let info = &parser.info;
    let _ = writeln!(out, "## {}", info.name);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", sentence(&info.description));
    let _ = writeln!(out);
    let lists = [
        ("Formats", &info.formats, false),
        ("S3 key patterns", &info.key_patterns, true),
        ("First-line patterns", &info.first_line_patterns, true),
    ];
    for (label, items, as_code) in lists {
        let items: Vec<String> = if as_code {
            items.iter().map(|item| code(item)).collect()
        } else {
            items.clone()
        };
        let shown = if items.is_empty() {
            "none".to_string()
        } else {
            items.join("; ")
        };
        let _ = writeln!(out, "- {label}: {shown}");
    }
    let time_source = if info.time_source.is_empty() {
        "not declared".to_string()
    } else {
        info.time_source.clone()
    };
    let time_example = seen
        .first_time
        .map(|nanos| {
            let mut text = Vec::new();
            write_text(&mut text, &Value::Timestamp(nanos));
            format!(
                "; in the first sample record: {}",
                code(&String::from_utf8(text).unwrap())
            )
        })
        .unwrap_or_default();
    let _ = writeln!(out, "- `_time`: {time_source}{time_example}");
    if samples.is_empty() {
        let _ = writeln!(out, "- Samples: none");
    } else {
        let listed: Vec<String> = seen
            .counts
            .iter()
            .zip(samples)
            .map(|((file, records, errors), sample)| {
                let mut text = format!("{} ({}", code(file), plural(*records, "record"));
                if *errors > 0 {
                    let _ = write!(text, ", {}", plural(*errors, "line error"));
                }
                if !sample.options.is_empty() {
                    text.push_str(", with the options below");
                }
                text.push(')');
                text
            })
            .collect();
        let _ = writeln!(
            out,
            "- Samples (`guest-parsers/{}/samples/`): {}",
            info.name,
            listed.join(", ")
        );
    }
    let _ = writeln!(out);

    if info.options.is_empty() {
        let _ = writeln!(out, "Options: none.");
    } else {
        let _ = writeln!(out, "| option | default | meaning |");
        let _ = writeln!(out, "|---|---|---|");
        for option in &info.options {
            let default = option
                .default_value
                .as_deref()
                .map_or("—".to_string(), |d| cell(&code(d)));
            let _ = writeln!(
                out,
                "| `{}` | {default} | {} |",
                option.name,
                cell(&option.description)
            );
        }
    }
    for sample in samples.iter().filter(|s| !s.options.is_empty()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "The sample {} is parsed with:", code(&sample.file));
        let _ = writeln!(out);
        for (name, value) in &sample.options {
            let _ = writeln!(out, "- `{name}` = {}", code(value));
        }
    }
    let _ = writeln!(out);

    if info.fields.is_empty() {
        let _ = writeln!(
            out,
            "The parser describes no fixed fields: it declares them from the data it reads."
        );
    } else {
        let _ = writeln!(out, "| field | type | meaning | example |");
        let _ = writeln!(out, "|---|---|---|---|");
        for field in &info.fields {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                field.name,
                field.ty.name(),
                cell(&field.description),
                shown_example(seen, field)
            );
        }
    }
    if !seen.declared.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Fields declared while reading (header columns, JSON keys, `extra_N`), as the \
             samples produce them; other objects may declare others:"
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| field | type | example |");
        let _ = writeln!(out, "|---|---|---|");
        for field in &seen.declared {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&code(&field.name)),
                field.ty.name(),
                shown_example(seen, field)
            );
        }
    }
}

fn shown_example(seen: &Seen, field: &Field) -> String {
    seen.examples
        .get(&(field.name.clone(), field.ty.name()))
        .map_or("—".to_string(), |example| cell(&code(&shorten(example))))
}

/// A value as the JSON record carries it; `None` for what the JSON
/// writer leaves out (absent, empty strings, non-finite numbers).
fn example(value: &Value<'_>) -> Option<String> {
    let mut out = Vec::new();
    match value {
        Value::Absent => return None,
        Value::Str("") => return None,
        Value::Float(f) if !f.is_finite() => return None,
        Value::Str(s) => write_str(&mut out, s),
        Value::Timestamp(_) => {
            out.push(b'"');
            write_text(&mut out, value);
            out.push(b'"');
        }
        _ => write_text(&mut out, value),
    }
    Some(String::from_utf8(out).expect("JSON text is UTF-8"))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= EXAMPLE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(EXAMPLE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `text` as a Markdown code span, whatever backticks it holds.
fn code(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') || longest > 0 {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` made safe for a table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// A description as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The anchor GitHub gives the heading `## name`.
fn anchor(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
