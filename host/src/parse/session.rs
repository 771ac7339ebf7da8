//! Parsing one object: a fresh sandboxed instance, its `session` resource,
//! and the rows it returns decoded for a [`RecordVisitor`].

use std::fmt;
use std::time::Duration;

use s3logd_rows::{DecodeError, Decoder, Entry, FieldType, Value};
use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use super::bindings::{ParserComponent, ParserComponentPre};
use super::component::Field;
use super::runtime::Runtime;
use super::sandbox::{SandboxState, new_store};

/// Why a parser failed an object. The object is lost for this attempt, but
/// nothing else is: the next object gets a new instance.
#[derive(Debug, Clone, PartialEq)]
pub enum ParserFailure {
    /// `open` refused the object or its options.
    Refused(String),
    /// The parser trapped (a panic, an out-of-bounds access, …).
    Trap(String),
    /// A call ran past its wall-clock deadline.
    Timeout(Duration),
    /// The instance tried to grow its memory past the cap.
    OutOfMemory { limit_mib: usize },
    /// The parser returned bytes that are not a valid row encoding.
    BadOutput(String),
    /// A bundled component deferred at start could not be prepared.
    Unavailable(String),
}

impl fmt::Display for ParserFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParserFailure::Refused(reason) => write!(f, "parser refused the object: {reason}"),
            ParserFailure::Trap(reason) => write!(f, "parser trapped: {reason}"),
            ParserFailure::Timeout(after) => write!(
                f,
                "parser exceeded its time limit of {after:?} for one batch"
            ),
            ParserFailure::OutOfMemory { limit_mib } => {
                write!(f, "parser exceeded its memory limit of {limit_mib} MiB")
            }
            ParserFailure::BadOutput(reason) => write!(f, "parser returned invalid rows: {reason}"),
            ParserFailure::Unavailable(reason) => {
                write!(f, "parser component could not be prepared: {reason}")
            }
        }
    }
}

impl std::error::Error for ParserFailure {}

impl ParserFailure {
    /// A short stable name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ParserFailure::Refused(_) => "refused",
            ParserFailure::Trap(_) => "trap",
            ParserFailure::Timeout(_) => "timeout",
            ParserFailure::OutOfMemory { .. } => "out_of_memory",
            ParserFailure::BadOutput(_) => "bad_output",
            ParserFailure::Unavailable(_) => "parser_unavailable",
        }
    }
}

/// One parsed record, valid during [`RecordVisitor::record`].
pub struct Record<'a> {
    /// The object's line (1-based) the record's message starts on; for a
    /// message the parser built rather than cut from its input, the line of
    /// the last record that had one.
    pub line: u64,
    /// UTC nanoseconds; `None` when the parser found no time.
    pub time: Option<i64>,
    pub msg: Option<&'a str>,
    /// The session's field table; `values[i]` belongs to `fields[i]`.
    pub fields: &'a [Field],
    pub values: &'a [Value<'a>],
}

impl<'a> Record<'a> {
    /// The fields that have a value, in table order.
    pub fn present(&self) -> impl Iterator<Item = (&'a Field, Value<'a>)> + '_ {
        self.fields
            .iter()
            .zip(self.values.iter().copied())
            .filter(|(_, v)| !matches!(v, Value::Absent))
    }

    /// What the record holds as [`OutputAllowance`] counts it: the bytes of
    /// every string (message, values, list items), the name of every field
    /// with a value, and 8 bytes for any other value. A sink writes at most
    /// a small multiple of this (quotes, separators, escapes).
    pub fn content_bytes(&self) -> u64 {
        let msg = self.msg.map_or(0, str::len) as u64;
        msg + self
            .present()
            .map(|(field, value)| field.name.len() as u64 + value_bytes(value))
            .sum::<u64>()
    }
}

/// What [`Record::content_bytes`] counts for a value that is not a string:
/// about its size in the row encoding, so that a row of numbers costs what
/// it took to send.
const SCALAR_BYTES: u64 = 8;

fn value_bytes(value: Value<'_>) -> u64 {
    match value {
        Value::Str(s) => s.len() as u64,
        Value::List(items) => items.iter().map(value_bytes).sum(),
        _ => SCALAR_BYTES,
    }
}

