//! Request body compression at the fastest levels: on the collector's hot
//! path a better ratio is not worth the CPU (zstd-1 already costs about as
//! much per line as parsing).

use std::io::Write;

use crate::config::Compression;

const ZSTD_LEVEL: i32 = 1;

/// The body to send for `lines`, and its `Content-Encoding` if any.
pub fn compress(
    compression: Compression,
    lines: Vec<u8>,
) -> std::io::Result<(Vec<u8>, Option<&'static str>)> {
    match compression {
        Compression::None => Ok((lines, None)),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(lines.len() / 8),
                flate2::Compression::fast(),
            );
            encoder.write_all(&lines)?;
            Ok((encoder.finish()?, Some("gzip")))
        }
        Compression::Zstd => Ok((zstd::bulk::compress(&lines, ZSTD_LEVEL)?, Some("zstd"))),
    }
}
