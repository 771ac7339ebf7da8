//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, placed between s3logd and
//! one upstream (moto_server for S3 and SQS, or a store receiver), so that
//! tests can break exactly the calls they mean to: an SQS action, an S3
//! GetObject, the requests to one path.
//!
//! The proxy reads each request whole (by `Content-Length` or chunked, on
//! keep-alive connections too), records what it was, and either forwards it
//! untouched or applies the first rule that matches it: a reset, a canned
//! answer, a stall, an answer cut mid-body or relayed at a trickle. The whole
//! port can also go down, refusing connections and resetting open ones.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::port::{Connection, Port};
/// Larger heads are not HTTP any client of these tests sends.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Which requests a [`Rule`] applies to, or [`FaultProxy::seen`] counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    Any,
    /// An SQS action such as `"ReceiveMessage"` or `"DeleteMessageBatch"`:
    /// the `X-Amz-Target` header's action (AWS JSON protocol) or the
    /// `Action` form or query parameter (query protocol).
    SqsAction(&'static str),
    /// A path-style GET of an S3 object, not a listing nor an object's
    /// subresource (tags, ACL, parts).
    S3GetObject,
    /// The request target (path and query) contains this text.
    PathContains(String),
    /// The request carries header `name` (any case) with exactly `value`.
    Header {
        name: &'static str,
        value: String,
    },
}

/// What the proxy does to a request a rule matched.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Reads the request, then closes the connection without an answer (RST).
    Reset,
    /// Answers this instead of forwarding (a 503, a throttling error, an
    /// answer far larger than the service ever gives…).
    Answer {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Holds the request this long without answering, then closes.
    Stall(Duration),
    /// Forwards the request, relays the answer's head and this many bytes of
    /// its body (as sent, chunk framing included), then closes.
    CutBodyAfter(usize),
    /// Forwards the request and relays the whole answer at this rate.
    Trickle { bytes_per_sec: usize },
}

/// A fault for the requests a [`Match`] selects.
#[derive(Clone, Debug)]
pub struct Rule {
    matcher: Match,
    fault: Arc<Fault>,
    /// Matching requests still to fault; `None`: every one until cleared.
    left: Option<u64>,
}

impl Rule {
    /// Applies `fault` to every request `matcher` selects until cleared.
    pub fn new(matcher: Match, fault: Fault) -> Rule {
        Rule {
            matcher,
            fault: Arc::new(fault),
            left: None,
        }
    }

    /// Applies to the next `n` matching requests only.
    pub fn times(self, n: u64) -> Rule {
        Rule {
            left: Some(n),
            ..self
        }
    }
}

/// What the proxy knows of a request, for matching.
#[derive(Debug)]
struct Seen {
    method: String,
    target: String,
    sqs_action: Option<String>,
    headers: Vec<(String, String)>,
}

impl Match {
    fn selects(&self, request: &Seen) -> bool {
        match self {
            Match::Any => true,
            Match::SqsAction(action) => request.sqs_action.as_deref() == Some(*action),
            Match::S3GetObject => request.method == "GET" && is_object_target(&request.target),
            Match::PathContains(text) => request.target.contains(text.as_str()),
            Match::Header { name, value } => request
                .headers
                .iter()
                .any(|(header, sent)| header.eq_ignore_ascii_case(name) && sent == value),
        }
    }
}

/// Whether a path-style target names an object and reads it whole or in a
/// range, rather than a listing or one of the object's subresources.
fn is_object_target(target: &str) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let has_key = path
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(bucket, key)| !bucket.is_empty() && !key.is_empty());
    const SUBRESOURCES: [&str; 8] = [
        "acl",
        "tagging",
        "uploadId",
        "attributes",
        "retention",
        "legal-hold",
        "torrent",
        "restore",
    ];
    has_key
        && form_urlencoded::parse(query.as_bytes()).all(|(name, value)| {
            !SUBRESOURCES.contains(&name.as_ref()) && (name != "x-id" || value == "GetObject")
        })
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    injected: u64,
}

impl State {
    /// Records `request` and takes the fault of the first rule that still applies to it.
    fn admit(&mut self, request: Seen) -> Option<Arc<Fault>> {
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| rule.left != Some(0) && rule.matcher.selects(&request));
        let fault = rule.map(|rule| {
            if let Some(left) = rule.left.as_mut() {
                *left -= 1;
            }
            rule.fault.clone()
        });
        self.rules.retain(|rule| rule.left != Some(0));
        self.injected += u64::from(fault.is_some());
        self.seen.push(request);
        fault
    }
}

