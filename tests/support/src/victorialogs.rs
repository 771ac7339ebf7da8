//! A VictoriaLogs stand-in for integration tests: an HTTP server on
//! 127.0.0.1 that ingests `/insert/jsonline` the way VictoriaLogs does
//! (aws-log-formats.md §7.1, source at commit 7c0626e, quirks included),
//! keeps the rows for tests to inspect, and fails on request.
//!
//! Modelled rules, in the order a request meets them:
//! * faults scripted with [`VictoriaLogs::fail_next`] and friends, one per
//!   request in the order they were scripted;
//! * the optional [`Auth`] requirement (401 otherwise);
//! * tenant headers `AccountID`/`ProjectID` (uint32, default 0; 400 if not);
//! * a body not sent as `Content-Type: application/stream+json` is answered
//!   200 and dropped unread;
//! * `Content-Encoding` gzip, deflate (zlib), zstd or none/identity; any
//!   other encoding is logged and answered 200 with nothing stored (the
//!   quirk at that commit; snappy, which VictoriaLogs reads, is not modelled
//!   and lands here too); a body that does not decode is a 400;
//! * `_msg_field`, `_time_field`, `_stream_fields` query args, each falling
//!   back to its `VL-Msg-Field`/`VL-Time-Field`/`VL-Stream-Fields` header;
//! * one JSON object per line, nested objects flattened with `.`, every value
//!   a string (arrays as compact JSON), empty strings and null absent;
//! * lines over 256 KiB are skipped and counted; lines that are not JSON
//!   objects or whose time does not parse are skipped and counted, and the
//!   request is a 400 only when every line failed; otherwise 200, empty body.
//!
//! Not modelled: `ignore_fields`, `extra_fields`, `decolorize_fields`,
//! `debug`, the retention window, request size limits.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// `-insert.maxLineSizeBytes` default.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// `-defaultMsgValue` default, stored as `_msg` when no message field has a value.
pub const MISSING_MSG: &str = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field";

const STREAM_CONTENT_TYPE: &str = "application/stream+json";
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running receiver; it stops when dropped.
pub struct VictoriaLogs {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    auth: Arc<Option<Auth>>,
    acceptor: Mutex<Option<Acceptor>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Credentials every request must carry, like `-httpAuth.*` or a proxy in front.
#[derive(Clone, Debug)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer(String),
}

/// One ingested log row, as a query would return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub account_id: u32,
    pub project_id: u32,
    /// `_time` in Unix nanoseconds.
    pub time: i64,
    pub time_source: TimeSource,
    pub msg: String,
    /// `_stream`, e.g. `{elb="app/x",source="alb"}`; `{}` without stream fields.
    pub stream: String,
    /// Every other field: stream fields included, the time field and the
    /// field that became `_msg` excluded.
    pub fields: BTreeMap<String, String>,
}

/// Where a row's `_time` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// RFC 3339 with `Z` or an offset.
    Rfc3339,
    /// RFC 3339 without a zone. VictoriaLogs reads it in its own local zone;
    /// this receiver reads it as UTC, so a row like this is a bug to catch.
    Rfc3339WithoutZone,
    /// Unix seconds, milliseconds, microseconds or nanoseconds.
    UnixInteger,
    /// No time field value (or `"0"`): the time the row was ingested.
    Ingestion,
}

/// What the receiver has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request, faulted ones included.
    pub requests: u64,
    pub rows_stored: u64,
    /// Lines that were not JSON objects or whose time did not parse.
    pub invalid_lines: u64,
    /// Lines longer than [`MAX_LINE_BYTES`] (`vl_too_long_lines_skipped_total`).
    pub too_long_lines: u64,
    /// Bodies answered 200 and dropped for lacking the stream+json content type.
    pub dropped_bodies: u64,
    /// Bodies answered 200 and dropped for an unsupported `Content-Encoding`.
    pub unsupported_encodings: u64,
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, e.g. `/insert/jsonline?_stream_fields=source`.
    pub uri: String,
    pub headers: HeaderMap,
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
struct State {
    /// Benchmark mode: lines are counted in `rows_stored`, neither parsed nor kept.
    count_only: bool,
    rows: Vec<StoredRow>,
    counters: Counters,
    requests: Vec<LoggedRequest>,
    faults: VecDeque<Fault>,
}