/// What a session's output may still add to what the host holds and
/// writes. A row costs a parser little (a span of the whole batch is 9
/// bytes of encoding) while its content is written out in full for every
/// sink, so without a bound a few hundred kilobytes of rows could make
/// gigabytes of records; and every field declared stays in the session's
/// table, once per sink too.
///
/// A session's records may hold [`Self::CONTENT_PER_INPUT_BYTE`] bytes of
/// content ([`Record::content_bytes`]) for every byte of input it was
/// given, plus [`Self::BASE_CONTENT_BYTES`]. What one batch leaves unspent
/// carries over, since a parser may hold a document back until a later
/// batch ends it, but no more than the allowance of
/// [`Self::SAVED_INPUT_BYTES`] of input: a parser cannot save up for one
/// huge record. A parser that goes past either bound fails its object.
#[derive(Debug)]
pub struct OutputAllowance {
    /// Content the session's records may still hold.
    content: u64,
    /// The names of the session's fields, together.
    field_name_bytes: usize,
}

impl OutputAllowance {
    /// A multiple no bundled parser comes near: records repeat their
    /// input in `_msg` and in their fields, and short lines of many fields
    /// add their names. The samples of every bundled parser reach at most
    /// 3.4 in a batch (CLB's short lines of 19 fields); CloudTrail's
    /// documents 1.8.
    pub const CONTENT_PER_INPUT_BYTE: u64 = 16;
    /// Content that needs no input: records a parser builds itself or
    /// reports at the end of an object.
    pub const BASE_CONTENT_BYTES: u64 = 1 << 20;
    /// The most input whose allowance a session may save: the default line
    /// limit, which is also as much of a document as the SDK carries
    /// across batches. No batch then allows more than one line of that
    /// length does on its own.
    pub const SAVED_INPUT_BYTES: u64 = 64 << 20;
    /// The most fields a session's table may hold, static and declared.
    /// Bundled parsers describe at most a hundred; the JSON ones declare a
    /// field for each key path they meet, of which an object of AWS's JSON
    /// logs has hundreds.
    pub const MAX_FIELDS: usize = 10_000;
    /// The most bytes the names of a session's fields may add up to: room
    /// for [`Self::MAX_FIELDS`] names of a hundred bytes, longer than most
    /// key paths of AWS's JSON logs.
    pub const MAX_FIELD_NAME_BYTES: usize = 1 << 20;

    /// The allowance of a new session whose parser describes `fields`;
    /// an error when they already break the bounds on fields.
    pub fn new(fields: &[Field]) -> Result<OutputAllowance, String> {
        let mut allowance = OutputAllowance {
            content: Self::BASE_CONTENT_BYTES,
            field_name_bytes: 0,
        };
        for (count, field) in fields.iter().enumerate() {
            allowance.admit_field(count, &field.name)?;
        }
        Ok(allowance)
    }

    /// Adds what a batch of `input` bytes allows.
    fn grant(&mut self, input: usize) {
        let most_saved =
            Self::BASE_CONTENT_BYTES + Self::CONTENT_PER_INPUT_BYTE * Self::SAVED_INPUT_BYTES;
        self.content = self.content.min(most_saved) + Self::CONTENT_PER_INPUT_BYTE * input as u64;
    }

    /// Takes what `record` holds out of the allowance.
    fn spend(&mut self, record: &Record<'_>) -> Result<(), String> {
        self.take(record.line, record.content_bytes())
    }

    /// Takes `bytes` the host writes for line `line` out of the allowance.
    fn take(&mut self, line: u64, bytes: u64) -> Result<(), String> {
        self.content = self.content.checked_sub(bytes).ok_or_else(|| {
            format!(
                "line {line}: the session's records hold more content than its input allows \
                 ({} bytes for each byte of input, plus {} MiB)",
                Self::CONTENT_PER_INPUT_BYTE,
                Self::BASE_CONTENT_BYTES >> 20
            )
        })?;
        Ok(())
    }

    /// Admits a field called `name` to a table of `count` fields.
    fn admit_field(&mut self, count: usize, name: &str) -> Result<(), String> {
        if count >= Self::MAX_FIELDS {
            return Err(format!(
                "a parser may have at most {} fields, static and declared",
                Self::MAX_FIELDS
            ));
        }
        self.field_name_bytes += name.len();
        if self.field_name_bytes > Self::MAX_FIELD_NAME_BYTES {
            return Err(format!(
                "the names of a parser's fields may add up to at most {} MiB",
                Self::MAX_FIELD_NAME_BYTES >> 20
            ));
        }
        Ok(())
    }
}

