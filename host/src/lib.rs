//! s3logd moves AWS access logs from S3 into a log store.
//!
//! The modules follow the data path: an SQS `notification` names objects,
//! `object` streams each from S3, `decode` decompresses it and cuts it into
//! line batches, `parse` runs the parser component over them, `sink`
//! delivers the records, and the message is acknowledged only when every
//! record of it is stored.

pub mod config;
pub mod decode;
pub mod notification;
pub mod parse;
pub mod pipeline;
pub mod sink;
