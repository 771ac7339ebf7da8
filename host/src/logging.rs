//! s3logd's own log, as every command sets it up, and the escaping that
//! keeps outside text (object keys, bucket names, message bodies, parser
//! errors) from forging lines in it or in any other human-readable output.
//!
//! In the text format every field value and the message are written with
//! their control characters escaped, so that one event is always one line
//! whatever the values hold; the JSON format escapes them as JSON does.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};
use crate::errors::error_chain;

/// Installs the process-wide subscriber: `log.level` and `log.format`,
/// written to `writer`, which writes to standard error (colours only when
/// that is a terminal).
pub fn init<W>(log: &LogConfig, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let ansi = std::io::stderr().is_terminal();
    subscriber(log, writer, ansi).init();
}

/// The subscriber [`init`] installs.
pub fn subscriber<W>(log: &LogConfig, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The level was validated with the configuration.
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi && log.format == LogFormat::Text);
    match log.format {
        LogFormat::Text => Box::new(builder.fmt_fields(EscapedFields).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}

/// Shows `T` with its control characters escaped as Rust's `{:?}` writes
/// them (`\n`, `\r`, `\u{1b}`), the rest as it is: for outside text put
/// into a line of human-readable output.
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaping(f), "{}", self.0)
    }
}

/// Control characters (C0, DEL, C1) and the Unicode line and paragraph
/// separators, which some viewers break lines at.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Passes text on with every character [`needs_escape`] escaped.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found at a char boundary");
            write!(self.0, "{}", c.escape_debug())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// The text format's fields: `name=value` pairs after the message, like
/// tracing's own, with every value escaped (tracing's leaves newlines in
/// the message and in `%` values).
struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            out: Escaping(writer),
            result: Ok(()),
            empty: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    out: Escaping<Writer<'writer>>,
    result: fmt::Result,
    empty: bool,
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Quoted like tracing's own, but the message is shown as written.
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{}", error_chain(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log.*` fields carry the metadata of `log` records, which the
        // formatter already shows as the event's own.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = match field.name() {
            "message" => write!(self.out, "{separator}{value:?}"),
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.out, "{separator}{name}={value:?}")
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const FORGED: &str = "a\n2026-01-01T00:00:00Z ERROR forged\r\u{1b}[31m\u{7f}\u{85}\u{2028}";

    #[test]
    fn outside_text_is_escaped_and_the_rest_left_as_it_is() {
        assert_eq!(
            Escaped(FORGED).to_string(),
            r"a\n2026-01-01T00:00:00Z ERROR forged\r\u{1b}[31m\u{7f}\u{85}\u{2028}"
        );
        let plain = "AWSLogs/1/elasticloadbalancing/é\"q\\x";
        assert_eq!(Escaped(plain).to_string(), plain);
    }

    /// The test's log output, shared with the subscriber.
    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What one event logs with outside values in every kind of field.
    fn logged(format: LogFormat) -> String {
        let output = Arc::new(Mutex::new(Vec::new()));
        let log = LogConfig {
            format,
            level: "info".to_owned(),
        };
        let error = std::io::Error::other(FORGED);
        let writer = {
            let output = output.clone();
            move || SharedBuffer(output.clone())
        };
        tracing::subscriber::with_default(subscriber(&log, writer, false), || {
            tracing::error!(
                key = %FORGED,
                body = FORGED,
                debug = ?FORGED,
                error = &error as &(dyn std::error::Error + 'static),
                "object {FORGED} failed"
            );
        });
        let bytes = output.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_text_event_is_one_line_whatever_its_values_hold() {
        let text = logged(LogFormat::Text);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n'), "{text}");
        let line = text.trim_end_matches('\n');
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert!(line.contains(" ERROR "), "{line}");
        assert!(
            line.contains(r"object a\n2026-01-01T00:00:00Z ERROR forged\r\u{1b}[31m"),
            "{line}"
        );
        assert!(
            line.contains(r"key=a\n2026-01-01T00:00:00Z ERROR forged\r"),
            "{line}"
        );
        assert!(
            line.contains(r#"body="a\n2026-01-01T00:00:00Z ERROR forged\r"#),
            "{line}"
        );
        assert!(
            line.contains(r"error=a\n2026-01-01T00:00:00Z ERROR forged\r"),
            "{line}"
        );
    }

    #[test]
    fn a_json_event_is_one_line_holding_the_values_intact() {
        let text = logged(LogFormat::Json);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let event: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(event["level"], "ERROR");
        assert_eq!(event["key"], FORGED);
        assert_eq!(event["body"], FORGED);
        assert_eq!(event["message"], format!("object {FORGED} failed"));
    }
}
