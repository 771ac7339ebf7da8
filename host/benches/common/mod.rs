//! What the benchmarks share: a visitor that only counts records.

use s3logd::parse::{Record, RecordVisitor};

/// Counts records, for parse time without any output; benchmark input has
/// no bad lines, so a line error is a bug.
pub struct Count(pub u64);

impl RecordVisitor for Count {
    fn record(&mut self, _: &Record<'_>) {
        self.0 += 1;
    }

    fn line_error(&mut self, line: u64, reason: &str) {
        panic!("line {line} of the benchmark input failed: {reason}");
    }
}