/// Receives what a batch produced.
pub trait RecordVisitor {
    /// Called once per object, before its first record, with the name of
    /// the parser that reads it (known only after detection).
    fn parser_chosen(&mut self, _parser: &str) {}
    fn record(&mut self, record: &Record<'_>);
    /// A line that gave no record: `line` is 1-based within the object,
    /// `text` the line without its line end (empty when the batch does not
    /// hold it: a line reported again or out of order, or at the object's
    /// end), `reason` why.
    fn line_error(&mut self, line: u64, text: &str, reason: &str);
}

/// Counters of one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub lines: u64,
    pub records: u64,
    pub line_errors: u64,
    pub skipped_lines: u64,
    pub rows_with_extra: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: BatchOutcome) {
        self.lines += o.lines;
        self.records += o.records;
        self.line_errors += o.line_errors;
        self.skipped_lines += o.skipped_lines;
        self.rows_with_extra += o.rows_with_extra;
    }
}

/// A parser instance working on one object.
pub struct ObjectSession {
    store: Store<SandboxState>,
    instance: ParserComponent,
    session: ResourceAny,
    fields: Vec<Field>,
    allowance: OutputAllowance,
    deadline_ticks: u64,
    call_timeout: Duration,
    lines_before: u64,
    failed: Option<ParserFailure>,
}

