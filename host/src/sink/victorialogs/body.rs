//! A request body that can be sent again on retry: a batch's send buffers
//! as they are, written out one after the other without being copied into
//! one, or a single compressed buffer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

pub(super) struct Body {
    parts: Vec<Bytes>,
    len: u64,
    content_encoding: Option<&'static str>,
}

impl Body {
    /// JSON lines sent as they are, in the order of `buffers`.
    pub(super) fn lines(buffers: Vec<Vec<u8>>) -> Body {
        let parts: Vec<Bytes> = buffers.into_iter().map(Bytes::from).collect();
        Body {
            len: parts.iter().map(|part| part.len() as u64).sum(),
            parts,
            content_encoding: None,
        }
    }

    pub(super) fn compressed(body: Vec<u8>, content_encoding: &'static str) -> Body {
        Body {
            len: body.len() as u64,
            parts: vec![Bytes::from(body)],
            content_encoding: Some(content_encoding),
        }
    }

    /// Bytes on the wire.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn content_encoding(&self) -> Option<&'static str> {
        self.content_encoding
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

    /// The buffers back, once no attempt holds them any more; one the HTTP
    /// client still holds is left to it.
    pub(super) fn into_buffers(self) -> impl Iterator<Item = Vec<u8>> {
        self.parts
            .into_iter()
            .filter_map(|part| part.try_into_mut().ok().map(Vec::from))
    }
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