/// The accept loop currently serving the port.
struct Acceptor {
    stop: oneshot::Sender<()>,
    stopped: mpsc::Receiver<()>,
}

impl VictoriaLogs {
    /// Starts a receiver that accepts any request.
    pub fn start() -> VictoriaLogs {
        Self::start_with(None)
    }

    /// Starts a receiver for benchmarks: requests meet the same protocol
    /// rules up to the body's decoding, then every non-blank line counts as
    /// a stored row (in [`Counters::rows_stored`]) without being parsed or
    /// kept, so the receiver costs little CPU and no memory.
    pub fn start_counting() -> VictoriaLogs {
        let receiver = Self::start_with(None);
        receiver.lock().count_only = true;
        receiver
    }

    /// Starts a receiver that answers 401 to requests without these credentials.
    pub fn start_with_auth(auth: Auth) -> VictoriaLogs {
        Self::start_with(Some(auth))
    }

    fn start_with(auth: Option<Auth>) -> VictoriaLogs {
        // Its own runtime keeps the receiver serving whatever the test's
        // runtime does (blocking calls, current-thread scheduling).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("victorialogs-receiver")
            .enable_all()
            .build()
            .expect("cannot build the receiver's runtime");
        let mut receiver = VictoriaLogs {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state: Arc::default(),
            auth: Arc::new(auth),
            acceptor: Mutex::new(None),
            runtime: Some(runtime),
        };
        receiver.address = receiver.listen(receiver.address);
        receiver
    }

    /// `http://127.0.0.1:<port>`; ingestion goes to `<url>/insert/jsonline`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn rows(&self) -> Vec<StoredRow> {
        self.lock().rows.clone()
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().requests.clone()
    }

    /// Waits until at least `count` rows are stored and returns them all;
    /// panics with the counters if that takes longer than `timeout`.
    pub async fn wait_for_rows(&self, count: usize, timeout: Duration) -> Vec<StoredRow> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.rows();
            if rows.len() >= count {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "VictoriaLogs stored {} of {count} rows within {timeout:?}; {:?}",
                rows.len(),
                self.counters()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
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
    /// server would, so a retrying client may store rows twice.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.script(n, Fault::Delay(delay));
    }

    /// The next `n` requests are read, then their TCP connection is closed without an answer.
    pub fn drop_connection_next(&self, n: usize) {
        self.script(n, Fault::DropConnection);
    }

    /// Down: the port refuses connections and open ones are closed. Up again:
    /// the same port accepts; stored rows and scripted faults are kept.
    pub fn set_down(&self, down: bool) {
        let mut acceptor = self.acceptor.lock().expect("acceptor lock");
        match (down, acceptor.take()) {
            (true, Some(running)) => {
                // The receiver may already be gone if the loop ended; either way it is stopped.
                let _ = running.stop.send(());
                running
                    .stopped
                    .recv_timeout(STOP_TIMEOUT)
                    .expect("the receiver did not stop accepting in time");
            }
            (false, None) => {
                drop(acceptor);
                self.listen(self.address);
            }
            (_, unchanged) => *acceptor = unchanged,
        }
    }

    fn script(&self, n: usize, fault: Fault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("receiver state lock")
    }

    /// Binds `address` and serves it until [`Acceptor::stop`]; returns the bound address.
    fn listen(&self, address: SocketAddr) -> SocketAddr {
        let (bound_tx, bound_rx) = mpsc::channel();
        let (stop, stop_rx) = oneshot::channel();
        let (stopped_tx, stopped) = mpsc::channel();
        let (state, auth) = (self.state.clone(), self.auth.clone());
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        runtime.spawn(async move {
            let listener = match bind(address) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            let _ = bound_tx.send(listener.local_addr());
            accept_until_stopped(listener, state, auth, stop_rx).await;
            // The receiving side may have timed out; nothing is waiting then.
            let _ = stopped_tx.send(());
        });
        let bound = bound_rx
            .recv()
            .expect("the receiver's runtime is running")
            .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
        *self.acceptor.lock().expect("acceptor lock") = Some(Acceptor { stop, stopped });
        bound
    }
}

