//! Decompression told by magic bytes, and cutting the decompressed stream
//! into batches of whole, valid UTF-8 lines for the parser.
//!
//! Both work on `std::io::Read` so one object streams through in bounded
//! memory whether it comes from a local file or from S3.

mod compression;
mod lines;

pub use compression::{Compression, decompress};
pub use lines::{BatchLimits, Chunk, LineBatcher, LineMemory};
