//! What every store receiver shares: an HTTP server on 127.0.0.1 with its
//! own runtime, a log of the requests that arrived, credentials it may
//! require, and faults scripted in order, one per request (a status with
//! or without `Retry-After`, a delay, a dropped connection), or the whole
//! port down. A store's receiver supplies only a [`Protocol`]: what it
//! answers to a request that met no fault.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::port::{Connection, Port};

/// How a store answers a request that met no fault and was authorized.
pub trait Protocol: Send + Sync + 'static {
    /// `path` is the request's path with the receiver's prefix taken off.
    fn answer(&self, parts: &Parts, path: &str, body: &[u8]) -> Answer;
}

/// A store's answer.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: Option<&'static str>,
    /// The size of the body once its `Content-Encoding` was undone; `None`
    /// when it was not decoded.
    pub decoded_body_len: Option<usize>,
    retry_after: Option<String>,
}

impl Answer {
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            body: body.into(),
            content_type: None,
            decoded_body_len: None,
            retry_after: None,
        }
    }

    pub fn json(status: StatusCode, body: &serde_json::Value) -> Answer {
        Answer {
            content_type: Some("application/json"),
            ..Answer::new(status, body.to_string())
        }
    }
}

/// Credentials every request must carry, like a store's own auth or a proxy in front.
#[derive(Clone, Debug)]
pub enum Auth {
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
    /// `Authorization: ApiKey <key>`, as Elasticsearch takes it.
    ApiKey(String),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, e.g. `/insert/jsonline?_stream_fields=source`.
    pub uri: String,
    pub headers: HeaderMap,
    /// Body size as sent.
    pub body_len: usize,
    /// Body size after `Content-Encoding` was undone; `None` when it was not decoded.
    pub decoded_body_len: Option<usize>,
    /// Status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
}

#[derive(Clone, Debug)]
enum Fault {
    /// This status, with `Retry-After` when given.
    Status(StatusCode, Option<String>),
    Delay(Duration),
    DropConnection,
}

#[derive(Default)]
struct Log {
    /// Every request, faulted ones included.
    requests_seen: u64,
    requests: Vec<LoggedRequest>,
    faults: VecDeque<Fault>,
    /// Requests whose decoded body holds these bytes are answered this
    /// status, every time: a record the store will never take.
    poison: Option<(Vec<u8>, StatusCode)>,
}

struct Service {
    protocol: Arc<dyn Protocol>,
    log: Mutex<Log>,
    auth: Option<Auth>,
    prefix: String,
}

/// A running receiver; it stops when dropped.
pub struct HttpReceiver {
    port: Port,
    service: Arc<Service>,
}

impl HttpReceiver {
    /// Serves `protocol` under `prefix` (`""`, or a proxy path such as
    /// `/logs`), requiring `auth` when given.
    pub fn start(protocol: Arc<dyn Protocol>, auth: Option<Auth>, prefix: &str) -> HttpReceiver {
        let service = Arc::new(Service {
            protocol,
            log: Mutex::default(),
            auth,
            prefix: prefix.trim_end_matches('/').to_owned(),
        });
        HttpReceiver {
            port: Port::start("store-receiver", 1, service.clone()),
            service,
        }
    }

    /// `http://127.0.0.1:<port>`, without the prefix.
    pub fn url(&self) -> String {
        format!("http://{}", self.port.address())
    }

    pub fn address(&self) -> SocketAddr {
        self.port.address()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log().requests.clone()
    }

    /// Requests that arrived, answered or not yet.
    pub fn requests_seen(&self) -> u64 {
        self.log().requests_seen
    }

