//! Telling gzip (one or many members) from plain text by the first bytes,
//! never by file extension or `Content-Encoding`: CLB and S3 access logs are
//! plain, Firehose objects have no extension, and an object stored with
//! `Content-Encoding: gzip` is still gzip bytes as far as s3logd reads it.

use std::fmt;
use std::io::{self, BufReader, Cursor, Read};

use flate2::bufread::MultiGzDecoder;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip, including several members back to back (Firehose).
    Gzip,
    Plain,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Plain => "plain",
        })
    }
}

/// Wraps `reader` so that it yields the decompressed bytes.
pub fn decompress<'a>(mut reader: impl Read + 'a) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..got];
    let unsupported = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} objects are not supported"),
        )
    };
    if head.starts_with(&PARQUET_MAGIC) {
        return Err(unsupported("Parquet"));
    }
    if head.starts_with(&ZSTD_MAGIC) {
        return Err(unsupported("zstd-compressed"));
    }
    let whole = Cursor::new(head.to_vec()).chain(reader);
    if head.starts_with(&GZIP_MAGIC) {
        let decoder = MultiGzDecoder::new(BufReader::with_capacity(64 << 10, whole));
        Ok((Compression::Gzip, Box::new(decoder)))
    } else {
        Ok((Compression::Plain, Box::new(whole)))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(input: &[u8]) -> io::Result<(Compression, Vec<u8>)> {
        let (compression, mut reader) = decompress(input)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok((compression, out))
    }

    /// Hands out one byte per read, like a slow network stream.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn gzip_plain_and_multi_member_are_told_apart_by_magic() {
        assert_eq!(
            read_all(b"plain line\n").unwrap(),
            (Compression::Plain, b"plain line\n".to_vec())
        );
        assert_eq!(
            read_all(&gzip(b"zipped\n")).unwrap(),
            (Compression::Gzip, b"zipped\n".to_vec())
        );
        let mut members = gzip(b"first\n");
        members.extend(gzip(b"second\n"));
        assert_eq!(read_all(&members).unwrap().1, b"first\nsecond\n");
        assert_eq!(read_all(b"").unwrap(), (Compression::Plain, Vec::new()));
        assert_eq!(read_all(b"x").unwrap(), (Compression::Plain, b"x".to_vec()));
    }

    #[test]
    fn magic_split_across_reads_is_still_recognised() {
        let zipped = gzip(b"hello\n");
        let (compression, mut reader) = decompress(Trickle(&zipped)).unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!((compression, out.as_str()), (Compression::Gzip, "hello\n"));
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_garbage() {
        let mut zipped = gzip(&b"some text that compresses\n".repeat(100));
        let middle = zipped.len() / 2;
        zipped[middle] ^= 0xff;
        zipped.truncate(zipped.len() - 4);
        assert!(read_all(&zipped).is_err());
    }

    #[test]
    fn parquet_and_zstd_are_refused_by_name() {
        let err = read_all(b"PAR1\0\0").unwrap_err();
        assert!(err.to_string().contains("Parquet"), "{err}");
        let err = read_all(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
