//! JSON documents that span lines, gathered from the batches and handed to
//! `parse_line` whole (`Input::JsonDocuments`).
//!
//! A document on one line is handed over as a slice of the batch, so its
//! strings still travel as spans. One that spans lines is handed over
//! compacted (the whitespace between its tokens removed): the parser sees
//! the same text, and the store the same `_msg`, as for AWS's one-line
//! form. Text kept across batches is bounded by [`MAX_CARRIED_BYTES`].

use super::{Output, lines_of};
use crate::Parser;

/// The most of one document kept across batches: the host's default line
/// limit, so a pretty-printed file may be as large as a one-line one.
pub const MAX_CARRIED_BYTES: usize = 64 << 20;

/// Where the reading of an object's documents stands between batches.
#[derive(Default)]
pub(super) struct Documents {
    nesting: Nesting,
    /// The text so far of a document begun in an earlier batch.
    carried: String,
    /// The document being read outgrew [`MAX_CARRIED_BYTES`]: its text is
    /// dropped while its end is sought.
    oversized: bool,
    /// The last byte other than whitespace of the line before.
    last_byte: Option<u8>,
}

impl Documents {
    /// Reads one batch; an empty one is the end of the object.
    pub(super) fn parse<P: Parser>(&mut self, batch: &str, parser: &mut P, out: &mut Output) {
        if batch.is_empty() {
            self.end_of_object(parser, out);
            return;
        }
        // Where the open document starts in this batch, and on which line.
        let mut start: Option<(usize, u32)> = None;
        for (index, line) in lines_of(batch).enumerate() {
            let index = index as u32;
            out.counters.lines += 1;
            let at = line.as_ptr() as usize - batch.as_ptr() as usize;
            if self.is_open() && self.starts_anew(line) {
                let (from, first_line) = start.take().unwrap_or((0, index));
                let report_on = self.report_line(first_line, index);
                self.hand_over(&batch[from..at], report_on, parser, out);
            }
            if !self.is_open() && line.trim_ascii().is_empty() {
                out.counters.skipped += 1;
                continue;
            }
            let (from, first_line) = *start.get_or_insert((at, index));
            let ends_in_string = self.nesting.read_line(line.as_bytes());
            self.last_byte = line.trim_ascii_end().as_bytes().last().copied();
            // A string cannot span lines: one left open is a broken
            // document, not one that goes on.
            if self.nesting.depth > 0 && !ends_in_string {
                continue;
            }
            start = None;
            let report_on = self.report_line(first_line, index);
            self.hand_over(&batch[from..at + line.len()], report_on, parser, out);
        }
        if let Some((from, _)) = start {
            self.carry(&batch[from..]);
        }
    }

    /// Whether `line` begins a new document although one is open: it opens
    /// an object or array in its first column, where the open document
    /// expects no value (it ends in neither `[`, `,` nor `:`). This is how
    /// an NDJSON line cut short by a crash is told from a pretty-printed
    /// document, whose inner lines are indented or follow a separator.
    fn starts_anew(&self, line: &str) -> bool {
        line.starts_with(['{', '[']) && !matches!(self.last_byte, Some(b'[' | b',' | b':'))
    }

    /// The line a document's errors are reported on: the one it starts on,
    /// or, when it began in an earlier batch, the one it ends on.
    fn report_line(&self, first_line: u32, index: u32) -> u32 {
        if self.carried.is_empty() && !self.oversized {
            first_line
        } else {
            index
        }
    }

    fn is_open(&self) -> bool {
        self.oversized || !self.carried.is_empty() || self.nesting.depth > 0
    }

    /// Gives one complete document (or a lone line) to the parser; `tail`
    /// ends it, after whatever earlier batches carried.
    fn hand_over<P: Parser>(&mut self, tail: &str, line: u32, parser: &mut P, out: &mut Output) {
        if std::mem::take(&mut self.oversized) {
            out.begin_line("", line);
            out.end_line(Err(oversized()));
        } else if self.carried.is_empty() && memchr::memchr(b'\n', tail.as_bytes()).is_none() {
            out.begin_line(tail, line);
            let result = parser.parse_line(tail, out);
            out.end_line(result);
        } else {
            let mut text = Vec::with_capacity(self.carried.len() + tail.len());
            compact(&self.carried, &mut text);
            compact(tail, &mut text);
            let text = String::from_utf8(text).expect("only ASCII whitespace was removed");
            self.carried = String::new();
            out.begin_line(&text, line);
            let result = parser.parse_line(&text, out);
            out.end_line(result);
        }
        self.nesting = Nesting::default();
    }

    fn carry(&mut self, text: &str) {
        if self.oversized {
            return;
        }
        if self.carried.len() + text.len() > MAX_CARRIED_BYTES {
            self.carried = String::new();
            self.oversized = true;
        } else {
            self.carried.push_str(text);
        }
    }

    /// A document still open when the object ends is handed over as it is:
    /// a streaming parser keeps the records before the cut, then reports it.
    fn end_of_object<P: Parser>(&mut self, parser: &mut P, out: &mut Output) {
        if self.is_open() {
            self.hand_over("", 0, parser, out);
        }
    }
}

fn oversized() -> String {
    format!(
        "a JSON document of more than {} MiB",
        MAX_CARRIED_BYTES >> 20
    )
}

/// How deeply the JSON read so far is nested in objects and arrays.
#[derive(Default)]
struct Nesting {
    depth: u32,
}

impl Nesting {
    /// Follows one line's brackets, skipping strings. A JSON string cannot
    /// hold a raw line break, so every line starts outside one; a string
    /// left open at the line's end is the parser's error to report.
    /// Returns whether the line ended inside a string.
    fn read_line(&mut self, line: &[u8]) -> bool {
        let mut rest = line;
        while let Some((&byte, after)) = rest.split_first() {
            rest = after;
            match byte {
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                b'"' => match skip_string(rest) {
                    Some(after_string) => rest = after_string,
                    None => return true,
                },
                _ => {}
            }
        }
        false
    }
}

/// Appends `json` to `kept` without the whitespace between its tokens.
/// Strings are copied as they are; only ASCII whitespace is dropped, so the
/// text stays valid UTF-8.
fn compact(json: &str, kept: &mut Vec<u8>) {
    let mut rest = json.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => rest = after,
            b'"' => {
                let string_end = rest.len() - skip_string(after).map_or(0, <[u8]>::len);
                kept.extend_from_slice(&rest[..string_end]);
                rest = &rest[string_end..];
            }
            _ => {
                kept.push(byte);
                rest = after;
            }
        }
    }
}

/// What follows the string whose opening quote came just before `text`;
/// `None` when the string does not end in `text`.
fn skip_string(mut text: &[u8]) -> Option<&[u8]> {
    while let Some(at) = memchr::memchr2(b'"', b'\\', text) {
        if text[at] == b'"' {
            return Some(&text[at + 1..]);
        }
        text = text.get(at + 2..)?;
    }
    None
}

#[cfg(test)]
mod tests;
