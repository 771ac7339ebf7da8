//! Any bytes as a parser component's output, through the host's
//! `visit_rows`: the boundary where the host stops trusting the guest.
//! Whatever a component returns must give records or an error, never a
//! panic, and never more than the output allowance lets through.
//!
//! Input: one byte for the number of static fields and one for each
//! field's type, then batches, each a little-endian `u16` length and the
//! batch text, a `u16` length and the encoded rows, as a session sees them
//! one after the other.

use s3logd::parse::{Field, OutputAllowance, Record, RecordVisitor, visit_rows};
use s3logd_rows::FieldType;

use crate::Input;

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let static_fields = input.byte() % 8;
    let mut fields: Vec<Field> = (0..static_fields)
        .map(|n| Field {
            name: format!("s{n}"),
            ty: FieldType::ALL[usize::from(input.byte()) % FieldType::ALL.len()],
            description: String::new(),
        })
        .collect();
    let mut allowance = OutputAllowance::new(&fields).expect("eight fields are within the bounds");
    let mut lines_before = 0u64;
    let mut checked = Checked::default();
    while !input.is_empty() {
        let len = input.u16().into();
        // Own allocations, as the host has them: a component's output never
        // shares memory with the batch it was given.
        let batch = String::from_utf8_lossy(input.bytes(len)).into_owned();
        let len = input.u16().into();
        let encoded = input.bytes(len).to_vec();
        checked.input_bytes += batch.len() as u64;
        checked.encoded_bytes += encoded.len() as u64;
        checked.batch = Some((batch.as_ptr() as usize, batch.len()));
        // As `ObjectSession` numbers the lines of the batch that ends an object.
        let before = if batch.is_empty() {
            lines_before.saturating_sub(1)
        } else {
            lines_before
        };
        let visited = visit_rows(
            &encoded,
            &batch,
            &mut fields,
            &mut allowance,
            before,
            &mut checked,
        );
        checked.check_bounds(&fields);
        match visited {
            Ok(outcome) => lines_before += outcome.lines,
            // A failed session is spent.
            Err(_) => return,
        }
    }
}

/// What a session handed on so far, checked against the bounds the host
/// promises.
#[derive(Default)]
struct Checked {
    /// The current batch's address and length.
    batch: Option<(usize, usize)>,
    input_bytes: u64,
    encoded_bytes: u64,
    content_bytes: u64,
    /// Reasons and texts of lines that gave no record.
    error_bytes: u64,
}

impl Checked {
    fn check_bounds(&self, fields: &[Field]) {
        let allowed = OutputAllowance::BASE_CONTENT_BYTES
            + OutputAllowance::CONTENT_PER_INPUT_BYTE * self.input_bytes;
        assert!(
            self.content_bytes <= allowed,
            "records hold {} bytes of content, more than the {allowed} their input allows",
            self.content_bytes
        );
        // A parser's own reasons are bytes it sent and each line's text is
        // handed on once; what the host adds is bounded by the allowance.
        let handed_on = self.content_bytes + self.error_bytes;
        let bound = allowed + self.encoded_bytes + self.input_bytes;
        assert!(
            handed_on <= bound,
            "records and failed lines hand on {handed_on} bytes from {} bytes of input \
             and {} of rows (bound {bound})",
            self.input_bytes,
            self.encoded_bytes
        );
        assert!(fields.len() <= OutputAllowance::MAX_FIELDS);
        let names: usize = fields.iter().map(|field| field.name.len()).sum();
        assert!(names <= OutputAllowance::MAX_FIELD_NAME_BYTES);
    }
}

impl RecordVisitor for Checked {
    fn record(&mut self, record: &Record<'_>) {
        assert!(record.values.len() <= record.fields.len());
        self.content_bytes += record.content_bytes();
    }

    fn line_error(&mut self, _line: u64, text: &str, reason: &str) {
        let (start, len) = self.batch.expect("a batch is being visited");
        let at = (text.as_ptr() as usize).wrapping_sub(start);
        assert!(
            text.is_empty() || at + text.len() <= len,
            "a failed line's text is a slice of its batch"
        );
        assert!(!text.contains('\n'), "a failed line's text is one line");
        self.error_bytes += (text.len() + reason.len()) as u64;
    }
}
