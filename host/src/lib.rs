//! s3logd moves AWS access logs from S3 into log stores.
//!
//! The modules follow the data path: a `source` (the SQS queue) receives
//! work, a `notification` names objects, `object` streams each from S3,
//! `decode` decompresses it and cuts it into line batches, `parse` runs the
//! parser component over them, `sink` delivers the records to every store,
//! and `ack` deletes the message only when every record of it is accounted
//! for. `budget` bounds the bytes on their way, `errors` words failures;
//! `shutdown`, `metrics`, `logging` and `memory` look after the process as
//! a whole, and `config` is what the user asked for.

pub mod ack;
pub mod budget;
pub mod config;
pub mod decode;
pub mod errors;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod notification;
pub mod object;
pub mod parse;
pub mod pipeline;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod time;
