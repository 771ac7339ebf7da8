//! Where the collector's work comes from: the SQS queue (`run`) or the
//! objects already in a bucket (`import`).

pub mod import;
pub mod queue;
