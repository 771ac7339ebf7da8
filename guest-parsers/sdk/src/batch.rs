//! Turning a batch of lines into the row encoding, one `parse_line` at a time.

use s3logd_rows::{Counters, Encoder, FieldType, Slot};

use crate::{Input, Options, Parser};

mod documents;

pub use documents::MAX_CARRIED_BYTES;

/// Index of a field in the session's field table: the parser's static
/// fields first, then the ones it declared, in order.
pub type FieldId = usize;

/// Drives a [`Parser`] over batches of lines. The WIT session wraps one of
/// these; tests and benchmarks use it directly.
pub struct BatchParser<P> {
    parser: P,
    table: FieldTable,
    /// For parsers that read JSON documents rather than lines.
    documents: Option<documents::Documents>,
}

#[derive(Default)]
struct FieldTable {
    len: usize,
    /// Ids of `extra_1`, `extra_2`, … once declared.
    extras: Vec<FieldId>,
}

impl<P: Parser> BatchParser<P> {
    /// Opens a session, refusing options the parser does not document.
    pub fn open(
        object_key: &str,
        options: Vec<(String, String)>,
    ) -> Result<BatchParser<P>, String> {
        let description = P::describe();
        let options = Options::check(options, &description.options)?;
        Ok(BatchParser {
            parser: P::open(object_key, &options)?,
            table: FieldTable {
                len: description.fields.len(),
                extras: Vec::new(),
            },
            documents: (description.input == Input::JsonDocuments)
                .then(documents::Documents::default),
        })
    }

    /// Parses whole lines; returns the encoded batch. An empty batch ends
    /// the object (the host sends one after the last), so that a record
    /// still open, a JSON document cut short, is reported.
    pub fn parse(&mut self, lines: &str) -> Vec<u8> {
        let mut out = Output {
            encoder: Encoder::new(lines),
            slots: Vec::with_capacity(self.table.len),
            table: std::mem::take(&mut self.table),
            line_msg: Slot::Absent,
            line_index: 0,
            pending: None,
            produced: false,
            counters: Counters::default(),
        };
        match &mut self.documents {
            Some(documents) => documents.parse(lines, &mut self.parser, &mut out),
            None => {
                for (index, line) in lines_of(lines).enumerate() {
                    out.begin_line(line, index as u32);
                    out.counters.lines += 1;
                    if line.is_empty() {
                        out.counters.skipped += 1;
                        continue;
                    }
                    let result = self.parser.parse_line(line, &mut out);
                    out.end_line(result);
                }
            }
        }
        self.table = std::mem::take(&mut out.table);
        out.encoder.finish(out.counters)
    }
}

/// The lines of a batch without their `\n` or `\r\n` endings.
fn lines_of(batch: &str) -> impl Iterator<Item = &str> {
    let bytes = batch.as_bytes();
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', bytes);
    std::iter::from_fn(move || {
        let end = match ends.next() {
            Some(end) => end,
            None if start < bytes.len() => bytes.len(),
            None => return None,
        };
        let line = &batch[start..end];
        start = end + 1;
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

struct PendingRow {
    time: Option<i64>,
    msg: Slot,
    extras_used: usize,
}

/// Where a parser puts the rows of the current line.
pub struct Output {
    encoder: Encoder,
    slots: Vec<Slot>,
    table: FieldTable,
    line_msg: Slot,
    line_index: u32,
    pending: Option<PendingRow>,
    produced: bool,
    counters: Counters,
}

impl Output {
    /// Starts a new row (finishing the previous one of this line). Its
    /// `_msg` is the whole line unless [`Row::msg`] says otherwise.
    pub fn row(&mut self) -> Row<'_> {
        self.finish_row();
        self.pending = Some(PendingRow {
            time: None,
            msg: self.line_msg,
            extras_used: 0,
        });
        Row { out: self }
    }

    /// Declares a field for the rest of this session (a column named by a
    /// header line, say) and returns its id.
    pub fn declare(&mut self, name: &str, ty: FieldType) -> FieldId {
        self.encoder.declare_field(ty, name);
        self.table.len += 1;
        self.table.len - 1
    }

    /// Records an error against this line without ending it, for lines that
    /// hold many records (a CloudTrail file). Discards the row being built.
    pub fn error(&mut self, reason: &str) {
        self.discard_row();
        self.encoder.error(self.line_index, reason);
        self.produced = true;
    }

    fn begin_line(&mut self, line: &str, index: u32) {
        self.line_msg = self.encoder.str(line);
        self.line_index = index;
        self.produced = false;
    }

    fn end_line(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.finish_row(),
            Err(reason) => self.error(&reason),
        }
        if !self.produced {
            self.counters.skipped += 1;
        }
    }

    /// Ends the row being built, so that a later [`Output::error`] or a
    /// failing return from `parse_line` cannot discard it: for lines that
    /// hold many records, call it after each complete one.
    pub fn finish_row(&mut self) {
        if let Some(row) = self.pending.take() {
            self.encoder.row(row.time, row.msg, &self.slots);
            if row.extras_used > 0 {
                self.counters.rows_with_extra += 1;
            }
            self.slots.fill(Slot::Absent);
            self.produced = true;
        }
    }

    fn discard_row(&mut self) {
        if self.pending.take().is_some() {
            self.slots.fill(Slot::Absent);
        }
    }

    #[inline(always)]
    fn set(&mut self, field: FieldId, slot: Slot) {
        debug_assert!(
            field < self.table.len,
            "field {field} was never declared (the session has {})",
            self.table.len
        );
        if field >= self.slots.len() {
            self.slots.resize(field + 1, Slot::Absent);
        }
        self.slots[field] = slot;
    }

    fn pending(&mut self) -> &mut PendingRow {
        self.pending
            .as_mut()
            .expect("a Row exists only while its row is pending")
    }
}

/// The row being built. Setters may be called in any order.
pub struct Row<'o> {
    out: &'o mut Output,
}

