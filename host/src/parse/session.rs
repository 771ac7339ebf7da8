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
    /// A call ran past the CPU deadline.
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
}

/// Receives what a batch produced.
pub trait RecordVisitor {
    /// Called once per object, before its first record, with the name of
    /// the parser that reads it (known only after detection).
    fn parser_chosen(&mut self, _parser: &str) {}
    fn record(&mut self, record: &Record<'_>);
    /// `line` is 1-based within the object.
    fn line_error(&mut self, line: u64, reason: &str);
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
            Ok(encoded) => self
                .decode(&encoded, batch, visitor)
                .map_err(|e| ParserFailure::BadOutput(e.to_string())),
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
    ) -> Result<BatchOutcome, DecodeError> {
        // What the parser reports on the empty batch that ends the object
        // belongs to the object's last line.
        let lines_before = if batch.is_empty() {
            self.lines_before.saturating_sub(1)
        } else {
            self.lines_before
        };
        let outcome = visit_rows(encoded, batch, &mut self.fields, lines_before, visitor)?;
        self.lines_before += outcome.lines;
        Ok(outcome)
    }
}

/// Hands the records of one encoded batch to `visitor`, growing `fields`
/// by the fields the batch declares; `lines_before` numbers its lines.
/// What a session does with a component's output, and what a native run
/// of a parser's `BatchParser` (benchmarks) does with its own.
///
/// A row holding a value its field's declared type does not admit (see
/// [`fits`]) is not handed on: it is an error of its line, so that sinks
/// and users can rely on the schema a parser publishes.
pub fn visit_rows(
    encoded: &[u8],
    batch: &str,
    fields: &mut Vec<Field>,
    lines_before: u64,
    visitor: &mut impl RecordVisitor,
) -> Result<BatchOutcome, DecodeError> {
    let mut decoder = Decoder::new(encoded, batch)?;
    let mut values = Vec::with_capacity(fields.len());
    let mut lines = LineCounter::new(batch);
    let mut outcome = BatchOutcome::default();
    let undeclared = |at| DecodeError {
        at,
        reason: "a row has more values than declared fields",
    };
    while let Some(entry) = decoder.next_entry(&mut values)? {
        match entry {
            Entry::Field { ty, name } => fields.push(Field {
                name: name.to_string(),
                ty,
                description: String::new(),
            }),
            Entry::Row(row) => {
                if values.len() > fields.len() {
                    return Err(undeclared(encoded.len()));
                }
                let msg = match row.msg {
                    Value::Str(s) => Some(s),
                    _ => None,
                };
                let line = lines_before + lines.line_of(msg) + 1;
                if let Some((field, value)) = fields
                    .iter()
                    .zip(values.iter().copied())
                    .find(|(field, value)| !fits(field.ty, *value))
                {
                    visitor.line_error(line, &misfit(field, value));
                    outcome.line_errors += 1;
                    continue;
                }
                visitor.record(&Record {
                    line,
                    time: row.time,
                    msg,
                    fields,
                    values: &values,
                });
                outcome.records += 1;
            }
            Entry::Error { line, reason } => {
                visitor.line_error(lines_before + u64::from(line) + 1, reason);
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
        errors: Vec<(u64, String)>,
    }

    impl RecordVisitor for Seen {
        fn record(&mut self, _record: &Record<'_>) {
            self.records += 1;
        }

        fn line_error(&mut self, line: u64, reason: &str) {
            self.errors.push((line, reason.to_string()));
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
        let outcome = visit_rows(&encoded, batch, &mut fields, 0, &mut seen).unwrap();
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
}
