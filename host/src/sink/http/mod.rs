//! What every HTTP store shares: a client built from its `HttpConfig`
//! (base URL with its path kept, credentials, extra headers, CA file,
//! timeout), request bodies (the callers' buffers as they are, or
//! compressed off the async workers), and what an answer's status means for
//! most stores.

mod body;
mod client;
mod compress;
mod sigv4;

pub use body::Body;
pub use client::{ANSWER_BYTES, HttpClient, Response, excerpt, sensitive};
pub use compress::compress;
pub use sigv4::Signer;