impl ObjectSession {
    pub(super) fn open(
        runtime: &Runtime,
        pre: &ParserComponentPre<SandboxState>,
        fields: &[Field],
        object_key: &str,
        options: &[(String, String)],
    ) -> Result<ObjectSession, ParserFailure> {
        let allowance = OutputAllowance::new(fields).map_err(ParserFailure::BadOutput)?;
        let mut store = new_store(runtime);
        let deadline_ticks = runtime.limits.deadline_ticks();
        store.set_epoch_deadline(deadline_ticks);
        let call_timeout = runtime.limits.call_timeout;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, e, call_timeout))?;
        let session = instance
            .s3logd_parser_parser()
            .call_open(&mut store, object_key, options)
            .map_err(|e| classify(&store, e, call_timeout))?
            .map_err(ParserFailure::Refused)?;
        Ok(ObjectSession {
            store,
            instance,
            session,
            fields: fields.to_vec(),
            allowance,
            deadline_ticks,
            call_timeout,
            lines_before: 0,
            failed: None,
        })
    }

    /// Parses a batch of whole lines, handing every record and line error
    /// to `visitor` in order. After a failure the session is spent.
    pub fn parse(
        &mut self,
        batch: &str,
        visitor: &mut impl RecordVisitor,
    ) -> Result<BatchOutcome, ParserFailure> {
        if let Some(failure) = &self.failed {
            return Err(failure.clone());
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        let encoded = self.instance.s3logd_parser_parser().session().call_parse(
            &mut self.store,
            self.session,
            batch,
        );
        let result = match encoded {
            Ok(encoded) => self.decode(&encoded, batch, visitor),
            Err(e) => Err(classify(&self.store, e, self.call_timeout)),
        };
        if let Err(failure) = &result {
            self.failed = Some(failure.clone());
        }
        result
    }

    /// Counts a line the host dropped before parsing (longer than the line
    /// limit) and returns its 1-based number.
    pub fn skip_line(&mut self) -> u64 {
        self.lines_before += 1;
        self.lines_before
    }

    /// Lines seen so far in this object.
    pub fn lines(&self) -> u64 {
        self.lines_before
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    fn decode(
        &mut self,
        encoded: &[u8],
        batch: &str,
        visitor: &mut impl RecordVisitor,
    ) -> Result<BatchOutcome, ParserFailure> {
        // What the parser reports on the empty batch that ends the object
        // belongs to the object's last line.
        let lines_before = if batch.is_empty() {
            self.lines_before.saturating_sub(1)
        } else {
            self.lines_before
        };
        let outcome = visit_rows(
            encoded,
            batch,
            &mut self.fields,
            &mut self.allowance,
            lines_before,
            visitor,
        )?;
        self.lines_before += outcome.lines;
        Ok(outcome)
    }
}

/// Hands the records of one encoded batch to `visitor`, growing `fields`
/// by the fields the batch declares and spending `allowance` on both;
/// `lines_before` numbers its lines. What a session does with a
/// component's output, and what a native run of a parser's `BatchParser`
/// (benchmarks) does with its own. Every error is a
/// [`ParserFailure::BadOutput`].
///
/// A row holding a value its field's declared type does not admit (see
/// [`fits`]) is not handed on: it is an error of its line, so that sinks
/// and users can rely on the schema a parser publishes.
pub fn visit_rows(
    encoded: &[u8],
    batch: &str,
    fields: &mut Vec<Field>,
    allowance: &mut OutputAllowance,
    lines_before: u64,
    visitor: &mut impl RecordVisitor,
) -> Result<BatchOutcome, ParserFailure> {
    let invalid = |e: DecodeError| ParserFailure::BadOutput(e.to_string());
    allowance.grant(batch.len());
    let mut decoder = Decoder::new(encoded, batch).map_err(invalid)?;
    let mut values = Vec::with_capacity(fields.len());
    let mut lines = LineCounter::new(batch);
    let mut failed_lines = FailedLineTexts::new(batch);
    let mut outcome = BatchOutcome::default();
    let undeclared = |at| DecodeError {
        at,
        reason: "a row has more values than declared fields",
    };
    while let Some(entry) = decoder.next_entry(&mut values).map_err(invalid)? {
        match entry {
            Entry::Field { ty, name } => {
                allowance
                    .admit_field(fields.len(), name)
                    .map_err(ParserFailure::BadOutput)?;
                fields.push(Field {
                    name: name.to_string(),
                    ty,
                    description: String::new(),
                });
            }
            Entry::Row(row) => {
                if values.len() > fields.len() {
                    return Err(invalid(undeclared(encoded.len())));
                }
                let msg = match row.msg {
                    Value::Str(s) => Some(s),
                    _ => None,
                };
                let index = lines.line_of(msg);
                let line = lines_before + index + 1;
                if let Some((field, value)) = fields
                    .iter()
                    .zip(values.iter().copied())
                    .find(|(field, value)| !fits(field.ty, *value))
                {
                    let text = failed_lines.text_of(index);
                    // The reason quotes the field's name, tens of kilobytes
                    // for a row of 13 bytes: what the host writes for a
                    // parser is spent like the records it sends.
                    let reason = misfit(field, value);
                    allowance
                        .take(line, reason.len() as u64)
                        .map_err(ParserFailure::BadOutput)?;
                    visitor.line_error(line, text, &reason);
                    outcome.line_errors += 1;
                    continue;
                }
                let record = Record {
                    line,
                    time: row.time,
                    msg,
                    fields,
                    values: &values,
                };
                allowance.spend(&record).map_err(ParserFailure::BadOutput)?;
                visitor.record(&record);
                outcome.records += 1;
            }
            Entry::Error { line, reason } => {
                let index = u64::from(line);
                let text = failed_lines.text_of(index);
                visitor.line_error(lines_before + index + 1, text, reason);
                outcome.line_errors += 1;
            }
            Entry::End(counters) => {
                outcome.lines = counters.lines.into();
                outcome.skipped_lines = counters.skipped.into();
                outcome.rows_with_extra = counters.rows_with_extra.into();
            }
        }
    }
    Ok(outcome)
}

/// Whether `value` may stand in a field declared `ty`. An absent value fits
/// every type and `any` takes every value. A float field takes an integer
/// too: both are JSON numbers, which is all a sink or a user sees of them,
/// so refusing the line would lose a record for nothing. A list fits when
/// each of its items fits the list's item type.
fn fits(ty: FieldType, value: Value<'_>) -> bool {
    match (ty, value) {
        (FieldType::Any, _)
        | (_, Value::Absent)
        | (FieldType::String, Value::Str(_))
        | (FieldType::Integer | FieldType::Float, Value::Int(_))
        | (FieldType::Float, Value::Float(_))
        | (FieldType::Boolean, Value::Bool(_))
        | (FieldType::Timestamp, Value::Timestamp(_)) => true,
        (_, Value::List(items)) => {
            item_type(ty).is_some_and(|item_ty| items.iter().all(|item| fits(item_ty, item)))
        }
        _ => false,
    }
}

fn item_type(list: FieldType) -> Option<FieldType> {
    match list {
        FieldType::StringList => Some(FieldType::String),
        FieldType::IntegerList => Some(FieldType::Integer),
        _ => None,
    }
}

/// How `value`, refused by [`fits`], breaks the declared type of `field`.
fn misfit(field: &Field, value: Value<'_>) -> String {
    let declared = format!("field {:?} is declared {}", field.name, field.ty.name());
    let bad_item = match (item_type(field.ty), value) {
        (Some(item_ty), Value::List(items)) => items
            .iter()
            .enumerate()
            .find(|(_, item)| !fits(item_ty, *item)),
        _ => None,
    };
    match bad_item {
        Some((at, item)) => format!("{declared} but {}[{at}] is {}", field.name, kind(item)),
        None => format!("{declared} but holds {}", kind(value)),
    }
}

fn kind(value: Value<'_>) -> &'static str {
    match value {
        Value::Absent => "no value",
        Value::Str(_) => "a string",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Bool(_) => "a boolean",
        Value::Timestamp(_) => "a timestamp",
        Value::List(_) => "a list",
    }
}

/// The line within a batch (0-based) that a slice of it starts on; records
/// come in line order, so each count goes on from the last.
struct LineCounter<'b> {
    batch: &'b [u8],
    counted_to: usize,
    line: u64,
}

impl<'b> LineCounter<'b> {
    fn new(batch: &'b str) -> Self {
        LineCounter {
            batch: batch.as_bytes(),
            counted_to: 0,
            line: 0,
        }
    }

    fn line_of(&mut self, msg: Option<&str>) -> u64 {
        let start = self.batch.as_ptr() as usize;
        let Some(at) = msg
            .map(|msg| (msg.as_ptr() as usize).wrapping_sub(start))
            .filter(|&at| at <= self.batch.len())
        else {
            return self.line;
        };
        if at < self.counted_to {
            self.counted_to = 0;
            self.line = 0;
        }
        self.line += memchr::memchr_iter(b'\n', &self.batch[self.counted_to..at]).count() as u64;
        self.counted_to = at;
        self.line
    }
}

/// The text of a batch's lines that gave no record, by their index in the
/// batch. Nothing is read until a line fails, and the cursor only moves
/// forward: however many lines fail, the batch is read once, and a parser
/// reporting one line again and again cannot make the host copy it again
/// and again. A line at or before one already handed out has no text.
struct FailedLineTexts<'b> {
    /// The batch from the start of line `next` on.
    rest: &'b str,
    next: u64,
}