impl Row<'_> {
    /// The record time, UTC nanoseconds since the Unix epoch.
    pub fn time(&mut self, nanos: i64) -> &mut Self {
        self.out.pending().time = Some(nanos);
        self
    }

    /// Replaces `_msg` (the whole line by default).
    pub fn msg(&mut self, msg: &str) -> &mut Self {
        let slot = self.out.encoder.str(msg);
        self.out.pending().msg = slot;
        self
    }

    /// A string; a slice of the line is sent without copying.
    #[inline(always)]
    pub fn str(&mut self, field: FieldId, value: &str) -> &mut Self {
        let slot = self.out.encoder.str(value);
        self.out.set(field, slot);
        self
    }

    /// A string, left absent when it is exactly `-` (AWS's "no value").
    #[inline(always)]
    pub fn str_or_dash(&mut self, field: FieldId, value: &str) -> &mut Self {
        if value != "-" {
            self.str(field, value);
        }
        self
    }

    #[inline(always)]
    pub fn int(&mut self, field: FieldId, value: i64) -> &mut Self {
        self.out.set(field, Slot::Int(value));
        self
    }

    #[inline(always)]
    pub fn float(&mut self, field: FieldId, value: f64) -> &mut Self {
        self.out.set(field, Slot::Float(value));
        self
    }

    pub fn bool(&mut self, field: FieldId, value: bool) -> &mut Self {
        self.out.set(field, Slot::Bool(value));
        self
    }

    /// A time value, UTC nanoseconds since the Unix epoch.
    #[inline(always)]
    pub fn timestamp(&mut self, field: FieldId, nanos: i64) -> &mut Self {
        self.out.set(field, Slot::Timestamp(nanos));
        self
    }

    /// A string, left absent when there is none: for the parts of a split
    /// value ([`text::split_request`](crate::text::split_request)) and the
    /// `Option`s of [`text::present`](crate::text::present).
    #[inline(always)]
    pub fn str_opt(&mut self, field: FieldId, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(field, value);
        }
        self
    }

    /// An integer, left absent when there is none (the `Ok` of
    /// [`text::int_or_dash`](crate::text::int_or_dash)).
    #[inline(always)]
    pub fn int_opt(&mut self, field: FieldId, value: Option<i64>) -> &mut Self {
        if let Some(value) = value {
            self.int(field, value);
        }
        self
    }

    /// A number, left absent when there is none (the `Ok` of
    /// [`text::float_or_dash`](crate::text::float_or_dash)).
    #[inline(always)]
    pub fn float_opt(&mut self, field: FieldId, value: Option<f64>) -> &mut Self {
        if let Some(value) = value {
            self.float(field, value);
        }
        self
    }

    pub fn str_list<'s>(
        &mut self,
        field: FieldId,
        items: impl IntoIterator<Item = &'s str>,
    ) -> &mut Self {
        let mut list = self.out.encoder.list();
        for item in items {
            list.str(item);
        }
        let slot = list.finish();
        self.out.set(field, slot);
        self
    }

    pub fn int_list(&mut self, field: FieldId, items: impl IntoIterator<Item = i64>) -> &mut Self {
        let mut list = self.out.encoder.list();
        for item in items {
            list.int(item);
        }
        let slot = list.finish();
        self.out.set(field, slot);
        self
    }

    /// A value past the last documented field: kept as `extra_1`,
    /// `extra_2`, … and counted, so a format change shows instead of
    /// vanishing.
    pub fn extra(&mut self, value: &str) -> &mut Self {
        let nth = self.out.pending().extras_used;
        let field = match self.out.table.extras.get(nth) {
            Some(&field) => field,
            None => {
                let field = self
                    .out
                    .declare(&format!("extra_{}", nth + 1), FieldType::String);
                self.out.table.extras.push(field);
                field
            }
        };
        self.out.pending().extras_used += 1;
        self.str_or_dash(field, value)
    }
}

#[cfg(test)]
mod tests;
