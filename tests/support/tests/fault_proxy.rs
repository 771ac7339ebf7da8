//! The fault proxy forwards HTTP/1.1 exchanges untouched (keep-alive,
//! chunked bodies both ways), applies each fault to exactly the requests its
//! rule selects and as many times as asked, and goes down and up on demand.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use s3logd_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};

/// An upstream that answers `GET /bytes/N` with N bytes (`0123456789…`)
/// by `Content-Length`, `GET /chunked/N` with the same bytes chunked, and
/// anything else with `got N: <body>`, keeping connections alive.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(
                http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)),
            );
        }
    });
    address
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let size = |prefix: &str| path.strip_prefix(prefix).and_then(|n| n.parse().ok());
    if let Some(n) = size("/bytes/") {
        return Ok(Response::new(Full::new(digits(n).into())));
    }
    if let Some(n) = size("/chunked/") {
        return Ok(Response::builder()
            .header("Transfer-Encoding", "chunked")
            .body(Full::new(digits(n).into()))
            .expect("a response"));
    }
    let body = request
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let mut text = format!("got {}: ", body.len()).into_bytes();
    text.extend_from_slice(&body);
    Ok(Response::new(Full::new(text.into())))
}

fn digits(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'0' + (i % 10) as u8).collect()
}

/// A client that opens a new connection per request, so that one request's
/// fault cannot affect the next.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

async fn get(proxy: &FaultProxy, path: &str) -> reqwest::Result<(u16, Vec<u8>)> {
    let response = client()
        .get(format!("{}{path}", proxy.url()))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

/// Reads one answer from a raw connection: its head and its body by
/// `Content-Length` or chunked (the body as sent, framing included).
async fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> (String, Vec<u8>) {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buffer).await;
    };
    let head = String::from_utf8(buffer.drain(..head_end).collect()).expect("a text head");
    let lower = head.to_ascii_lowercase();
    let body_len = if lower.contains("transfer-encoding: chunked") {
        loop {
            if let Some(at) = buffer.windows(5).position(|w| w == b"0\r\n\r\n") {
                break at + 5;
            }
            fill(stream, buffer).await;
        }
    } else {
        let length = lower
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a length")
            .trim()
            .parse()
            .expect("a number");
        while buffer.len() < length {
            fill(stream, buffer).await;
        }
        length
    };
    (head, buffer.drain(..body_len).collect())
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.expect("readable");
    assert!(n > 0, "the connection ended mid-answer: {buffer:?}");
    buffer.extend_from_slice(&chunk[..n]);
}

