//! An example custom parser, and the tutorial for writing your own.
//!
//! Read this tutorial rendered, with links into the SDK, by running
//! `cargo doc -p s3logd-example-logfmt --open` in a clone of the s3logd
//! repository.
//!
//! s3logd parses objects with WebAssembly components. The formats it
//! bundles are built into the binary, but any component that implements
//! the contract (`wit/parser.wit`, `s3logd:parser@0.1.0`) can be loaded at
//! run time, without rebuilding s3logd. This crate is such a parser, for
//! [logfmt](https://brandur.org/logfmt) lines:
//!
//! ```text
//! ts=2024-05-01T12:00:00Z level=info msg="hello world" duration_ms=12
//! ```
//!
//! Every key becomes a field, declared when the session first meets it.
//! Unquoted integers are integers; every other value is a string, quotes
//! removed and `\"` and `\\` unescaped (so `id="42"` stays a string); a key
//! without `=` is a flag, `true`. The value of the time key (`ts`, or the
//! option `time_key`) becomes the record time `_time` when it is an RFC 3339
//! time, and is otherwise kept as an ordinary field. `_msg` is the whole line.
//!
//! # Writing your own parser
//!
//! 1. Create a library crate anywhere (`cargo new --lib my-parser`) and make
//!    it both a WebAssembly component and a native library for tests:
//!
//!    ```toml
//!    [lib]
//!    crate-type = ["cdylib", "rlib"]
//!
//!    [dependencies]
//!    # From a clone of the s3logd repository:
//!    s3logd-parser-sdk = { path = "../s3logd/guest-parsers/sdk" }
//!    # or straight from git:
//!    # s3logd-parser-sdk = { git = "<URL of the s3logd repository>" }
//!    ```
//!
//!    Optionally add `.cargo/config.toml` with
//!    `[target.wasm32-wasip2] rustflags = ["-C", "target-feature=+simd128"]`:
//!    the SDK's line splitting runs markedly faster with SIMD.
//!
//! 2. Implement [`s3logd_parser_sdk::Parser`], as [`Logfmt`] does below:
//!    `describe` names the parser, its options and its static fields;
//!    `open` starts a session for one object; `parse_line` turns a line into
//!    rows with `out.row()` and its setters, or returns `Err(reason)` to
//!    record an error for that line (the next lines still parse). Keep the
//!    format logic in plain Rust (here the `logfmt` module) and end `lib.rs`
//!    with `s3logd_parser_sdk::export_parser!(YourParser);`.
//!
//!    Fields come in two kinds. Fields known only from the data, like
//!    logfmt's keys or the columns a header line names, are declared while
//!    parsing with `out.declare(name, type)` (or
//!    [`s3logd_parser_sdk::DeclaredFields`], which declares each name once).
//!    A format with a fixed set of fields declares them up front with
//!    [`s3logd_parser_sdk::fields!`]: one list gives each field an id
//!    constant and gives `describe` the schema, and since an id is its
//!    field's place in that same list, adding or moving a field cannot
//!    leave an id pointing at another one. For lines like
//!    `192.0.2.1:51234 "GET /index.html HTTP/1.1" 200`:
//!
//!    ```
//!    use s3logd_parser_sdk::{Description, Options, Output, Parser, text};
//!
//!    s3logd_parser_sdk::fields! {
//!        /// The fields of an access line: `client:port "request" status`.
//!        mod field {
//!            CLIENT_IP = "client_ip": String, "client IP address";
//!            CLIENT_PORT = "client_port": Integer, "client port";
//!            REQUEST_METHOD = "request_method": String, "HTTP method";
//!            REQUEST_URL = "request_url": String, "URL as the client sent it";
//!            STATUS = "status": Integer, "response status; absent when `-`";
//!        }
//!    }
//!
//!    struct Access;
//!
//!    impl Parser for Access {
//!        fn describe() -> Description {
//!            Description::new("access", "0.1.0", "client, request and status lines")
//!                .format("my access log")
//!                .first_line_pattern(r#"^\S+:\d+ "[A-Z]+ "#)
//!                .fields(field::schema())
//!        }
//!
//!        fn open(_object_key: &str, _options: &Options) -> Result<Self, String> {
//!            Ok(Access)
//!        }
//!
//!        fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
//!            let mut fields = text::Fields::new(line);
//!            let [client, request, status] =
//!                text::documented_fields(&mut fields, 3, "an access log")?;
//!            let (ip, port) = text::split_host_port(client).ok_or("the client has no port")?;
//!            let port = text::parse_int(port).ok_or("the client port is not a number")?;
//!            let request = text::split_request(request);
//!            let status = text::int_or_dash(field::name(field::STATUS), status)?;
//!            let mut row = out.row();
//!            row.str(field::CLIENT_IP, ip)
//!                .int(field::CLIENT_PORT, port)
//!                .str_opt(field::REQUEST_METHOD, request.method)
//!                .str_opt(field::REQUEST_URL, request.url)
//!                .int_opt(field::STATUS, status);
//!            for extra in fields {
//!                row.extra(extra);
//!            }
//!            Ok(())
//!        }
//!    }
//!
//!    # use s3logd_parser_sdk::testing::{matches_first_line, parse_one};
//!    let line = r#"192.0.2.1:51234 "GET /index.html HTTP/1.1" 200"#;
//!    assert!(matches_first_line::<Access>(line));
//!    let record = parse_one::<Access>("access.log", line);
//!    assert_eq!(record.str("client_ip"), Some("192.0.2.1"));
//!    assert_eq!(record.int("client_port"), Some(51234));
//!    assert_eq!(record.str("request_url"), Some("/index.html"));
//!    assert_eq!(record.int("status"), Some(200));
//!    ```
//!
//!    The splitting and number helpers above are in
//!    [`s3logd_parser_sdk::text`], and they are general tools, not only for
//!    AWS formats: [`text::Fields`](s3logd_parser_sdk::text::Fields) splits
//!    a space-separated line, keeping quoted and bracketed fields whole;
//!    [`text::space_separated`](s3logd_parser_sdk::text::space_separated)
//!    treats runs of spaces as one separator;
//!    [`text::split_host_port`](s3logd_parser_sdk::text::split_host_port),
//!    [`text::split_request`](s3logd_parser_sdk::text::split_request),
//!    [`text::parse_int`](s3logd_parser_sdk::text::parse_int) and
//!    [`text::parse_float`](s3logd_parser_sdk::text::parse_float) read the
//!    values inside fields, and
//!    [`text::documented_fields`](s3logd_parser_sdk::text::documented_fields)
//!    takes the fields a format documents, leaving the rest as extras.
//!    [`s3logd_parser_sdk::time`] reads ISO 8601 and other times. The row
//!    setters ending in `_opt` take an `Option` and leave the field absent
//!    on `None`.
//!
//!    The parser runs sandboxed: no filesystem, network, environment, clock
//!    or randomness. s3logd refuses to load a component that imports
//!    `wasi:filesystem` (which `std::fs` does), and times must be parsed
//!    without a clock or time zone database: use `s3logd_parser_sdk::time`.
//!    `std::collections::HashMap`'s default hasher asks for a random seed
//!    (`wasi:random`), which is why this parser keys its fields in a
//!    `BTreeMap`.
//!
//! 3. Test natively with `s3logd_parser_sdk::testing::{parse, parse_one,
//!    parse_batched}`, which run your parser through the real row encoding
//!    and check every value against its field's type, and with
//!    `testing::{matches_key, matches_first_line}` against other formats'
//!    keys and lines: `cargo test`. Line numbers in `Parsed::errors` count
//!    from 1, as `s3logd parse` prints them.
//!
//! 4. Build the component:
//!
//!    ```sh
//!    rustup target add wasm32-wasip2   # once
//!    cargo build --release --target wasm32-wasip2
//!    # -> target/wasm32-wasip2/release/my_parser.wasm
//!    ```
//!
//! 5. Load it into s3logd, which needs no rebuild:
//!
//!    ```sh
//!    s3logd parse --parser target/wasm32-wasip2/release/my_parser.wasm app.log
//!    ```
//!
//!    Without `--format`, the parser is chosen by detection (below). To
//!    name it instead, give `--format` the parser's *name*, the first
//!    argument of `Description::new` as `s3logd parsers` lists it
//!    (`--format logfmt` here), not its format label from
//!    `Description::format` (`logfmt` too here, but `AWS ALB access log`
//!    for the parser named `alb`). Options need `--format`:
//!    `--format logfmt --option time_key=time`.
//!
//!    For the daemon, add the `.wasm` file to the parser paths of its
//!    configuration; objects then reach it through detection or a routing
//!    rule naming it. Options (such as this parser's `time_key`) come from
//!    the configuration too.
//!
//! # How s3logd picks a parser for an object
//!
//! Each parser's `describe` gives regular expressions (Rust `regex`
//! syntax) for object keys and for the start of objects:
//!
//! 1. Key patterns come first: among the parsers whose key pattern matches
//!    the object's key, the first one whose first-line patterns also match
//!    the object's start (or that declares none) is chosen.
//! 2. Otherwise the first-line patterns of all parsers decide. Each is
//!    tried on the object's first line and on its first 4 KiB across line
//!    breaks, so a pattern may span lines (`^\{\s*"Records"` finds a
//!    document pretty-printed over many); `^` is the start of the object,
//!    `$` the end of the first line. When several parsers' patterns match,
//!    the one whose match covers the longest text wins, ties going to the
//!    earlier parser (custom parsers come before the bundled ones). It is
//!    the matched text that counts, not the pattern: `\d{4}` and `\d\d\d\d`
//!    rank the same, and a pattern that pins down more of the line
//!    outranks a looser one.
//! 3. Otherwise a parser whose key pattern matched is used even though no
//!    first-line pattern confirmed it (ELB's test object, for one, starts
//!    with a control line).
//!
//! An object none of these picks fails with no parser; name one for it
//! with `--format` or a routing rule.
//!
//! # Records that span lines
//!
//! `parse_line` gets one line at a time, which is what line formats want
//! and what keeps them fast. A JSON format whose files may be pretty-printed
//! (CloudTrail, an export of JSON objects) declares
//! `Description::json_documents()` instead: the SDK then gathers the lines
//! of each JSON document, across batches if need be, and hands
//! `parse_line` the whole document, compacted, so a pretty-printed file
//! parses exactly as its one-line form does. The bundled `cloudtrail` and
//! `ndjson` parsers work this way; see [`s3logd_parser_sdk::Input`] for how
//! broken documents are kept from swallowing the lines after them.