/// A running proxy in front of one upstream; it stops when dropped.
pub struct FaultProxy {
    port: Port,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let state = Arc::<Mutex<State>>::default();
        let relay = Arc::new(Relay {
            upstream,
            state: state.clone(),
        });
        FaultProxy {
            port: Port::start("fault-proxy", 2, relay),
            state,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.port.address())
    }

    pub fn addr(&self) -> SocketAddr {
        self.port.address()
    }

    /// Adds `rule` after the ones already there: the first rule that
    /// matches a request applies.
    pub fn inject(&self, rule: Rule) {
        self.state().rules.push(rule);
    }

    /// Removes every rule: everything is forwarded again.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Down: nothing listens on the port (connections are refused) and open
    /// connections are reset. Up again: the same port accepts; rules and
    /// counts are kept.
    pub fn set_down(&self, down: bool) {
        self.port.set_down(down);
    }

    /// Requests `matcher` selects that arrived so far, forwarded or faulted.
    pub fn seen(&self, matcher: &Match) -> u64 {
        let state = self.state();
        state
            .seen
            .iter()
            .filter(|request| matcher.selects(request))
            .count() as u64
    }

    /// Faults applied so far.
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("proxy state lock")
    }
}

/// How a connection ends.
enum Ending {
    /// FIN: the peer reads what was sent, then end of stream.
    Close,
    /// RST.
    Reset,
}

/// Forwards one client connection's requests.
struct Relay {
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Connection for Relay {
    fn serve(
        self: Arc<Self>,
        client: TcpStream,
        down: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.relay(client, down))
    }
}

impl Relay {
    async fn relay(self: Arc<Self>, client: TcpStream, mut down: watch::Receiver<bool>) {
        let mut client = Peer::new(client);
        let ending = tokio::select! {
            ending = self.relay_requests(&mut client) => ending,
            _ = down.wait_for(|down| *down) => Ending::Reset,
        };
        let stream = client.stream;
        match ending {
            Ending::Close => {
                let mut stream = stream;
                let _ = stream.shutdown().await;
            }
            Ending::Reset => {
                // Zero linger makes the close an RST; a failure leaves a FIN,
                // still an end without an answer.
                let _ = stream.set_zero_linger();
            }
        }
    }

    async fn relay_requests(&self, client: &mut Peer) -> Ending {
        let mut upstream: Option<Peer> = None;
        loop {
            let request = match Request::read(client).await {
                Ok(Some(request)) => request,
                Ok(None) => return Ending::Close,
                Err(_) => return Ending::Reset,
            };
            let fault = self
                .state
                .lock()
                .expect("proxy state lock")
                .admit(request.seen());
            let pace = match fault.as_deref() {
                Some(Fault::Reset) => return Ending::Reset,
                Some(Fault::Answer {
                    status,
                    content_type,
                    body,
                }) => {
                    let head = format!(
                        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n\
                         Content-Length: {}\r\n\r\n",
                        reason(*status),
                        body.len()
                    );
                    if client.stream.write_all(head.as_bytes()).await.is_err()
                        || client.stream.write_all(body).await.is_err()
                    {
                        return Ending::Reset;
                    }
                    if request.closes {
                        return Ending::Close;
                    }
                    continue;
                }
                Some(Fault::Stall(duration)) => {
                    tokio::time::sleep(*duration).await;
                    return Ending::Close;
                }
                Some(Fault::CutBodyAfter(bytes)) => Pace::CutAfter(*bytes),
                Some(Fault::Trickle { bytes_per_sec }) => Pace::Trickle(*bytes_per_sec),
                None => Pace::Whole,
            };
            let peer = match upstream.take() {
                Some(peer) => peer,
                None => match TcpStream::connect(self.upstream).await {
                    Ok(stream) => Peer::new(stream),
                    Err(_) => return Ending::Reset,
                },
            };
            match forward(&request, peer, client, pace).await {
                Forwarded::KeepAlive(peer) if !request.closes => upstream = Some(peer),
                Forwarded::KeepAlive(_) | Forwarded::Closed => return Ending::Close,
                Forwarded::Failed => return Ending::Reset,
            }
        }
    }
}

