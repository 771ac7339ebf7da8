//! Where the collector's work comes from: the SQS queue (`run`), the
//! objects already in a bucket (`import`), JSON objects sent over TCP
//! (`listen`), or the invocations of a Lambda function (`lambda`).

pub mod import;
pub mod lambda;
pub mod listener;
pub mod queue;
