//! `s3logd parse`: run a parser over local files and print the records
//! as the VictoriaLogs sink would send them. How users try a parser (their
//! own, too) on their logs.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use s3logd::decode::BatchLimits;
use s3logd::logging::Escaped;
use s3logd::parse::{Profiling, Record, RecordVisitor};
use s3logd::pipeline::{ObjectSummary, ParserChoice, parse_object};
use s3logd::sink::json::JsonLineWriter;

#[derive(clap::Args)]
pub struct Args {
    /// Parser name (see `s3logd parsers`), or `auto` to detect it from the
    /// file name (as an S3 key) and the first line.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Custom parser components to load (.wasm files or directories).
    #[arg(long = "parser", value_name = "FILE.wasm")]
    parsers: Vec<PathBuf>,
    /// Parser option, NAME=VALUE (repeatable; needs --format).
    #[arg(long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    /// Use this S3 key for detection instead of the file name.
    #[arg(long)]
    key: Option<String>,
    /// Exit non-zero when any line or file fails.
    #[arg(long)]
    strict: bool,
    /// Show at most this many line errors per file (all are counted).
    #[arg(long, default_value_t = 20)]
    max_errors_shown: u64,
    /// Longest line accepted, in bytes; longer ones are counted as errors.
    #[arg(long, default_value_t = BatchLimits::default().max_line_bytes)]
    max_line_bytes: usize,
    /// Write /tmp/perf-<pid>.map, so that `perf record` / `perf report`
    /// name the functions of parser components (profiling a parser).
    #[arg(long)]
    perf_map: bool,
    /// Files to parse; `-` or none reads stdin.
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let parsers = super::load_parsers(
        &args.parsers,
        if args.perf_map {
            Profiling::PerfMap
        } else {
            Profiling::Off
        },
    )?;
    let options = args
        .options
        .iter()
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--option {o:?} is not NAME=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let choice = if args.format == "auto" {
        if !options.is_empty() {
            bail!("--option needs --format NAME: options belong to one parser");
        }
        ParserChoice::Auto
    } else {
        let parser = parsers.get(&args.format).with_context(|| {
            format!(
                "no parser named {:?}; available: {}",
                args.format,
                parsers.names().join(", ")
            )
        })?;
        ParserChoice::Named(parser.clone(), options)
    };
    let limits = BatchLimits {
        max_line_bytes: args.max_line_bytes,
        ..BatchLimits::default()
    };
    let files = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };

    let stdout = io::stdout().lock();
    let mut totals = Totals::default();
    let mut output = Output {
        out: BufWriter::with_capacity(1 << 20, stdout),
        buf: Vec::with_capacity(1 << 20),
        writer: JsonLineWriter::new(&[]),
        name: String::new(),
        errors: 0,
        max_errors_shown: args.max_errors_shown,
        io_error: None,
    };
    for path in &files {
        let name = path.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("opening {name}"))?)
        };
        let key = args.key.clone().unwrap_or_else(|| name.clone());
        output.start(&name);
        let mut summary = ObjectSummary::default();
        let result = parse_object(
            &parsers,
            &choice,
            &key,
            reader,
            limits,
            &mut output,
            &mut summary,
        );
        output.flush()?;
        let failed = match result {
            Ok(()) => false,
            Err(e) => {
                eprintln!("{}: {}", Escaped(&name), Escaped(e));
                true
            }
        };
        totals.add(&summary, failed);
        eprintln!(
            "{}: {} ({}, {}): {} lines, {} records, {} line errors, {} skipped{}{}",
            Escaped(&name),
            if failed { "FAILED" } else { "ok" },
            if summary.parser.is_empty() {
                "no parser"
            } else {
                &summary.parser
            },
            summary
                .compression
                .map_or("-".to_string(), |c| c.to_string()),
            summary.outcome.lines,
            summary.outcome.records,
            summary.outcome.line_errors,
            summary.outcome.skipped_lines,
            plural_note(
                summary.outcome.rows_with_extra,
                "with unexpected extra fields"
            ),
            plural_note(summary.invalid_utf8_lines, "repaired from invalid UTF-8"),
        );
    }
    if files.len() > 1 {
        eprintln!(
            "total: {} files ({} failed), {} records, {} line errors",
            files.len(),
            totals.failed_files,
            totals.records,
            totals.line_errors
        );
    }
    let any_error = totals.failed_files > 0 || totals.line_errors > 0;
    Ok(if any_error && (args.strict || totals.records == 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn plural_note(n: u64, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} {what}")
    }
}

#[derive(Default)]
struct Totals {
    records: u64,
    line_errors: u64,
    failed_files: u64,
}

impl Totals {
    fn add(&mut self, summary: &ObjectSummary, failed: bool) {
        self.records += summary.outcome.records;
        self.line_errors += summary.outcome.line_errors;
        self.failed_files += u64::from(failed);
    }
}

/// Writes records to stdout and line errors to stderr.
struct Output<W: Write> {
    out: W,
    buf: Vec<u8>,
    writer: JsonLineWriter,
    name: String,
    errors: u64,
    max_errors_shown: u64,
    io_error: Option<io::Error>,
}

impl<W: Write> Output<W> {
    fn start(&mut self, name: &str) {
        self.writer = JsonLineWriter::new(&[]);
        self.name = name.to_string();
        self.errors = 0;
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(e) = self.io_error.take() {
            return Err(e).context("writing to stdout");
        }
        self.out.write_all(&self.buf).context("writing to stdout")?;
        self.buf.clear();
        self.out.flush().context("writing to stdout")
    }
}

impl<W: Write> RecordVisitor for Output<W> {
    fn record(&mut self, record: &Record<'_>) {
        self.writer.write(record, &mut self.buf);
        if self.buf.len() >= 1 << 20 && self.io_error.is_none() {
            if let Err(e) = self.out.write_all(&self.buf) {
                self.io_error = Some(e);
            }
            self.buf.clear();
        }
    }

    fn line_error(&mut self, line: u64, _text: &str, reason: &str) {
        self.errors += 1;
        if self.errors <= self.max_errors_shown {
            eprintln!("{}:{line}: {}", Escaped(&self.name), Escaped(reason));
        } else if self.errors == self.max_errors_shown + 1 {
            eprintln!(
                "{}: more line errors not shown (--max-errors-shown)",
                Escaped(&self.name)
            );
        }
    }
}