impl<'b> FailedLineTexts<'b> {
    fn new(batch: &'b str) -> Self {
        FailedLineTexts {
            rest: batch,
            next: 0,
        }
    }

    fn text_of(&mut self, index: u64) -> &'b str {
        let Some(skip) = index.checked_sub(self.next) else {
            return "";
        };
        let start = match skip {
            0 => Some(0),
            _ => usize::try_from(skip - 1)
                .ok()
                .and_then(|nth| memchr::memchr_iter(b'\n', self.rest.as_bytes()).nth(nth))
                .map(|end| end + 1),
        };
        let line = start.map_or("", |start| &self.rest[start..]);
        let (text, rest) = line.split_once('\n').unwrap_or((line, ""));
        self.rest = rest;
        self.next = index + 1;
        text
    }
}

fn classify(
    store: &Store<SandboxState>,
    error: wasmtime::Error,
    call_timeout: Duration,
) -> ParserFailure {
    let state = store.data();
    if state.memory_exceeded() {
        return ParserFailure::OutOfMemory {
            limit_mib: state.memory_limit() >> 20,
        };
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return ParserFailure::Timeout(call_timeout);
    }
    let stderr = state.stderr.text();
    let mut message = format!("{error:#}");
    if !stderr.is_empty() {
        message.push_str("; parser stderr: ");
        message.push_str(&stderr);
    }
    ParserFailure::Trap(message)
}

#[cfg(test)]
mod tests {
    use s3logd_rows::{Counters, Encoder, Slot};

    use super::*;

    #[derive(Default)]
    struct Seen {
        records: u64,
        content_bytes: u64,
        errors: Vec<(u64, String)>,
        texts: Vec<String>,
    }