mod logfmt;

use std::collections::BTreeMap;

use s3logd_parser_sdk::{Description, FieldId, FieldType, Options, Output, Parser, time};

use logfmt::{Pairs, Value};

const DEFAULT_TIME_KEY: &str = "ts";

/// A logfmt session: the fields declared so far, by key.
pub struct Logfmt {
    time_key: String,
    fields: BTreeMap<String, FieldId>,
}

impl Parser for Logfmt {
    fn describe() -> Description {
        Description::new(
            "logfmt",
            env!("CARGO_PKG_VERSION"),
            "logfmt lines (key=value pairs); every key becomes a field",
        )
        .format("logfmt")
        .key_pattern(r"\.logfmt(\.gz)?$")
        .first_line_pattern(r"^[A-Za-z_][A-Za-z0-9_.-]*=\S")
        .option(
            "time_key",
            "the key whose RFC 3339 value is the record time",
            Some(DEFAULT_TIME_KEY),
        )
        .time_source("the `ts` key (option `time_key`) when it holds an RFC 3339 time")
    }

    fn open(_object_key: &str, options: &Options) -> Result<Self, String> {
        let time_key = options.get("time_key").unwrap_or(DEFAULT_TIME_KEY);
        if time_key.is_empty() {
            return Err("option `time_key` must name a key".into());
        }
        Ok(Logfmt {
            time_key: time_key.into(),
            fields: BTreeMap::new(),
        })
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let pairs = Pairs::new(line).collect::<Result<Vec<_>, String>>()?;
        if pairs.is_empty() {
            // Only blanks: nothing to record, counted as skipped.
            return Ok(());
        }
        let Logfmt { time_key, fields } = self;
        let time = pairs
            .iter()
            .find(|(key, _)| key == time_key)
            .and_then(|(_, value)| value.text())
            .and_then(time::parse_iso8601);
        // Declared before the row is started, since a row borrows `out`.
        let values: Vec<(FieldId, &Value)> = pairs
            .iter()
            .filter(|(key, _)| time.is_none() || key != time_key)
            .map(|(key, value)| (field_of(fields, key, out), value))
            .collect();

        let mut row = out.row();
        if let Some(nanos) = time {
            row.time(nanos);
        }
        for (field, value) in values {
            match value {
                Value::Flag => row.bool(field, true),
                Value::Bare(text) => match canonical_integer(text) {
                    Some(number) => row.int(field, number),
                    None => row.str(field, text),
                },
                Value::Quoted(text) => row.str(field, text),
            };
        }
        Ok(())
    }
}

