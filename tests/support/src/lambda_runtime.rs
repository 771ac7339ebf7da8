//! A Lambda Runtime API emulator: the HTTP interface a custom runtime
//! (`bootstrap`) polls for invocations, as AWS documents it, on
//! 127.0.0.1. A test queues events with [`RuntimeApi::invoke`], runs the
//! function with [`RuntimeApi::function_env`] and reads what it answered.
//!
//! - `GET /2018-06-01/runtime/invocation/next` waits for an event and
//!   answers it with `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (set when the function takes the event,
//!   as Lambda's timeout runs from there), `Lambda-Runtime-Invoked-Function-Arn`
//!   and `Lambda-Runtime-Trace-Id`.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/error`
//!   answer 202 once per invocation in work, 400 for any other id.
//! - `POST /2018-06-01/runtime/init/error` records the function's failure
//!   to start.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";
/// The function's ARN in every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:s3logd";

/// How an invocation ended, as the function reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `…/response`: the function's result.
    Response(Value),
    /// `…/error`: the function's error report (`errorType`, `errorMessage`).
    Error { error_type: String, message: String },
}

/// An invocation queued by [`RuntimeApi::invoke`].
pub struct Invocation {
    pub request_id: String,
    outcome: oneshot::Receiver<Answered>,
}

/// What the function answered, and when it took and answered the event.
#[derive(Debug, Clone)]
pub struct Answered {
    pub outcome: Outcome,
    /// When `next` handed the event to the function.
    pub taken_at: Instant,
    pub answered_at: Instant,
}

impl Invocation {
    /// Waits at most `wait` for the function's answer; panics without one.
    pub async fn answered(self, wait: Duration) -> Answered {
        match tokio::time::timeout(wait, self.outcome).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(_)) => panic!(
                "the emulator stopped before invocation {} ended",
                self.request_id
            ),
            Err(_) => panic!("invocation {} unanswered after {wait:?}", self.request_id),
        }
    }
}

struct Queued {
    request_id: String,
    event: Value,
    timeout: Duration,
}

struct InWork {
    taken_at: Instant,
    answer: oneshot::Sender<Answered>,
}

struct State {
    queued: mpsc::UnboundedSender<Queued>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_work: Mutex<HashMap<String, InWork>>,
    init_error: Mutex<Option<Value>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answered>>>,
}

/// The emulator; it stops serving when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    state: Arc<State>,
    ids: AtomicU64,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        // Its own runtime, like the store receivers: it keeps answering
        // whatever the test's runtime does.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lambda-runtime-api")
            .enable_all()
            .build()
            .expect("cannot build the emulator's runtime");
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("cannot bind the emulator");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let address = listener.local_addr().expect("a bound address");
        let (queued, next) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            queued,
            next: tokio::sync::Mutex::new(next),
            in_work: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        });
        runtime.spawn(serve(listener, state.clone()));
        RuntimeApi {
            address,
            state,
            ids: AtomicU64::new(0),
            runtime: Some(runtime),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The variables Lambda sets for a function of `memory_mib` that the
    /// Rust runtime needs, pointing at this emulator.
    pub fn function_env(&self, memory_mib: u32) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "s3logd".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mib.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/s3logd".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "emulated".into()),
        ]
    }

    /// Queues `event` for the function, which then has `timeout` from
    /// taking it to answer.
    pub fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        let request_id = format!("request-{}", self.ids.fetch_add(1, Ordering::Relaxed) + 1);
        let (answer, outcome) = oneshot::channel();
        self.state
            .pending
            .lock()
            .unwrap()
            .insert(request_id.clone(), answer);
        self.state
            .queued
            .send(Queued {
                request_id: request_id.clone(),
                event,
                timeout,
            })
            .expect("the emulator's queue is open while it lives");
        Invocation {
            request_id,
            outcome,
        }
    }

    /// What the function posted to `/runtime/init/error`, if it did.
    pub fn init_error(&self) -> Option<Value> {
        self.state.init_error.lock().unwrap().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<State>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, hyper::Error>(answer(&state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let path = parts.uri.path();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return status(StatusCode::NOT_FOUND, "not a Runtime API path");
    };
    match (&parts.method, route) {
        (&Method::GET, "/invocation/next") => next(state).await,
        (&Method::POST, "/init/error") => {
            *state.init_error.lock().unwrap() = Some(error_report(&body));
            accepted()
        }
        (&Method::POST, route) => {
            let Some(rest) = route.strip_prefix("/invocation/") else {
                return status(StatusCode::NOT_FOUND, "no such route");
            };
            let (id, outcome) = match rest.rsplit_once('/') {
                Some((id, "response")) => (
                    id,
                    Outcome::Response(serde_json::from_slice(&body).unwrap_or(Value::Null)),
                ),
                Some((id, "error")) => {
                    let report = error_report(&body);
                    let text = |key: &str| report[key].as_str().unwrap_or("").to_owned();
                    (
                        id,
                        Outcome::Error {
                            error_type: text("errorType"),
                            message: text("errorMessage"),
                        },
                    )
                }
                _ => return status(StatusCode::NOT_FOUND, "no such route"),
            };
            let Some(work) = state.in_work.lock().unwrap().remove(id) else {
                return status(StatusCode::BAD_REQUEST, "InvalidRequestID");
            };
            let _ = work.answer.send(Answered {
                outcome,
                taken_at: work.taken_at,
                answered_at: Instant::now(),
            });
            accepted()
        }
        _ => status(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// Hands out the next queued event, waiting for one.
async fn next(state: &State) -> Response<Full<Bytes>> {
    let Some(queued) = state.next.lock().await.recv().await else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "the emulator stopped");
    };
    let deadline = SystemTime::now() + queued.timeout;
    let deadline_ms = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis();
    let answer = state
        .pending
        .lock()
        .unwrap()
        .remove(&queued.request_id)
        .expect("every queued invocation has its answer channel");
    state.in_work.lock().unwrap().insert(
        queued.request_id.clone(),
        InWork {
            taken_at: Instant::now(),
            answer,
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", &queued.request_id)
        .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
        .header(
            "Lambda-Runtime-Trace-Id",
            "Root=1-00000000-000000000000000000000000;Sampled=0",
        )
        .body(Full::new(Bytes::from(queued.event.to_string())))
        .expect("a valid response")
}

/// The JSON error report a runtime posts; a body that is not JSON is kept
/// as its text.
fn error_report(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| json!({ "errorMessage": String::from_utf8_lossy(body) }))
}

fn accepted() -> Response<Full<Bytes>> {
    status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn status(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid response")
}