/// A socket with the bytes read ahead of what was consumed.
struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Reads more into the buffer; false at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await?;
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// A head up to and including its blank line; `None` when the stream
    /// ends cleanly before one starts.
    async fn read_head(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                return Ok(Some(self.buffer.drain(..end + 4).collect()));
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(invalid("head too large"));
            }
            if !self.fill().await? {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// One line, CRLF included.
    async fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                return Ok(self.buffer.drain(..end + 2).collect());
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Up to `max` bytes, read ahead ones first; empty at end of stream.
    async fn read_some(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        if self.buffer.is_empty() && !self.fill().await? {
            return Ok(Vec::new());
        }
        let n = max.min(self.buffer.len());
        Ok(self.buffer.drain(..n).collect())
    }

    /// Exactly `n` bytes.
    async fn read_exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buffer.len() < n {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buffer.drain(..n).collect())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// A message head: its start line and headers.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> std::io::Result<Head> {
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("head is not UTF-8"))?;
        let mut lines = text.trim_end_matches("\r\n").split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .map(|line| {
                line.split_once(':')
                    .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                    .ok_or_else(|| invalid("header without a colon"))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Head { start, headers })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    }

    fn is_chunked(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
    }

    fn content_length(&self) -> std::io::Result<Option<usize>> {
        self.header("content-length")
            .map(|value| value.parse().map_err(|_| invalid("bad Content-Length")))
            .transpose()
    }

    /// The head as sent, without the headers named in `dropped`.
    fn to_bytes(&self, dropped: &[&str]) -> Vec<u8> {
        let mut bytes = format!("{}\r\n", self.start).into_bytes();
        for (name, value) in &self.headers {
            if !dropped.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
        }
        bytes.extend_from_slice(b"\r\n");
        bytes
    }
}

/// A request read whole from the client.
struct Request {
    head: Head,
    method: String,
    target: String,
    /// The body as sent (chunk framing included).
    body: Vec<u8>,
    /// The body's content, for matching on form parameters.
    content: Vec<u8>,
    /// The client asked to close the connection after this request.
    closes: bool,
}