impl Drop for VictoriaLogs {
    fn drop(&mut self) {
        // Tests drop the receiver inside their own runtime, where blocking
        // on a shutdown is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Connections closed by going down linger in TIME_WAIT on this port.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn accept_until_stopped(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    auth: Arc<Option<Auth>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (state, auth) = (state.clone(), auth.clone());
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), auth.clone(), request));
                    // A failed connection (client gone, dropped by a fault) concerns only that client.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
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

/// An HTTP answer and the size of the decoded body it was based on.
struct Answer {
    status: StatusCode,
    message: String,
    retry_after: Option<String>,
    decoded_body_len: Option<usize>,
}

impl Answer {
    fn new(status: StatusCode, message: impl Into<String>) -> Answer {
        Answer {
            status,
            message: message.into(),
            retry_after: None,
            decoded_body_len: None,
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    auth: Arc<Option<Auth>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let fault = {
        let mut state = state.lock().expect("receiver state lock");
        state.counters.requests += 1;
        state.faults.pop_front()
    };
    let (parts, body) = request.into_parts();
    let log = |answer: Option<&Answer>| {
        let logged = LoggedRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            decoded_body_len: answer.and_then(|a| a.decoded_body_len),
            status: answer.map(|a| a.status.as_u16()),
        };
        state
            .lock()
            .expect("receiver state lock")
            .requests
            .push(logged);
    };
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away mid-body; there is nobody to answer.
        Err(_) => return Err(DropConnection),
    };
    let answer = match fault {
        Some(Fault::DropConnection) => {
            log(None);
            return Err(DropConnection);
        }
        Some(Fault::Status(status, retry_after)) => Answer {
            retry_after,
            ..Answer::new(status, "scripted fault")
        },
        Some(Fault::Delay(delay)) => {
            let (state, auth, parts) = (state.clone(), auth.clone(), parts.clone());
            // Spawned so that a client hanging up cannot cancel the processing.
            let delayed = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                answer(&state, auth.as_ref().as_ref(), &parts, &body)
            });
            delayed.await.expect("delayed request processing panicked")
        }
        None => answer(&state, auth.as_ref().as_ref(), &parts, &body),
    };
    log(Some(&answer));
    let mut response = Response::new(Full::new(Bytes::from(answer.message)));
    *response.status_mut() = answer.status;
    if let Some(retry_after) = answer.retry_after {
        let value = hyper::header::HeaderValue::try_from(retry_after)
            .expect("a scripted Retry-After is a valid header value");
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, value);
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        let challenge = hyper::header::HeaderValue::from_static("Basic realm=\"Restricted\"");
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, challenge);
    }
    Ok(response)
}

fn answer(state: &Mutex<State>, auth: Option<&Auth>, parts: &Parts, body: &[u8]) -> Answer {
    if let Some(auth) = auth
        && !authorized(auth, &parts.headers)
    {
        return Answer::new(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match parts.uri.path() {
        "/insert/jsonline" => insert_jsonline(state, parts, body),
        "/health" => Answer::new(StatusCode::OK, "OK"),
        path => Answer::new(
            StatusCode::NOT_FOUND,
            format!("unsupported path requested: {path:?}"),
        ),
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
    };
    headers
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|given| given.as_bytes() == expected.as_bytes())
}

/// Field lists from the query arg, else from the header; empty means unset.
struct IngestParams {
    account_id: u32,
    project_id: u32,
    msg_fields: Vec<String>,
    time_fields: Vec<String>,
    stream_fields: Vec<String>,
}

impl IngestParams {
    fn from_request(parts: &Parts) -> Result<IngestParams, String> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let list = |arg: &str, header: &str, default: &str| {
            let from_query = query
                .iter()
                .find(|(name, value)| name == arg && !value.is_empty())
                .map(|(_, v)| v.as_str());
            let from_header = parts
                .headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty());
            from_query
                .or(from_header)
                .unwrap_or(default)
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        Ok(IngestParams {
            account_id: tenant_id(&parts.headers, "AccountID")?,
            project_id: tenant_id(&parts.headers, "ProjectID")?,
            msg_fields: list("_msg_field", "VL-Msg-Field", "_msg"),
            time_fields: list("_time_field", "VL-Time-Field", "_time"),
            stream_fields: list("_stream_fields", "VL-Stream-Fields", ""),
        })
    }
}