    /// Waits until every request that arrived has been answered (delayed
    /// ones included), at most `timeout`.
    pub async fn settle(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.requests().len() as u64 != self.requests_seen() {
            assert!(
                std::time::Instant::now() < deadline,
                "requests still unanswered after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next `n` requests are answered `status` with nothing stored.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail(n, status, None);
    }

    /// [`fail_next`](Self::fail_next) with `Retry-After: <retry_after>`
    /// (seconds or an HTTP date), as a throttling or overloaded server answers.
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, retry_after: &str) {
        self.fail(n, status, Some(retry_after.to_owned()));
    }

    fn fail(&self, n: usize, status: u16, retry_after: Option<String>) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        self.script(n, Fault::Status(status, retry_after));
    }

    /// The next `n` requests are read, then answered only after `delay`. They
    /// are processed then even if the client gave up meanwhile, as a slow
    /// server would, so a retrying client may store records twice.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.script(n, Fault::Delay(delay));
    }

    /// Every request whose body, decoded, contains `needle` is answered
    /// `status` with nothing stored, as a store refuses a whole batch for
    /// one record it cannot take (a mapping error, a line too long).
    pub fn refuse_bodies_containing(&self, needle: &str, status: u16) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        self.log().poison = Some((needle.as_bytes().to_vec(), status));
    }

    /// The next `n` requests are read, then their TCP connection is closed without an answer.
    pub fn drop_connection_next(&self, n: usize) {
        self.script(n, Fault::DropConnection);
    }

    /// Down: the port refuses connections and open ones are closed. Up again:
    /// the same port accepts; what was stored and scripted is kept.
    pub fn set_down(&self, down: bool) {
        self.port.set_down(down);
    }

    fn script(&self, n: usize, fault: Fault) {
        self.log().faults.extend(std::iter::repeat_n(fault, n));
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.service.log.lock().expect("receiver log lock")
    }
}

impl Connection for Service {
    fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        mut down: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let serve = service_fn(move |request| handle(self.clone(), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), serve);
            // A failed connection (client gone, dropped by a fault) concerns
            // only that client; going down closes it.
            tokio::select! {
                _ = connection => {}
                _ = down.wait_for(|down| *down) => {}
            }
        })
    }
}

/// How often [`wait_for_stored`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `stored` until it holds at least `count` items and returns them
/// all; panics with `counters` if that takes longer than `timeout`.
/// `store` and `items` name them in the message ("Loki", "entries").
pub async fn wait_for_stored<T, C: std::fmt::Debug>(
    (store, items): (&str, &str),
    count: usize,
    timeout: Duration,
    stored: impl Fn() -> Vec<T>,
    counters: impl Fn() -> C,
) -> Vec<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let found = stored();
        if found.len() >= count {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{store} stored {} of {count} {items} within {timeout:?}; {:?}",
            found.len(),
            counters()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a scripted fault")
    }
}

impl std::error::Error for DropConnection {}

async fn handle(
    service: Arc<Service>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away mid-body; there is nobody to answer, and
        // nothing arrived.
        Err(_) => return Err(DropConnection),
    };
    let (fault, poison) = {
        let mut log = service.log.lock().expect("receiver log lock");
        log.requests_seen += 1;
        (log.faults.pop_front(), log.poison.clone())
    };
    if let Some((needle, status)) = poison
        && let Decoded::Body(decoded) = decode_body(
            content_encoding(&parts),
            &["gzip", "deflate", "zstd", "snappy"],
            &body,
        )
        && decoded.windows(needle.len()).any(|window| window == needle)
    {
        let answer = Answer::new(status, "refused: a record this store cannot take");
        service.log_request(&parts, body.len(), Some(&answer));
        return Ok(respond(answer));
    }
    let answer = match fault {
        Some(Fault::DropConnection) => {
            service.log_request(&parts, body.len(), None);
            return Err(DropConnection);
        }
        Some(Fault::Status(status, retry_after)) => Answer {
            retry_after,
            ..Answer::new(status, "scripted fault")
        },
        Some(Fault::Delay(delay)) => {
            let service = service.clone();
            // Spawned, the answer logged inside, so that a client hanging
            // up cannot cancel the processing or leave it unlogged.
            let delayed = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let answer = service.answer(&parts, &body);
                service.log_request(&parts, body.len(), Some(&answer));
                answer
            });
            let answer = delayed.await.expect("delayed request processing panicked");
            return Ok(respond(answer));
        }
        None => service.answer(&parts, &body),
    };
    service.log_request(&parts, body.len(), Some(&answer));
    Ok(respond(answer))
}

