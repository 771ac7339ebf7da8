//! Request body compression at the fastest levels: on the collector's hot
//! path a better ratio is not worth the CPU (zstd-1 already costs about as
//! much per line as parsing; snappy a fraction of that, for a worse ratio).

use std::cell::RefCell;
use std::io::Write;

use crate::config::Compression;

const ZSTD_LEVEL: i32 = 1;

/// The compressed body to send for `lines` and its `Content-Encoding`;
/// `None` when `lines` are sent as they are.
pub fn compress(
    compression: Compression,
    lines: &[u8],
) -> std::io::Result<Option<(Vec<u8>, &'static str)>> {
    match compression {
        Compression::None => Ok(None),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(lines.len() / 8),
                flate2::Compression::fast(),
            );
            encoder.write_all(lines)?;
            Ok(Some((encoder.finish()?, "gzip")))
        }
        // VictoriaLogs reads a snappy body as one block (snappy's raw
        // format), not as snappy's framed stream.
        Compression::Snappy => Ok(Some((
            snap::raw::Encoder::new()
                .compress_vec(lines)
                .map_err(std::io::Error::other)?,
            "snappy",
        ))),
        Compression::Zstd => {
            // A new context per body would allocate and zero about a
            // megabyte of tables each time: page faults and TLB flushes
            // that cost more than a tenth of the collector's CPU.
            thread_local! {
                static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> =
                    const { RefCell::new(None) };
            }
            let body = ZSTD.with_borrow_mut(|compressor| {
                let compressor = match compressor {
                    Some(compressor) => compressor,
                    None => compressor.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                };
                compressor.compress(lines)
            })?;
            Ok(Some((body, "zstd")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_zstd_bodies_on_one_thread_each_decompress_to_their_own_lines() {
        for n in 1..=3 {
            let lines = format!("{{\"_msg\":\"body {n}\"}}\n")
                .repeat(1000 * n)
                .into_bytes();
            let (body, encoding) = compress(Compression::Zstd, &lines).unwrap().unwrap();
            assert_eq!(encoding, "zstd");
            assert!(body.len() < lines.len() / 10, "compressed");
            assert_eq!(zstd::stream::decode_all(body.as_slice()).unwrap(), lines);
        }
    }

    #[test]
    fn snappy_bodies_are_one_raw_block() {
        let lines = "{\"_msg\":\"a snappy line\"}\n".repeat(5000).into_bytes();
        let (body, encoding) = compress(Compression::Snappy, &lines).unwrap().unwrap();
        assert_eq!(encoding, "snappy");
        assert!(body.len() < lines.len() / 10, "compressed");
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
            lines
        );
    }
}
