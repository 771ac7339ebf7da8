//! Where the collector's work comes from: the SQS queue (`run`), the
//! objects already in a bucket (`import`), or JSON objects sent over TCP
//! (`listen`).

pub mod import;
pub mod listener;
pub mod queue;
