//! A request body that can be sent again on retry: a batch's send buffers
//! as they are, written out one after the other without being copied into
//! one, or a single buffer compressed off the async workers.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::compress::compress;
use crate::config::Compression;
use crate::sink::delivery::Records;

pub struct Body {
    parts: Vec<Bytes>,
    len: u64,
    content_encoding: Option<&'static str>,
}

impl Body {
    /// The records' bytes back to back, compressed as configured.
    pub async fn of_records(records: &Records, compression: Compression) -> Body {
        match compression {
            Compression::None => Body::parts(records.concatenated()),
            compression => {
                let records = records.clone();
                compress_off_workers(compression, move || {
                    let mut joined = Vec::with_capacity(records.bytes_len() as usize);
                    for part in records.concatenated() {
                        joined.extend_from_slice(&part);
                    }
                    joined
                })
                .await
            }
        }
    }

    /// A body the store built whole, compressed as configured.
    pub async fn of_bytes(bytes: Vec<u8>, compression: Compression) -> Body {
        match compression {
            Compression::None => Body::parts(vec![Bytes::from(bytes)]),
            compression => compress_off_workers(compression, move || bytes).await,
        }
    }

    fn parts(parts: Vec<Bytes>) -> Body {
        Body {
            len: parts.iter().map(|part| part.len() as u64).sum(),
            parts,
            content_encoding: None,
        }
    }

    /// Bytes on the wire.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn content_encoding(&self) -> Option<&'static str> {
        self.content_encoding
    }

    /// The bytes as sent, one part after the other (for signing).
    pub fn parts_on_the_wire(&self) -> &[Bytes] {
        &self.parts
    }

    /// The body of one attempt; it shares the bytes, copies none.
    pub(super) fn for_attempt(&self) -> reqwest::Body {
        match self.parts.as_slice() {
            [whole] => reqwest::Body::from(whole.clone()),
            _ => reqwest::Body::wrap(Parts {
                parts: self.parts.clone().into_iter(),
                remaining: self.len,
            }),
        }
    }
}

/// Compression is CPU work of milliseconds per batch: it runs on a blocking
/// thread, with the bytes `gather` puts together there.
async fn compress_off_workers(
    compression: Compression,
    gather: impl FnOnce() -> Vec<u8> + Send + 'static,
) -> Body {
    tokio::task::spawn_blocking(move || {
        let (compressed, encoding) = compress(compression, &gather())
            .expect("compressing into memory does not fail")
            .expect("a compression other than none compresses");
        Body {
            len: compressed.len() as u64,
            parts: vec![Bytes::from(compressed)],
            content_encoding: Some(encoding),
        }
    })
    .await
    .expect("compression does not panic")
}

/// The parts of one attempt, one frame each, with their exact length so
/// that the request carries a Content-Length.
struct Parts {
    parts: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.parts.next().map(|part| {
            this.remaining -= part.len() as u64;
            Ok(Frame::data(part))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
