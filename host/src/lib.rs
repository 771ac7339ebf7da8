//! s3logd moves AWS access logs from S3 into a log store.
//!
//! The modules follow the data path: the `queue` receives SQS messages, a
//! `notification` names objects, `object` streams each from S3, `decode`
//! decompresses it and cuts it into line batches, `parse` runs the parser
//! component over them, `sink` delivers the records, and `ack` deletes the
//! message only when every record of it is stored. `shutdown`, `metrics`
//! and `memory` look after the process as a whole.

pub mod ack;
pub mod config;
pub mod decode;
pub mod memory;
pub mod metrics;
pub mod notification;
pub mod object;
pub mod parse;
pub mod pipeline;
pub mod queue;
pub mod shutdown;
pub mod sink;