    impl RecordVisitor for Seen {
        fn record(&mut self, record: &Record<'_>) {
            self.records += 1;
            self.content_bytes += record.content_bytes();
        }

        fn line_error(&mut self, line: u64, text: &str, reason: &str) {
            self.errors.push((line, reason.to_string()));
            self.texts.push(text.to_string());
        }
    }

    /// Visits one row holding `value` in a field `f` declared `ty`: `Ok`
    /// when it arrived as a record, else the reason its line failed.
    fn visit_one(ty: FieldType, value: impl FnOnce(&mut Encoder) -> Slot) -> Result<(), String> {
        let batch = "line\n";
        let mut encoder = Encoder::new(batch);
        let msg = encoder.str(&batch[..4]);
        let value = value(&mut encoder);
        encoder.row(None, msg, &[value]);
        let encoded = encoder.finish(Counters {
            lines: 1,
            ..Counters::default()
        });
        let mut fields = vec![Field {
            name: "f".to_string(),
            ty,
            description: String::new(),
        }];
        let mut seen = Seen::default();
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let outcome =
            visit_rows(&encoded, batch, &mut fields, &mut allowance, 0, &mut seen).unwrap();
        let counted = (outcome.records, outcome.line_errors, seen.records);
        match seen.errors.pop() {
            None => {
                assert_eq!(counted, (1, 0, 1));
                Ok(())
            }
            Some((line, reason)) => {
                assert_eq!((line, counted), (1, (0, 1, 0)), "{reason}");
                Err(reason)
            }
        }
    }