fn tenant_id(headers: &HeaderMap, name: &str) -> Result<u32, String> {
    match headers.get(name) {
        None => Ok(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| format!("cannot parse {name} header {value:?} as uint32")),
    }
}

fn insert_jsonline(state: &Mutex<State>, parts: &Parts, body: &[u8]) -> Answer {
    let params = match IngestParams::from_request(parts) {
        Ok(params) => params,
        Err(e) => return Answer::new(StatusCode::BAD_REQUEST, e),
    };
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let media_type = content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(STREAM_CONTENT_TYPE)) {
        state
            .lock()
            .expect("receiver state lock")
            .counters
            .dropped_bodies += 1;
        return Answer::new(StatusCode::OK, "");
    }
    let encoding = parts
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let decoded = match decode_body(encoding.unwrap_or(""), body) {
        Decoded::Body(decoded) => decoded,
        Decoded::Unsupported => {
            eprintln!(
                "victorialogs receiver: unsupported Content-Encoding {encoding:?}; body dropped"
            );
            state
                .lock()
                .expect("receiver state lock")
                .counters
                .unsupported_encodings += 1;
            return Answer::new(StatusCode::OK, "");
        }
        Decoded::Corrupt(e) => {
            return Answer::new(
                StatusCode::BAD_REQUEST,
                format!("cannot decode {encoding:?} body: {e}"),
            );
        }
    };
    if state.lock().expect("receiver state lock").count_only {
        return count_lines(state, &decoded);
    }
    let ingestion_time = unix_nanos_now();
    let mut rows = Vec::new();
    let (mut failed, mut too_long, mut first_error) = (0u64, 0u64, None);
    for line in decoded.split(|&b| b == b'\n') {
        if line.trim_ascii().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            too_long += 1;
            continue;
        }
        match parse_row(line, &params, ingestion_time) {
            Ok(row) => rows.push(row),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let mut answer = if failed > 0 && rows.is_empty() {
        let e = first_error.unwrap_or_default();
        Answer::new(
            StatusCode::BAD_REQUEST,
            format!("cannot parse any of {failed} lines: {e}"),
        )
    } else {
        Answer::new(StatusCode::OK, "")
    };
    answer.decoded_body_len = Some(decoded.len());
    let mut state = state.lock().expect("receiver state lock");
    state.counters.invalid_lines += failed;
    state.counters.too_long_lines += too_long;
    state.counters.rows_stored += rows.len() as u64;
    state.rows.extend(rows);
    answer
}

fn count_lines(state: &Mutex<State>, decoded: &[u8]) -> Answer {
    let lines = decoded
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .count();
    state
        .lock()
        .expect("receiver state lock")
        .counters
        .rows_stored += lines as u64;
    let mut answer = Answer::new(StatusCode::OK, "");
    answer.decoded_body_len = Some(decoded.len());
    answer
}

enum Decoded {
    Body(Vec<u8>),
    Unsupported,
    Corrupt(std::io::Error),
}

fn decode_body(encoding: &str, body: &[u8]) -> Decoded {
    let mut decoded = Vec::new();
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => return Decoded::Body(body.to_vec()),
        // Go's gzip reader reads concatenated members, as MultiGzDecoder does.
        "gzip" => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut decoded),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut decoded),
        "zstd" => {
            zstd::stream::read::Decoder::new(body).and_then(|mut d| d.read_to_end(&mut decoded))
        }
        _ => return Decoded::Unsupported,
    };
    match read {
        Ok(_) => Decoded::Body(decoded),
        Err(e) => Decoded::Corrupt(e),
    }
}

