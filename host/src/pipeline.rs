//! One object through the data path's middle: decompress, cut into line
//! batches, pick and run the parser, hand records to a visitor.
//!
//! Synchronous on purpose: it is CPU work, run on a blocking thread by the
//! collector and directly by `s3logd parse`; the bytes may come from a
//! file or from an S3 stream bridged into `Read`.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use crate::decode::{BatchLimits, Chunk, Compression, LineBatcher, LineMemory, decompress};
use crate::parse::{
    BatchOutcome, LoadedParser, ObjectSession, ParserFailure, Parsers, RecordVisitor,
};

/// Which parser reads an object.
pub enum ParserChoice {
    /// A named parser, with options.
    Named(Arc<LoadedParser>, Vec<(String, String)>),
    /// Detection from the key and the first line.
    Auto,
}

/// What one object produced.
#[derive(Debug, Default, Clone)]
pub struct ObjectSummary {
    pub parser: String,
    pub compression: Option<Compression>,
    /// Decompressed bytes.
    pub bytes: u64,
    pub batches: u64,
    pub outcome: BatchOutcome,
    /// Lines over the line limit, dropped but for their head and counted
    /// as line errors.
    pub too_long_lines: u64,
    pub invalid_utf8_lines: u64,
}

/// Why an object could not be read to the end. Records visited before the
/// failure were delivered; the object as a whole is not done.
#[derive(Debug)]
pub enum ObjectError {
    /// Reading or decompressing failed (a corrupt gzip, a broken stream).
    Read(std::io::Error),
    /// No parser claims the object.
    NoParser { first_line: String },
    Parser {
        parser: String,
        failure: ParserFailure,
    },
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Read(e) => write!(f, "reading the object failed: {e}"),
            ObjectError::NoParser { first_line } => {
                write!(
                    f,
                    "no parser recognises the object (first line: {first_line:?})"
                )
            }
            ObjectError::Parser { parser, failure } => write!(f, "{parser}: {failure}"),
        }
    }
}

impl std::error::Error for ObjectError {}

impl ObjectError {
    /// A short stable name for metrics labels and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            ObjectError::Read(_) => "read",
            ObjectError::NoParser { .. } => "no_parser",
            ObjectError::Parser { failure, .. } => failure.kind(),
        }
    }
}

/// How an object's lines are batched, and where what the batcher holds
/// beyond a batch is counted.
pub struct Batching<M> {
    pub limits: BatchLimits,
    pub memory: M,
}

/// Parses one object from `reader`. `summary` is filled as it goes, so a
/// caller sees how far a failed object got.
pub fn parse_object(
    parsers: &Parsers,
    choice: &ParserChoice,
    object_key: &str,
    reader: impl Read,
    limits: BatchLimits,
    visitor: &mut impl RecordVisitor,
    summary: &mut ObjectSummary,
) -> Result<(), ObjectError> {
    let batching = Batching { limits, memory: () };
    parse_object_counted(
        parsers, choice, object_key, reader, batching, visitor, summary,
    )
}

/// [`parse_object`] with the line buffers beyond a batch counted in
/// `batching.memory`.
pub fn parse_object_counted(
    parsers: &Parsers,
    choice: &ParserChoice,
    object_key: &str,
    reader: impl Read,
    batching: Batching<impl LineMemory>,
    visitor: &mut impl RecordVisitor,
    summary: &mut ObjectSummary,
) -> Result<(), ObjectError> {
    let limits = batching.limits;
    // Named from the start, so that an object that fails before its first
    // line (a gzip cut short) is still reported with the parser asked for.
    if let ParserChoice::Named(parser, _) = choice {
        summary.parser = parser.info.name.clone();
    }
    let (compression, decompressed) = decompress(reader).map_err(ObjectError::Read)?;
    summary.compression = Some(compression);
    let mut batcher = LineBatcher::counted(decompressed, limits, batching.memory);
    let mut session: Option<ObjectSession> = None;
    let result = loop {
        let chunk = match batcher.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break end_of_object(session.as_mut(), visitor, summary),
            Err(e) => break Err(ObjectError::Read(e)),
        };
        let session = match &mut session {
            Some(session) => session,
            None => {
                let head = match &chunk {
                    Chunk::Lines(text) => *text,
                    Chunk::TooLong { .. } => "",
                };
                let (parser, options) = match choice {
                    ParserChoice::Named(parser, options) => (parser, options.as_slice()),
                    ParserChoice::Auto => match parsers.detect(object_key, head) {
                        Some(parser) => (parser, &[][..]),
                        None => {
                            break Err(ObjectError::NoParser {
                                first_line: head
                                    .lines()
                                    .next()
                                    .unwrap_or("")
                                    .chars()
                                    .take(120)
                                    .collect(),
                            });
                        }
                    },
                };
                summary.parser = parser.info.name.clone();
                visitor.parser_chosen(&parser.info.name);
                let opened =
                    parser
                        .open(object_key, options)
                        .map_err(|failure| ObjectError::Parser {
                            parser: parser.info.name.clone(),
                            failure,
                        });
                match opened {
                    Ok(opened) => session.insert(opened),
                    Err(e) => break Err(e),
                }
            }
        };
        match chunk {
            Chunk::Lines(text) => match session.parse(text, visitor) {
                Ok(outcome) => {
                    summary.outcome += outcome;
                    summary.batches += 1;
                }
                Err(failure) => {
                    break Err(ObjectError::Parser {
                        parser: summary.parser.clone(),
                        failure,
                    });
                }
            },
            Chunk::TooLong { len, head } => {
                let line = session.skip_line();
                summary.too_long_lines += 1;
                summary.outcome.lines += 1;
                summary.outcome.line_errors += 1;
                visitor.line_error(
                    line,
                    head,
                    &format!(
                        "line of {len} bytes is longer than the limit of {} bytes",
                        limits.max_line_bytes
                    ),
                );
            }
        }
    };
    summary.bytes = batcher.bytes_read();
    summary.invalid_utf8_lines = batcher.invalid_utf8_lines();
    result
}

/// Tells the parser the object has ended, so that a record it still holds
/// open (a JSON document whose closing bracket never came) is reported.
fn end_of_object(
    session: Option<&mut ObjectSession>,
    visitor: &mut impl RecordVisitor,
    summary: &mut ObjectSummary,
) -> Result<(), ObjectError> {
    let Some(session) = session else {
        return Ok(());
    };
    match session.parse("", visitor) {
        Ok(outcome) => {
            summary.outcome += outcome;
            Ok(())
        }
        Err(failure) => Err(ObjectError::Parser {
            parser: summary.parser.clone(),
            failure,
        }),
    }
}