    #[test]
    fn a_failed_line_comes_with_its_text_once() {
        let batch = "good\nbad one\nmisfit\nbad two";
        let mut encoder = Encoder::new(batch);
        encoder.error(1, "broken");
        let msg = encoder.str(&batch[13..19]);
        encoder.row(None, msg, &[Slot::Int(1)]);
        encoder.error(1, "broken again");
        encoder.error(3, "broken");
        let encoded = encoder.finish(Counters {
            lines: 4,
            ..Counters::default()
        });
        let mut fields = vec![string_field("f".to_string())];
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let mut seen = Seen::default();
        visit_rows(&encoded, batch, &mut fields, &mut allowance, 10, &mut seen).unwrap();
        let lines: Vec<u64> = seen.errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [12, 13, 12, 14]);
        assert_eq!(seen.texts, ["bad one", "misfit", "", "bad two"]);
    }

    fn list(encoder: &mut Encoder, first: &str, second: i64) -> Slot {
        let mut list = encoder.list();
        list.str(first);
        list.int(second);
        list.finish()
    }

    #[test]
    fn values_of_their_declared_type_arrive() {
        assert_eq!(visit_one(FieldType::String, |e| e.str("x")), Ok(()));
        assert_eq!(visit_one(FieldType::Integer, |_| Slot::Int(1)), Ok(()));
        assert_eq!(visit_one(FieldType::Boolean, |_| Slot::Bool(true)), Ok(()));
        assert_eq!(
            visit_one(FieldType::Timestamp, |_| Slot::Timestamp(1)),
            Ok(())
        );
        assert_eq!(visit_one(FieldType::Integer, |_| Slot::Absent), Ok(()));
    }

    #[test]
    fn a_float_field_takes_an_integer_and_any_takes_everything() {
        assert_eq!(visit_one(FieldType::Float, |_| Slot::Float(0.5)), Ok(()));
        assert_eq!(visit_one(FieldType::Float, |_| Slot::Int(1)), Ok(()));
        assert_eq!(visit_one(FieldType::Any, |_| Slot::Bool(false)), Ok(()));
        assert_eq!(visit_one(FieldType::Any, |e| list(e, "a", 1)), Ok(()));
    }

    #[test]
    fn a_value_of_another_type_fails_its_line_naming_the_field_and_both_types() {
        assert_eq!(
            visit_one(FieldType::Integer, |e| e.str("200")),
            Err("field \"f\" is declared integer but holds a string".to_string())
        );
        assert_eq!(
            visit_one(FieldType::Timestamp, |_| Slot::Int(1)),
            Err("field \"f\" is declared timestamp but holds an integer".to_string())
        );
        assert_eq!(
            visit_one(FieldType::String, |e| list(e, "a", 1)),
            Err("field \"f\" is declared string but holds a list".to_string())
        );
        assert_eq!(
            visit_one(FieldType::StringList, |e| e.str("a")),
            Err("field \"f\" is declared string-list but holds a string".to_string())
        );
    }

    #[test]
    fn lists_are_checked_item_by_item() {
        assert_eq!(
            visit_one(FieldType::StringList, |e| list(e, "a", 7)),
            Err("field \"f\" is declared string-list but f[1] is an integer".to_string())
        );
        assert_eq!(
            visit_one(FieldType::IntegerList, |e| {
                let mut list = e.list();
                list.int(1);
                list.str("x");
                list.finish()
            }),
            Err("field \"f\" is declared integer-list but f[1] is a string".to_string())
        );
    }

    fn string_field(name: String) -> Field {
        Field {
            name,
            ty: FieldType::String,
            description: String::new(),
        }
    }

    /// `rows` rows whose message is all of `batch`, each a line of its own.
    fn rows_of_the_whole_batch(batch: &str, rows: usize) -> Vec<u8> {
        let mut encoder = Encoder::new(batch);
        for _ in 0..rows {
            let msg = encoder.str(batch);
            encoder.row(None, msg, &[]);
        }
        encoder.finish(Counters::default())
    }

    #[test]
    fn a_record_counts_its_strings_the_names_of_its_values_and_eight_bytes_for_other_values() {
        let batch = "a b\n";
        let mut encoder = Encoder::new(batch);
        let mut tags = encoder.list();
        tags.str("xyz");
        tags.int(1);
        let tags = tags.finish();
        let host = encoder.str(&batch[..1]);
        let msg = encoder.str(&batch[..3]);
        encoder.row(None, msg, &[host, Slot::Int(200), tags, Slot::Absent]);
        let encoded = encoder.finish(Counters::default());
        let mut fields: Vec<Field> = ["host", "status", "tags", "absent"]
            .map(|name| Field {
                ty: FieldType::Any,
                ..string_field(name.into())
            })
            .into();
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let mut seen = Seen::default();
        visit_rows(&encoded, batch, &mut fields, &mut allowance, 0, &mut seen).unwrap();
        // The message, then each name with its value; the absent value
        // counts nothing.
        assert_eq!(seen.content_bytes, 3 + (4 + 1) + (6 + 8) + (4 + 3 + 8));
    }

    #[test]
    fn records_may_hold_no_more_content_than_their_input_allows() {
        let batch = format!("{}\n", "x".repeat((64 << 10) - 1));
        let bound = OutputAllowance::CONTENT_PER_INPUT_BYTE * batch.len() as u64
            + OutputAllowance::BASE_CONTENT_BYTES;
        let within = (bound / batch.len() as u64) as usize;
        let encoded = rows_of_the_whole_batch(&batch, within + 1);
        let mut fields = Vec::new();
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let mut seen = Seen::default();
        let result = visit_rows(&encoded, &batch, &mut fields, &mut allowance, 0, &mut seen);
        let Err(ParserFailure::BadOutput(reason)) = result else {
            panic!("expected bad output, got {result:?}")
        };
        assert!(
            reason.contains("more content than its input allows"),
            "{reason}"
        );
        assert_eq!(
            seen.records, within as u64,
            "every record within the bound arrives"
        );
        assert!(seen.content_bytes <= bound);
    }

    #[test]
    fn what_one_batch_leaves_unspent_a_later_one_may_spend() {
        // A document held back over batches: a record of two megabytes
        // built from it, handed over on the empty batch that ends the object.
        let held_back = format!("{}\n", "x".repeat(1 << 20));
        let built = "y".repeat(2 * OutputAllowance::BASE_CONTENT_BYTES as usize);
        let mut encoder = Encoder::new("");
        let msg = encoder.str(&built);
        encoder.row(None, msg, &[]);
        let late_rows = encoder.finish(Counters::default());
        let nothing = Encoder::new(&held_back).finish(Counters::default());

        let mut fields = Vec::new();
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let mut seen = Seen::default();
        visit_rows(
            &nothing,
            &held_back,
            &mut fields,
            &mut allowance,
            0,
            &mut seen,
        )
        .unwrap();
        visit_rows(&late_rows, "", &mut fields, &mut allowance, 1, &mut seen).unwrap();
        assert_eq!(seen.records, 1);

        // A session that was given no input may not.
        let mut fresh = OutputAllowance::new(&fields).unwrap();
        let result = visit_rows(&late_rows, "", &mut fields, &mut fresh, 0, &mut seen);
        assert!(
            matches!(result, Err(ParserFailure::BadOutput(_))),
            "{result:?}"
        );
    }

    #[test]
    fn the_reasons_of_misfit_rows_are_spent_from_the_allowance() {
        // Every row of a few bytes fails its line with a reason quoting a
        // long field name: without a bound, kilobytes of rows would make
        // gigabytes of dead letters.
        let name = "n".repeat(60_000);
        let mut encoder = Encoder::new("");
        encoder.declare_field(FieldType::Integer, &name);
        for _ in 0..100 {
            encoder.row(None, Slot::Absent, &[Slot::Bool(true)]);
        }
        let encoded = encoder.finish(Counters::default());
        let mut fields = Vec::new();
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let mut seen = Seen::default();
        let result = visit_rows(&encoded, "", &mut fields, &mut allowance, 0, &mut seen);
        let Err(ParserFailure::BadOutput(reason)) = result else {
            panic!("expected bad output, got {result:?}")
        };
        assert!(
            reason.contains("more content than its input allows"),
            "{reason}"
        );
        let written: usize = seen.errors.iter().map(|(_, reason)| reason.len()).sum();
        assert!(written as u64 <= OutputAllowance::BASE_CONTENT_BYTES);
        assert_eq!(seen.errors.len(), 17, "the misfits within the allowance");
    }

    #[test]
    fn a_session_cannot_save_more_than_the_allowance_of_its_saved_input() {
        let mut allowance = OutputAllowance::new(&[]).unwrap();
        let saved = OutputAllowance::BASE_CONTENT_BYTES
            + OutputAllowance::CONTENT_PER_INPUT_BYTE * OutputAllowance::SAVED_INPUT_BYTES;
        for _ in 0..10 {
            allowance.grant(OutputAllowance::SAVED_INPUT_BYTES as usize);
        }
        allowance.grant(0);
        assert_eq!(allowance.content, saved);
    }

    /// Visits a batch declaring a field for each of `names`.
    fn declare(
        names: impl Iterator<Item = String>,
    ) -> (Result<BatchOutcome, ParserFailure>, usize) {
        let mut encoder = Encoder::new("");
        for name in names {
            encoder.declare_field(FieldType::String, &name);
        }
        let encoded = encoder.finish(Counters::default());
        let mut fields = vec![string_field("static".into())];
        let mut allowance = OutputAllowance::new(&fields).unwrap();
        let result = visit_rows(
            &encoded,
            "",
            &mut fields,
            &mut allowance,
            0,
            &mut Seen::default(),
        );
        (result, fields.len())
    }

    #[test]
    fn a_session_has_at_most_max_fields_static_and_declared() {
        let max = OutputAllowance::MAX_FIELDS;
        let (result, count) = declare((1..max).map(|n| format!("f{n}")));
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(count, max);

        let (result, count) = declare((1..=max).map(|n| format!("f{n}")));
        assert_eq!(
            result,
            Err(ParserFailure::BadOutput(format!(
                "a parser may have at most {max} fields, static and declared"
            )))
        );
        assert_eq!(count, max, "the field past the bound is not added");
    }

    #[test]
    fn the_names_of_a_sessions_fields_are_bounded_together() {
        let long = |n: usize| format!("{n:0>60000}");
        let (result, _) = declare((0..17).map(long));
        assert!(result.is_ok(), "{result:?}");
        let (result, count) = declare((0..18).map(long));
        let Err(ParserFailure::BadOutput(reason)) = result else {
            panic!("expected bad output, got {result:?}")
        };
        assert!(
            reason.contains("names of a parser's fields may add up to at most 1 MiB"),
            "{reason}"
        );
        assert_eq!(count, 18, "the static field and the 17 that fit");
    }

    #[test]
    fn a_parser_describing_too_many_fields_cannot_open_a_session() {
        let fields: Vec<Field> = (0..=OutputAllowance::MAX_FIELDS)
            .map(|n| string_field(format!("f{n}")))
            .collect();
        assert!(OutputAllowance::new(&fields).is_err());
    }
}