fn respond(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    if let Some(content_type) = answer.content_type {
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
    }
    if let Some(retry_after) = answer.retry_after {
        let value = hyper::header::HeaderValue::try_from(retry_after)
            .expect("a scripted Retry-After is a valid header value");
        headers.insert(hyper::header::RETRY_AFTER, value);
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        let challenge = hyper::header::HeaderValue::from_static("Basic realm=\"Restricted\"");
        headers.insert(hyper::header::WWW_AUTHENTICATE, challenge);
    }
    response
}

impl Service {
    /// Logs a request; `answer` is `None` when its connection was dropped.
    fn log_request(&self, parts: &Parts, body_len: usize, answer: Option<&Answer>) {
        let logged = LoggedRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body_len,
            decoded_body_len: answer.and_then(|a| a.decoded_body_len),
            status: answer.map(|a| a.status.as_u16()),
        };
        self.log
            .lock()
            .expect("receiver log lock")
            .requests
            .push(logged);
    }

    fn answer(&self, parts: &Parts, body: &[u8]) -> Answer {
        if let Some(auth) = &self.auth
            && !authorized(auth, &parts.headers)
        {
            return Answer::new(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let path = parts.uri.path();
        match path.strip_prefix(self.prefix.as_str()) {
            Some(path) if path.starts_with('/') => self.protocol.answer(parts, path, body),
            _ => Answer::new(
                StatusCode::NOT_FOUND,
                format!("unsupported path requested: {path:?}"),
            ),
        }
    }
}

fn authorized(auth: &Auth, headers: &HeaderMap) -> bool {
    let expected = match auth {
        Auth::Basic { username, password } => {
            let credentials =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            format!("Basic {credentials}")
        }
        Auth::Bearer(token) => format!("Bearer {token}"),
        Auth::ApiKey(key) => format!("ApiKey {key}"),
    };
    headers
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|given| given.as_bytes() == expected.as_bytes())
}

/// A request body with its `Content-Encoding` undone.
pub enum Decoded {
    Body(Vec<u8>),
    /// An encoding this store does not read.
    Unsupported,
    Corrupt(std::io::Error),
}

/// Undoes `encoding` if it is one of `accepted` (lower case: `gzip`,
/// `deflate` (zlib), `zstd`, `snappy` (one raw block)); none and
/// `identity` are always accepted.
pub fn decode_body(encoding: Option<&str>, accepted: &[&str], body: &[u8]) -> Decoded {
    let encoding = encoding.unwrap_or("").trim().to_ascii_lowercase();
    if encoding.is_empty() || encoding == "identity" {
        return Decoded::Body(body.to_vec());
    }
    if !accepted.contains(&encoding.as_str()) {
        return Decoded::Unsupported;
    }
    let mut decoded = Vec::new();
    let read = match encoding.as_str() {
        // Go's gzip reader reads concatenated members, as MultiGzDecoder does.
        "gzip" => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut decoded),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut decoded),
        "zstd" => {
            zstd::stream::read::Decoder::new(body).and_then(|mut d| d.read_to_end(&mut decoded))
        }
        "snappy" => snap::raw::Decoder::new()
            .decompress_vec(body)
            .map(|body| {
                decoded = body;
                decoded.len()
            })
            .map_err(std::io::Error::other),
        _ => return Decoded::Unsupported,
    };
    match read {
        Ok(_) => Decoded::Body(decoded),
        Err(e) => Decoded::Corrupt(e),
    }
}

/// The `Content-Encoding` header's value, if any.
pub fn content_encoding(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("<not text>"))
}