/// The field of `key`, declared at its first sight in the session.
fn field_of(fields: &mut BTreeMap<String, FieldId>, key: &str, out: &mut Output) -> FieldId {
    if let Some(&field) = fields.get(key) {
        return field;
    }
    let field = out.declare(key, FieldType::Any);
    fields.insert(key.into(), field);
    field
}

/// An integer written the one way it prints (`-12`, `0`; not `+12` or
/// `007`), so identifiers with leading zeros stay strings.
fn canonical_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

s3logd_parser_sdk::export_parser!(Logfmt);

#[cfg(test)]
mod tests {
    use super::*;
    use s3logd_parser_sdk::testing::{self, Owned};

    const NANOS_PER_SEC: i64 = 1_000_000_000;

    #[test]
    fn the_documented_line() {
        let line = r#"ts=2024-05-01T12:00:00Z level=info msg="hello world" duration_ms=12"#;
        let record = testing::parse_one::<Logfmt>("app.log", line);
        assert_eq!(record.time, Some(1_714_564_800 * NANOS_PER_SEC));
        assert_eq!(record.msg.as_deref(), Some(line));
        assert_eq!(record.str("level"), Some("info"));
        assert_eq!(record.str("msg"), Some("hello world"));
        assert_eq!(record.int("duration_ms"), Some(12));
        assert!(
            !record.has("ts"),
            "the record time is not repeated as a field"
        );
    }