fn parse_row(line: &[u8], params: &IngestParams, ingestion_time: i64) -> Result<StoredRow, String> {
    let object: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(line).map_err(|e| format!("cannot parse JSON object: {e}"))?;
    let mut fields = BTreeMap::new();
    flatten_into(&mut fields, "", object)?;

    let time_value = take_first(&mut fields, &params.time_fields);
    let (time, time_source) = match time_value.as_deref() {
        None | Some("0") => (ingestion_time, TimeSource::Ingestion),
        Some(text) => parse_time(text).ok_or_else(|| format!("cannot parse timestamp {text:?}"))?,
    };
    let msg = take_first(&mut fields, &params.msg_fields).unwrap_or_else(|| MISSING_MSG.to_owned());
    let stream = stream_of(&fields, &params.stream_fields);
    Ok(StoredRow {
        account_id: params.account_id,
        project_id: params.project_id,
        time,
        time_source,
        msg,
        stream,
        fields,
    })
}

/// Adds an object's leaves under `prefix` (`host.name` for `{"host":{"name":…}}`),
/// each as a string; empty strings and nulls are absent.
fn flatten_into(
    fields: &mut BTreeMap<String, String>,
    prefix: &str,
    object: BTreeMap<String, Box<RawValue>>,
) -> Result<(), String> {
    for (key, raw) in object {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let text = raw.get();
        let value = match text.as_bytes()[0] {
            b'{' => {
                let nested = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
                flatten_into(fields, &name, nested)?;
                continue;
            }
            b'"' => serde_json::from_str::<String>(text).map_err(|e| format!("{name}: {e}"))?,
            b'[' => serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| format!("{name}: {e}"))?
                .to_string(),
            b'n' => continue,
            // Numbers and booleans keep the text they were sent as.
            _ => text.to_owned(),
        };
        if !value.is_empty() {
            fields.insert(name, value);
        }
    }
    Ok(())
}

/// Removes and returns the value of the first of `names` present.
fn take_first(fields: &mut BTreeMap<String, String>, names: &[String]) -> Option<String> {
    names.iter().find_map(|name| fields.remove(name))
}

/// `{a="x",b="y"}` from the stream fields present, sorted by name as
/// VictoriaLogs keeps stream tags.
fn stream_of(fields: &BTreeMap<String, String>, stream_fields: &[String]) -> String {
    let mut tags: Vec<(&String, &String)> = stream_fields
        .iter()
        .filter_map(|name| fields.get_key_value(name))
        .collect();
    tags.sort();
    tags.dedup();
    let tags: Vec<String> = tags
        .into_iter()
        .map(|(name, value)| format!("{name}={}", serde_json::Value::from(value.as_str())))
        .collect();
    format!("{{{}}}", tags.join(","))
}

fn parse_time(text: &str) -> Option<(i64, TimeSource)> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some((
            unix_integer_nanos(text.parse().ok()?),
            TimeSource::UnixInteger,
        ));
    }
    let nanos = s3logd_parser_sdk::time::parse_iso8601(text)?;
    Some((
        nanos,
        if has_zone(text) {
            TimeSource::Rfc3339
        } else {
            TimeSource::Rfc3339WithoutZone
        },
    ))
}

/// The unit of a Unix timestamp follows from its magnitude, as in
/// VictoriaMetrics' `lib/timeutil`: the largest unit whose nanoseconds still
/// fit in an i64. (Fractional and scientific forms, which it also reads, are
/// not modelled: such a line counts as invalid here.)
fn unix_integer_nanos(n: i64) -> i64 {
    [1_000_000_000, 1_000_000, 1_000]
        .into_iter()
        .find(|&multiplier| (i64::MIN / multiplier..=i64::MAX / multiplier).contains(&n))
        .map_or(n, |multiplier| n * multiplier)
}

/// Whether an RFC 3339 text (already known to parse) ends in `Z` or a `±hh[:mm]` offset.
fn has_zone(text: &str) -> bool {
    // The date part has `-` of its own; a zone can only follow the seconds.
    let after_seconds = &text[19..];
    after_seconds.ends_with(['Z', 'z']) || after_seconds.contains(['+', '-'])
}

fn unix_nanos_now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_nanos()).expect("time fits in i64 nanoseconds")
}