/// Everything the connection sends until it ends.
async fn read_to_end(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await?;
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_on_one_connection_are_forwarded_untouched() {
    let proxy = FaultProxy::start(upstream().await);
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("accepts");
    let mut buffer = Vec::new();

    stream
        .write_all(b"GET /bytes/12 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_answer(&mut stream, &mut buffer).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"012345678901");

    // A chunked request body, in two chunks with an extension.
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let (_, body) = read_answer(&mut stream, &mut buffer).await;
    assert_eq!(body, b"got 11: hello world");

    stream
        .write_all(b"GET /chunked/4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_answer(&mut stream, &mut buffer).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, b"4\r\n0123\r\n0\r\n\r\n");

    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let (_, body) = read_answer(&mut stream, &mut buffer).await;
    assert_eq!(body, b"got 3: abc");

    assert_eq!(proxy.seen(&Match::Any), 4);
    assert_eq!(proxy.seen(&Match::PathContains("/echo".into())), 2);
    assert_eq!(proxy.injected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_ends_the_connection_without_an_answer_for_matching_requests_only() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(Rule::new(
        Match::PathContains("/bytes/5".into()),
        Fault::Reset,
    ));
    assert!(get(&proxy, "/bytes/5").await.is_err());
    assert!(get(&proxy, "/bytes/5").await.is_err());
    assert_eq!(get(&proxy, "/bytes/6").await.unwrap(), (200, digits(6)));
    assert_eq!(proxy.injected(), 2);
    proxy.clear();
    assert_eq!(get(&proxy, "/bytes/5").await.unwrap(), (200, digits(5)));
    assert_eq!(proxy.seen(&Match::PathContains("/bytes/5".into())), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canned_answer_applies_as_many_times_as_asked_on_a_kept_alive_connection() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(
        Rule::new(
            Match::Any,
            Fault::Answer {
                status: 503,
                content_type: "application/json",
                body: br#"{"error":"slow down"}"#.to_vec(),
            },
        )
        .times(2),
    );
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("accepts");
    let mut buffer = Vec::new();
    for _ in 0..2 {
        stream
            .write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, body) = read_answer(&mut stream, &mut buffer).await;
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        assert_eq!(body, br#"{"error":"slow down"}"#);
    }
    stream
        .write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_answer(&mut stream, &mut buffer).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"012");
    assert_eq!(proxy.injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_matching_rule_applies() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(Rule::new(Match::PathContains("/bytes/".into()), Fault::Reset).times(1));
    proxy.inject(Rule::new(
        Match::Any,
        Fault::Answer {
            status: 429,
            content_type: "text/plain",
            body: b"later".to_vec(),
        },
    ));
    assert!(get(&proxy, "/bytes/1").await.is_err());
    assert_eq!(
        get(&proxy, "/bytes/1").await.unwrap(),
        (429, b"later".to_vec())
    );
    assert_eq!(
        get(&proxy, "/echo").await.unwrap(),
        (429, b"later".to_vec())
    );
    assert_eq!(proxy.injected(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_gets_no_answer_then_its_connection_closes() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(Rule::new(Match::Any, Fault::Stall(Duration::from_secs(60))).times(1));
    let waited = client()
        .get(format!("{}/bytes/3", proxy.url()))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("no answer while stalled");
    assert!(waited.is_timeout(), "{waited}");

    proxy.inject(Rule::new(Match::Any, Fault::Stall(Duration::from_millis(200))).times(1));
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("accepts");
    stream
        .write_all(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_to_end(&mut stream).await.unwrap(), b"");
    assert_eq!(proxy.injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_answer_has_its_head_and_that_many_body_bytes() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(Rule::new(Match::Any, Fault::CutBodyAfter(1000)).times(2));
    for path in ["/bytes/200000", "/chunked/200000"] {
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("accepts");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let all = read_to_end(&mut stream).await.expect("a clean end");
        let head_end = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the head is relayed")
            + 4;
        assert!(all.starts_with(b"HTTP/1.1 200"));
        assert_eq!(all.len() - head_end, 1000, "{path}");
    }
    assert!(
        get(&proxy, "/bytes/200000")
            .await
            .is_ok_and(|(_, body)| body == digits(200000))
    );
    assert_eq!(proxy.injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_answer_arrives_whole_in_many_small_pieces() {
    let proxy = FaultProxy::start(upstream().await);
    proxy.inject(Rule::new(
        Match::Any,
        Fault::Trickle {
            bytes_per_sec: 4000,
        },
    ));
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("accepts");
    stream
        .write_all(b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut pieces = 0;
    let mut chunk = [0u8; 65536];
    loop {
        let n = stream.read(&mut chunk).await.expect("readable");
        if n == 0 {
            break;
        }
        pieces += 1;
        all.extend_from_slice(&chunk[..n]);
    }
    assert!(all.ends_with(&digits(1000)));
    // 200 bytes a write, each a twentieth of a second after the last.
    assert!(pieces >= 5, "{pieces} pieces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_refuses_connections_and_resets_open_ones_then_up_serves_the_same_port() {
    let proxy = FaultProxy::start(upstream().await);
    let mut open = TcpStream::connect(proxy.addr()).await.expect("accepts");
    let mut buffer = Vec::new();
    open.write_all(b"GET /bytes/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut open, &mut buffer).await.1, b"01");

    proxy.set_down(true);
    let refused = TcpStream::connect(proxy.addr())
        .await
        .expect_err("nothing listens");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let reset = read_to_end(&mut open).await.expect_err("reset");
    assert_eq!(reset.kind(), std::io::ErrorKind::ConnectionReset);

    proxy.set_down(false);
    assert_eq!(get(&proxy, "/bytes/4").await.unwrap(), (200, digits(4)));
    assert_eq!(proxy.seen(&Match::Any), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_told_apart_by_sqs_action_and_s3_object_reads() {
    let proxy = FaultProxy::start(upstream().await);
    let json_protocol = client()
        .post(format!("{}/", proxy.url()))
        .header("X-Amz-Target", "AmazonSQS.DeleteMessage")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_protocol.status(), 200);
    let query_protocol = client()
        .post(format!("{}/123456789012/q", proxy.url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=ReceiveMessage&Version=2012-11-05")
        .send()
        .await
        .unwrap();
    assert_eq!(query_protocol.status(), 200);
    for object_read in ["/logs/a/b.log?x-id=GetObject", "/logs/a.gz?versionId=3"] {
        get(&proxy, object_read).await.unwrap();
    }
    for other in ["/logs?list-type=2", "/logs/", "/logs/a.gz?tagging"] {
        get(&proxy, other).await.unwrap();
    }
    assert_eq!(proxy.seen(&Match::SqsAction("DeleteMessage")), 1);
    assert_eq!(proxy.seen(&Match::SqsAction("ReceiveMessage")), 1);
    assert_eq!(proxy.seen(&Match::SqsAction("DeleteMessageBatch")), 0);
    assert_eq!(proxy.seen(&Match::S3GetObject), 2);
    assert_eq!(proxy.seen(&Match::Any), 7);

    proxy.inject(Rule::new(Match::S3GetObject, Fault::Reset));
    assert!(get(&proxy, "/logs/a.gz").await.is_err());
    assert!(get(&proxy, "/logs?list-type=2").await.is_ok());
}