impl Request {
    async fn read(client: &mut Peer) -> std::io::Result<Option<Request>> {
        let Some(bytes) = client.read_head().await? else {
            return Ok(None);
        };
        let head = Head::parse(&bytes)?;
        let mut start = head.start.split(' ');
        let method = start.next().unwrap_or_default().to_owned();
        let target = start.next().ok_or_else(|| invalid("no target"))?.to_owned();
        if head.has_token("expect", "100-continue") {
            // The client waits for this before sending the body; upstream
            // gets the body with the request, so it is not asked again.
            client
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let (body, content) = if head.is_chunked() {
            read_chunked(client, &mut |_| ()).await?
        } else {
            let body = client
                .read_exact(head.content_length()?.unwrap_or(0))
                .await?;
            (body.clone(), body)
        };
        let closes = head.has_token("connection", "close");
        Ok(Some(Request {
            head,
            method,
            target,
            body,
            content,
            closes,
        }))
    }

    fn seen(&self) -> Seen {
        let sqs_action = match self.head.header("x-amz-target") {
            Some(target) => target.rsplit_once('.').map(|(_, action)| action.to_owned()),
            None => {
                let query = self.target.split_once('?').map_or("", |(_, query)| query);
                form_urlencoded::parse(query.as_bytes())
                    .chain(form_urlencoded::parse(&self.content))
                    .find(|(name, _)| name == "Action")
                    .map(|(_, action)| action.into_owned())
            }
        };
        Seen {
            method: self.method.clone(),
            target: self.target.clone(),
            sqs_action,
            headers: self.head.headers.clone(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.head.to_bytes(&["expect"]);
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads a chunked body whole, handing each raw piece (framing included) to
/// `relay` as it goes; returns the raw body and its content.
async fn read_chunked(
    peer: &mut Peer,
    relay: &mut (dyn FnMut(&[u8]) + Send),
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut content = Vec::new();
    loop {
        let line = peer.read_line().await?;
        relay(&line);
        raw.extend_from_slice(&line);
        let size = chunk_size(&line)?;
        if size == 0 {
            // Trailers, up to the blank line that ends the body.
            loop {
                let trailer = peer.read_line().await?;
                relay(&trailer);
                raw.extend_from_slice(&trailer);
                if trailer == b"\r\n" {
                    return Ok((raw, content));
                }
            }
        }
        let data = peer.read_exact(size + 2).await?;
        relay(&data);
        raw.extend_from_slice(&data);
        content.extend_from_slice(&data[..size]);
    }
}

fn chunk_size(line: &[u8]) -> std::io::Result<usize> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("bad chunk size"))?;
    let digits = text.trim_end().split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(digits, 16).map_err(|_| invalid("bad chunk size"))
}

/// How an answer is relayed to the client.
#[derive(Clone, Copy)]
enum Pace {
    Whole,
    /// The head, then this many body bytes, then the connection closes.
    CutAfter(usize),
    Trickle(usize),
}

/// Where the answer goes: the client, at the pace asked.
struct Outlet<'a> {
    client: &'a mut TcpStream,
    pace: Pace,
    body_sent: usize,
}

/// Why relaying an answer stopped before its end.
enum Stop {
    /// The cut asked for was reached.
    Cut,
    /// Upstream or the client failed.
    Failed,
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Stop {
        Stop::Failed
    }
}

impl Outlet<'_> {
    async fn head(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.paced(bytes).await
    }

    async fn body(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let bytes = match self.pace {
            Pace::CutAfter(budget) => {
                let allowed = budget.saturating_sub(self.body_sent).min(bytes.len());
                self.paced(&bytes[..allowed]).await?;
                self.body_sent += allowed;
                if allowed < bytes.len() || self.body_sent == budget {
                    return Err(Stop::Cut);
                }
                return Ok(());
            }
            _ => bytes,
        };
        Ok(self.paced(bytes).await?)
    }

    async fn paced(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Pace::Trickle(bytes_per_sec) = self.pace else {
            return self.client.write_all(bytes).await;
        };
        // Twenty writes a second: slow, yet no byte waits long.
        let step = (bytes_per_sec / 20).max(1);
        let pause = Duration::from_secs_f64(step as f64 / bytes_per_sec.max(1) as f64);
        for piece in bytes.chunks(step) {
            self.client.write_all(piece).await?;
            self.client.flush().await?;
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }
}

enum Forwarded {
    /// The answer was relayed whole; the upstream connection can carry another request.
    KeepAlive(Peer),
    /// The answer was relayed whole and the upstream connection closed, or
    /// it was cut as asked: the client connection ends too.
    Closed,
    /// Upstream or the client failed mid-way.
    Failed,
}

/// Sends `request` upstream and relays the answer to the client at `pace`.
async fn forward(
    request: &Request,
    mut upstream: Peer,
    client: &mut Peer,
    pace: Pace,
) -> Forwarded {
    if upstream
        .stream
        .write_all(&request.to_bytes())
        .await
        .is_err()
    {
        return Forwarded::Failed;
    }
    let mut outlet = Outlet {
        client: &mut client.stream,
        pace,
        body_sent: 0,
    };
    match relay_answer(&request.method, &mut upstream, &mut outlet).await {
        Ok(true) => Forwarded::KeepAlive(upstream),
        Ok(false) => Forwarded::Closed,
        Err(Stop::Cut) => Forwarded::Closed,
        Err(Stop::Failed) => Forwarded::Failed,
    }
}

/// Relays one answer (after any interim 1xx ones); Ok(true) when the
/// upstream connection stays open.
async fn relay_answer(
    method: &str,
    upstream: &mut Peer,
    outlet: &mut Outlet<'_>,
) -> Result<bool, Stop> {
    let (head, status) = loop {
        let bytes = upstream.read_head().await?.ok_or(Stop::Failed)?;
        let head = Head::parse(&bytes)?;
        outlet.head(&bytes).await?;
        let status: u16 = head
            .start
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or(Stop::Failed)?;
        if !(100..200).contains(&status) {
            break (head, status);
        }
    };
    let keeps_open = !head.has_token("connection", "close");
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(keeps_open);
    }
    if head.is_chunked() {
        // Read whole before it is relayed: the chunked answers of these
        // peers are small (errors, store replies).
        let mut pieces = Vec::new();
        read_chunked(upstream, &mut |piece| pieces.push(piece.to_vec())).await?;
        for piece in pieces {
            outlet.body(&piece).await?;
        }
        return Ok(keeps_open);
    }
    match head.content_length()? {
        Some(mut left) => {
            while left > 0 {
                let piece = upstream.read_some(left.min(READ_CHUNK)).await?;
                if piece.is_empty() {
                    return Err(Stop::Failed);
                }
                left -= piece.len();
                outlet.body(&piece).await?;
            }
            Ok(keeps_open)
        }
        None => {
            // Delimited by the end of the connection.
            loop {
                let piece = upstream.read_some(READ_CHUNK).await?;
                if piece.is_empty() {
                    return Ok(false);
                }
                outlet.body(&piece).await?;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}