    #[test]
    fn values_are_typed_by_how_they_are_written() {
        let record = testing::parse_one::<Logfmt>(
            "k",
            r#"n=-5 zero=0 id="42" padded=007 plus=+3 huge=99999999999999999999 ratio=0.5 esc="a \"b\"" empty= debug"#,
        );
        assert_eq!(record.int("n"), Some(-5));
        assert_eq!(record.int("zero"), Some(0));
        assert_eq!(record.str("id"), Some("42"));
        assert_eq!(record.str("padded"), Some("007"));
        assert_eq!(record.str("plus"), Some("+3"));
        assert_eq!(record.str("huge"), Some("99999999999999999999"));
        assert_eq!(record.str("ratio"), Some("0.5"));
        assert_eq!(record.str("esc"), Some(r#"a "b""#));
        assert_eq!(record.str("empty"), Some(""));
        assert_eq!(record.fields.get("debug"), Some(&Owned::Bool(true)));
        assert_eq!(record.time, None);
    }

    #[test]
    fn keys_are_declared_once_at_first_sight_across_batches() {
        let input = "a=1 b=2\nb=3 c=4\nc=5 a=6\n";
        let parsed = testing::parse_batched::<Logfmt>("k", &[], input, 1).unwrap();
        let names = parsed.field_names();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(parsed.fields.iter().all(|(_, ty)| *ty == FieldType::Any));
        let a: Vec<_> = parsed.records.iter().map(|r| r.int("a")).collect();
        assert_eq!(a, [Some(1), None, Some(6)]);
        let c: Vec<_> = parsed.records.iter().map(|r| r.int("c")).collect();
        assert_eq!(c, [None, Some(4), Some(5)]);
    }

    #[test]
    fn the_time_key_is_an_option() {
        let line = "time=2024-05-01T12:00:00.123+02:00 ts=later";
        let default = testing::parse::<Logfmt>("k", &[], line).unwrap();
        assert_eq!(default.records[0].time, None);
        assert_eq!(default.records[0].str("ts"), Some("later"));
        assert_eq!(
            default.records[0].str("time"),
            Some("2024-05-01T12:00:00.123+02:00")
        );

        let chosen = testing::parse::<Logfmt>("k", &[("time_key", "time")], line).unwrap();
        assert_eq!(chosen.records[0].time, Some(1_714_557_600_123 * 1_000_000));
        assert!(!chosen.records[0].has("time"));
        assert_eq!(chosen.records[0].str("ts"), Some("later"));

        assert!(testing::parse::<Logfmt>("k", &[("time_key", "")], line).is_err());
    }

    #[test]
    fn a_time_key_that_is_not_a_time_stays_a_field() {
        let record = testing::parse_one::<Logfmt>("k", r#"ts="yesterday noon" level=warn"#);
        assert_eq!(record.time, None);
        assert_eq!(record.str("ts"), Some("yesterday noon"));
    }

    #[test]
    fn malformed_lines_are_errors_and_parsing_goes_on() {
        let input = "a=1\nmsg=\"unterminated\n \t \nb=2\n";
        let parsed = testing::parse::<Logfmt>("k", &[], input).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[1].int("b"), Some(2));
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert_eq!(parsed.errors[0].0, 2);
        assert!(
            parsed.errors[0].1.contains("closing quote"),
            "{:?}",
            parsed.errors
        );
        assert_eq!(parsed.counters.skipped, 1, "the blank line is skipped");
    }
}
