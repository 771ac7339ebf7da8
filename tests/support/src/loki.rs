//! A Loki stand-in for integration tests: an HTTP server on 127.0.0.1 that
//! ingests `POST /loki/api/v1/push` the way Loki 3's distributor does
//! (`push.ParseLokiRequest`, `Distributor.Push`, `Validator`, default
//! limits, plain-text error messages included), keeps the entries for tests
//! to inspect, and fails on request.
//!
//! Modelled rules, in the order a request meets them:
//! * faults scripted with `fail_next` and friends ([`HttpReceiver`]), one
//!   per request in the order they were scripted; Loki's own 429 (ingestion
//!   rate limit) is one of those;
//! * the optional [`Auth`] requirement (401 otherwise), as a proxy in front;
//! * routes: `POST /loki/api/v1/push`, `GET /ready`; another method on the
//!   push path is a 405, another path a 404;
//! * the tenant: with [`LokiBuilder::require_tenant`] (`auth_enabled: true`)
//!   `X-Scope-OrgID` is required (401 `no org id`), each of its
//!   `|`-separated IDs must be a valid tenant ID (`[a-zA-Z0-9!-_.*'()]`, at
//!   most 150 characters, not `.` or `..`) and there must be only one
//!   (400 `multiple org IDs present`); without it (`auth_enabled: false`)
//!   every entry belongs to tenant `fake`, whatever the header says;
//! * `Content-Encoding`, matched exactly: none, `gzip`, `deflate` (raw
//!   DEFLATE, Go's `compress/flate`) or `snappy` (which Loki leaves to the
//!   protobuf decoder, so a JSON body is read as is); any other is a 400
//!   `Content-Encoding "…" not supported`; a body that does not decode, 400;
//! * `Content-Type` must parse as a media type (none is a 400 `mime: no
//!   media type`); `application/json` is read as below; any other type Loki
//!   reads as snappy-compressed protobuf, which is not modelled: 415;
//! * the JSON body `{"streams":[{"stream":{…},"values":[["<ns>","<line>"],
//!   ["<ns>","<line>",{…}]]}]}`, every error a whole-request 400 with
//!   nothing stored: label values, lines and structured metadata values must
//!   be strings (`null` reads as `""`, as jsoniter's `ReadString` does); the
//!   timestamp must be a string holding a decimal int64 of Unix nanoseconds
//!   (Go's `strconv.ParseInt`: a number, `"1.5"` or `"1e9"` is a 400); an
//!   entry has 2 or 3 elements; unknown keys are ignored;
//! * each stream's labels, written `{a="x", b="y"}` and parsed as a
//!   Prometheus metric: a label name outside `[a-zA-Z_][a-zA-Z0-9_]*` is a
//!   whole-request 400 `couldn't parse labels: …`; labels with empty values
//!   are dropped; without `service_name`, one is added from the first of
//!   `discover_service_name` (Loki 3's default list:
//!   [`DISCOVER_SERVICE_NAME`]) with a value, else `unknown_service`;
//! * no streams at all is a 422 `error at least one valid stream is required
//!   for ingestion`; streams without entries are skipped;
//! * per stream (all its entries discarded on failure): at least one label
//!   (only reachable when discovery is off), at most
//!   `max_label_names_per_series` (15, `service_name` not counted) label
//!   names, names of at most 1024 and values of at most 2048 bytes;
//! * per entry: `reject_old_samples_max_age` (7 days, relative to now),
//!   `creation_grace_period` (10 minutes into the future), `max_line_size`
//!   (256 KiB of line bytes), structured metadata of at most 64 KiB
//!   (names and values) and 128 entries;
//! * structured metadata names are sanitized as Prometheus'
//!   `NormalizeLabel` does: characters outside `[a-zA-Z0-9_]` become `_`, a
//!   leading digit gets `key_`;
//! * partial success: the valid entries of a request ARE stored even when
//!   others failed; the request is then answered 400 with Loki's grouped
//!   message (`<msg>`, or `N errors like: <msg>; …` per distinct message,
//!   here in first-seen order); otherwise 204 with an empty body. Error
//!   bodies are `text/plain` with a trailing newline, as `http.Error` writes
//!   them.
//!
//! Not modelled: protobuf bodies; the legacy `/api/prom/push` and OTLP
//! endpoints; ingestion rate limits and stream limits (script them with
//! `fail_next`); the ingester's out-of-order window and deduplication of
//! identical entries; line truncation, `increment_duplicate_timestamp`;
//! `discover_log_levels` (Loki would add `detected_level` metadata); the
//! leading-underscore rule of some `NormalizeLabel` versions; the exact
//! jsoniter and PromQL parser error texts (the statuses and message
//! prefixes are Loki's).

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::HeaderMap;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::http::{Answer, Decoded, HttpReceiver, Protocol, decode_body, wait_for_stored};
pub use crate::http::{Auth, LoggedRequest};

pub const PUSH_PATH: &str = "/loki/api/v1/push";
/// `validation.reject-old-samples.max-age` default.
pub const REJECT_OLD_SAMPLES_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// `validation.create-grace-period` default.
pub const CREATION_GRACE_PERIOD: Duration = Duration::from_secs(10 * 60);
/// `distributor.max-line-size` default (256KB, base 2).
pub const MAX_LINE_SIZE: usize = 256 * 1024;
/// `validation.max-label-names-per-series` default.
pub const MAX_LABEL_NAMES_PER_SERIES: usize = 15;
pub const MAX_LABEL_NAME_LENGTH: usize = 1024;
pub const MAX_LABEL_VALUE_LENGTH: usize = 2048;
pub const MAX_STRUCTURED_METADATA_SIZE: usize = 64 * 1024;
pub const MAX_STRUCTURED_METADATA_ENTRIES: usize = 128;
/// `validation.discover-service-name` default.
pub const DISCOVER_SERVICE_NAME: &[&str] = &[
    "service",
    "app",
    "application",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];
/// The tenant of every entry when tenants are not required.
pub const FAKE_TENANT: &str = "fake";

const SERVICE_NAME: &str = "service_name";
const UNKNOWN_SERVICE: &str = "unknown_service";
const MAX_TENANT_ID_LENGTH: usize = 150;

/// A running receiver; it stops when dropped. Faults, the request log and
/// going down are [`HttpReceiver`]'s.
pub struct Loki {
    http: HttpReceiver,
    push: Arc<Push>,
}

impl Deref for Loki {
    type Target = HttpReceiver;

    fn deref(&self) -> &HttpReceiver {
        &self.http
    }
}

/// Options for [`Loki::builder`]; the limits default to Loki's.
pub struct LokiBuilder {
    auth: Option<Auth>,
    prefix: String,
    limits: Limits,
}

#[derive(Clone)]
struct Limits {
    require_tenant: bool,
    reject_old_samples_max_age: Option<Duration>,
    max_line_size: usize,
    max_label_names_per_series: usize,
    discover_service_name: Vec<String>,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tenant: String,
    /// The stream's labels as stored: empty values dropped, `service_name` added.
    pub labels: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub ts_ns: i64,
    pub line: String,
    /// Structured metadata, names sanitized.
    pub metadata: BTreeMap<String, String>,
}

/// What the receiver has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request, faulted ones included.
    pub requests: u64,
    /// Push requests answered 204.
    pub pushes_accepted: u64,
    /// Push requests answered 400 after storing what was valid.
    pub pushes_partial: u64,
    /// Push requests refused whole (tenant, encoding, type, JSON, labels, no streams).
    pub pushes_refused: u64,
    pub entries_stored: u64,
    /// Entries discarded by stream or entry validation.
    pub entries_discarded: u64,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    counters: Counters,
}

struct Push {
    limits: Limits,
    state: Mutex<State>,
}

impl Loki {
    /// Starts a receiver with Loki's defaults and `auth_enabled: false`.
    pub fn start() -> Loki {
        Self::builder().start()
    }

    /// Starts a receiver that answers 401 to requests without these credentials.
    pub fn start_with_auth(auth: Auth) -> Loki {
        Self::builder().auth(auth).start()
    }

    /// Starts a receiver behind a proxy path: `<prefix>/loki/api/v1/push`.
    pub fn start_at_path(prefix: &str) -> Loki {
        Self::builder().at_path(prefix).start()
    }

    pub fn builder() -> LokiBuilder {
        LokiBuilder {
            auth: None,
            prefix: String::new(),
            limits: Limits {
                require_tenant: false,
                reject_old_samples_max_age: Some(REJECT_OLD_SAMPLES_MAX_AGE),
                max_line_size: MAX_LINE_SIZE,
                max_label_names_per_series: MAX_LABEL_NAMES_PER_SERIES,
                discover_service_name: DISCOVER_SERVICE_NAME
                    .iter()
                    .map(|name| name.to_string())
                    .collect(),
            },
        }
    }

    /// Every stored entry, in arrival order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    pub fn entries_of(&self, tenant: &str) -> Vec<Entry> {
        let state = self.lock();
        state
            .entries
            .iter()
            .filter(|e| e.tenant == tenant)
            .cloned()
            .collect()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            requests: self.http.requests_seen(),
            ..self.lock().counters.clone()
        }
    }

    /// Waits until at least `count` entries are stored and returns them all;
    /// panics with the counters if that takes longer than `timeout`.
    pub async fn wait_for_entries(&self, count: usize, timeout: Duration) -> Vec<Entry> {
        let store = ("Loki", "entries");
        wait_for_stored(store, count, timeout, || self.entries(), || self.counters()).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.push.state.lock().expect("receiver state lock")
    }
}

impl LokiBuilder {
    /// Answers 401 to requests without these credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Serves behind a proxy path: `<prefix>/loki/api/v1/push`.
    pub fn at_path(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// `auth_enabled: true`: `X-Scope-OrgID` names each request's tenant.
    pub fn require_tenant(mut self) -> Self {
        self.limits.require_tenant = true;
        self
    }

    /// `reject_old_samples_max_age`; `None` is `reject_old_samples: false`.
    pub fn reject_old_samples_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.limits.reject_old_samples_max_age = max_age;
        self
    }

    /// `max_line_size` in bytes; 0 is no limit.
    pub fn max_line_size(mut self, bytes: usize) -> Self {
        self.limits.max_line_size = bytes;
        self
    }

    pub fn max_label_names_per_series(mut self, n: usize) -> Self {
        self.limits.max_label_names_per_series = n;
        self
    }

    /// `discover_service_name`; empty turns the discovery off.
    pub fn discover_service_name(mut self, labels: &[&str]) -> Self {
        self.limits.discover_service_name = labels.iter().map(|l| l.to_string()).collect();
        self
    }

    pub fn start(self) -> Loki {
        let push = Arc::new(Push {
            limits: self.limits,
            state: Mutex::default(),
        });
        Loki {
            http: HttpReceiver::start(push.clone(), self.auth, &self.prefix),
            push,
        }
    }
}

impl Protocol for Push {
    fn answer(&self, parts: &Parts, path: &str, body: &[u8]) -> Answer {
        match (path, &parts.method) {
            (PUSH_PATH, &Method::POST) => self.push(parts, body),
            ("/ready", &Method::GET) => Answer::new(StatusCode::OK, "ready\n"),
            (PUSH_PATH, _) => Answer::new(StatusCode::METHOD_NOT_ALLOWED, ""),
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }
}

/// A stream as `ParseLokiRequest` leaves it.
struct ParsedStream {
    /// Its labels as Loki prints them in errors.
    key: String,
    labels: BTreeMap<String, String>,
    entries: Vec<ParsedEntry>,
}

/// A stream as the JSON has it, before its labels are parsed.
struct RawStream {
    labels: BTreeMap<String, String>,
    entries: Vec<ParsedEntry>,
}

struct ParsedEntry {
    ts_ns: i64,
    line: String,
    metadata: Vec<(String, String)>,
}

impl Push {
    fn push(&self, parts: &Parts, body: &[u8]) -> Answer {
        let tenant = match self.tenant(&parts.headers) {
            Ok(tenant) => tenant,
            Err(answer) => return self.refuse(answer),
        };
        let (decoded, streams) = match self.parse(parts, body) {
            Ok(parsed) => parsed,
            Err(answer) => return self.refuse(answer),
        };
        if streams.is_empty() {
            let mut answer = text(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error at least one valid stream is required for ingestion",
            );
            answer.decoded_body_len = Some(decoded);
            return self.refuse(answer);
        }
        let (entries, errors, discarded) = self.validate(&tenant, streams);
        let mut state = self.state.lock().expect("receiver state lock");
        state.counters.entries_stored += entries.len() as u64;
        state.counters.entries_discarded += discarded;
        state.entries.extend(entries);
        let mut answer = if errors.is_empty() {
            state.counters.pushes_accepted += 1;
            Answer::new(StatusCode::NO_CONTENT, "")
        } else {
            state.counters.pushes_partial += 1;
            text(StatusCode::BAD_REQUEST, &grouped(&errors))
        };
        answer.decoded_body_len = Some(decoded);
        answer
    }

    fn refuse(&self, answer: Answer) -> Answer {
        self.state
            .lock()
            .expect("receiver state lock")
            .counters
            .pushes_refused += 1;
        answer
    }

    fn tenant(&self, headers: &HeaderMap) -> Result<String, Answer> {
        if !self.limits.require_tenant {
            return Ok(FAKE_TENANT.to_owned());
        }
        let org_id = headers
            .get("x-scope-orgid")
            .map(|v| v.to_str().unwrap_or("<not text>"))
            .unwrap_or("");
        if org_id.is_empty() {
            return Err(text(StatusCode::UNAUTHORIZED, "no org id"));
        }
        let mut tenants: Vec<&str> = org_id.split('|').collect();
        for tenant in &tenants {
            valid_tenant_id(tenant).map_err(|e| text(StatusCode::BAD_REQUEST, &e))?;
        }
        tenants.sort_unstable();
        tenants.dedup();
        match tenants[..] {
            [tenant] => Ok(tenant.to_owned()),
            _ => Err(text(StatusCode::BAD_REQUEST, "multiple org IDs present")),
        }
    }

    /// The decoded body's size and its streams, or the whole-request answer.
    fn parse(&self, parts: &Parts, body: &[u8]) -> Result<(usize, Vec<ParsedStream>), Answer> {
        let bad = |message: String| text(StatusCode::BAD_REQUEST, &message);
        let encoding = parts
            .headers
            .get(hyper::header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("<not text>"))
            .unwrap_or("");
        let decoded = match encoding {
            "" | "snappy" => body.to_vec(),
            "gzip" => match decode_body(Some("gzip"), &["gzip"], body) {
                Decoded::Body(decoded) => decoded,
                Decoded::Corrupt(e) => return Err(bad(format!("gzip: {e}"))),
                Decoded::Unsupported => unreachable!("gzip is accepted"),
            },
            "deflate" => {
                let mut decoded = Vec::new();
                flate2::read::DeflateDecoder::new(body)
                    .read_to_end(&mut decoded)
                    .map_err(|e| bad(format!("flate: {e}")))?;
                decoded
            }
            other => return Err(bad(format!("Content-Encoding {other:?} not supported"))),
        };
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("<not text>"))
            .unwrap_or("");
        match media_type(content_type) {
            Err(e) => return Err(bad(e)),
            Ok(media) if media != "application/json" => {
                return Err(text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!(
                        "Content-Type {content_type:?}: Loki reads this as snappy protobuf, which this receiver does not model"
                    ),
                ));
            }
            Ok(_) => {}
        }
        let streams = decode_push_request(&decoded).map_err(bad)?;
        let streams = streams
            .into_iter()
            .map(|raw| self.parse_labels(raw))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| bad(format!("couldn't parse labels: {e}")))?;
        Ok((decoded.len(), streams))
    }

    /// `syntax.ParseLabels` and the `service_name` discovery of `ParseLokiRequest`.
    fn parse_labels(&self, raw: RawStream) -> Result<ParsedStream, String> {
        let RawStream { labels, entries } = raw;
        let mut offset = 1;
        for (name, value) in &labels {
            check_label_name(name, offset)?;
            offset += format!("{name}={}, ", go_quote(value)).len();
        }
        let mut key = label_string(&labels);
        let mut labels: BTreeMap<String, String> =
            labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let discover = &self.limits.discover_service_name;
        if !labels.contains_key(SERVICE_NAME) && !discover.is_empty() {
            let service = discover
                .iter()
                .find_map(|name| labels.get(name).filter(|v| !v.is_empty()))
                .map_or(UNKNOWN_SERVICE.to_owned(), String::clone);
            labels.insert(SERVICE_NAME.to_owned(), service);
            key = label_string(&labels);
        }
        Ok(ParsedStream {
            key,
            labels,
            entries,
        })
    }

    /// The entries to store, the validation errors, and how many entries they discarded.
    fn validate(&self, tenant: &str, streams: Vec<ParsedStream>) -> (Vec<Entry>, Vec<String>, u64) {
        let now = unix_nanos_now();
        let oldest = self
            .limits
            .reject_old_samples_max_age
            .map(|age| now - age.as_nanos() as i64);
        let newest = now + CREATION_GRACE_PERIOD.as_nanos() as i64;
        let (mut stored, mut errors, mut discarded) = (Vec::new(), Vec::new(), 0u64);
        for stream in streams.into_iter().filter(|s| !s.entries.is_empty()) {
            if let Err(e) = self.validate_labels(&stream) {
                errors.push(e);
                discarded += stream.entries.len() as u64;
                continue;
            }
            let labels = label_string(&stream.labels);
            for entry in stream.entries {
                let metadata_size: usize = entry
                    .metadata
                    .iter()
                    .map(|(name, value)| name.len() + value.len())
                    .sum();
                let error = if oldest.is_some_and(|oldest| entry.ts_ns < oldest) {
                    Some(format!(
                        "entry for stream '{labels}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        rfc3339(entry.ts_ns),
                        rfc3339(oldest.expect("checked"))
                    ))
                } else if entry.ts_ns > newest {
                    Some(format!(
                        "entry for stream '{labels}' has timestamp too new: {}",
                        rfc3339(entry.ts_ns)
                    ))
                } else if self.limits.max_line_size != 0
                    && entry.line.len() > self.limits.max_line_size
                {
                    Some(format!(
                        "Max entry size '{}' bytes exceeded for stream '{labels}' while adding an entry with length '{}' bytes",
                        self.limits.max_line_size,
                        entry.line.len()
                    ))
                } else if metadata_size > MAX_STRUCTURED_METADATA_SIZE {
                    Some(format!(
                        "stream '{labels}' has structured metadata too large: '{metadata_size}' bytes, limit: '{MAX_STRUCTURED_METADATA_SIZE}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it."
                    ))
                } else if entry.metadata.len() > MAX_STRUCTURED_METADATA_ENTRIES {
                    Some(format!(
                        "stream '{labels}' has too many structured metadata labels: '{}', limit: '{MAX_STRUCTURED_METADATA_ENTRIES}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.",
                        entry.metadata.len()
                    ))
                } else {
                    None
                };
                if let Some(error) = error {
                    errors.push(error);
                    discarded += 1;
                    continue;
                }
                stored.push(Entry {
                    tenant: tenant.to_owned(),
                    labels: stream.labels.clone(),
                    ts_ns: entry.ts_ns,
                    line: entry.line,
                    metadata: entry
                        .metadata
                        .into_iter()
                        .map(|(name, value)| (normalize_label(&name), value))
                        .collect(),
                });
            }
        }
        (stored, errors, discarded)
    }

    /// `Validator.ValidateLabels`.
    fn validate_labels(&self, stream: &ParsedStream) -> Result<(), String> {
        if stream.labels.is_empty() {
            return Err("error at least one label pair is required per stream".to_owned());
        }
        let names = stream.labels.len() - usize::from(stream.labels.contains_key(SERVICE_NAME));
        if names > self.limits.max_label_names_per_series {
            return Err(format!(
                "entry for stream '{}' has {names} label names; limit {}",
                stream.key, self.limits.max_label_names_per_series
            ));
        }
        for (name, value) in &stream.labels {
            if name.len() > MAX_LABEL_NAME_LENGTH {
                return Err(format!(
                    "stream '{}' has label name too long: '{name}'",
                    stream.key
                ));
            }
            if value.len() > MAX_LABEL_VALUE_LENGTH {
                return Err(format!(
                    "stream '{}' has label value too long: '{value}'",
                    stream.key
                ));
            }
        }
        Ok(())
    }
}

/// dskit's `tenant.ValidTenantID`.
fn valid_tenant_id(tenant: &str) -> Result<(), String> {
    if let Some(bad) = tenant
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(c)))
    {
        return Err(format!(
            "tenant ID '{tenant}' contains unsupported character '{bad}'"
        ));
    }
    if tenant.is_empty() {
        return Err("tenant ID is empty".to_owned());
    }
    if tenant.len() > MAX_TENANT_ID_LENGTH {
        return Err(format!(
            "tenant ID is too long: max {MAX_TENANT_ID_LENGTH} characters"
        ));
    }
    if tenant == "." || tenant == ".." {
        return Err("tenant ID is '.' or '..'".to_owned());
    }
    Ok(())
}

/// The lower-cased media type, as Go's `mime.ParseMediaType` reads it.
fn media_type(content_type: &str) -> Result<String, String> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.is_empty() {
        return Err("mime: no media type".to_owned());
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    match media.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(media.to_ascii_lowercase()),
        _ => Err("mime: expected slash after first token".to_owned()),
    }
}

/// The v1 JSON push body, as labels and entries per stream.
fn decode_push_request(body: &[u8]) -> Result<Vec<RawStream>, String> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| format!("loghttp.PushRequest: {e}"))?;
    let Value::Object(request) = request else {
        return Err(format!(
            "loghttp.PushRequest: ReadObjectCB: expect {{ or n, but found {}",
            first_char(&request)
        ));
    };
    let streams = match request.get("streams") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(streams)) => streams,
        Some(other) => {
            return Err(format!(
                "loghttp.PushRequest.Streams: ReadArrayCB: expect [ or n, but found {}",
                first_char(other)
            ));
        }
    };
    let context = "loghttp.PushRequest.Streams: []*loghttp.Stream";
    streams
        .iter()
        .map(|stream| {
            let Value::Object(stream) = stream else {
                return Err(format!(
                    "{context}: ReadObjectCB: expect {{ or n, but found {}",
                    first_char(stream)
                ));
            };
            let labels =
                string_map(stream.get("stream")).map_err(|e| format!("{context}: Labels: {e}"))?;
            let entries = match stream.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(values)) => values
                    .iter()
                    .map(parse_entry)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{context}: Entries: {e}"))?,
                Some(other) => {
                    return Err(format!(
                        "{context}: Entries: ReadArrayCB: expect [ or n, but found {}",
                        first_char(other)
                    ));
                }
            };
            Ok(RawStream { labels, entries })
        })
        .collect()
}

fn parse_entry(value: &Value) -> Result<ParsedEntry, String> {
    let Value::Array(parts) = value else {
        return Err(format!(
            "ReadArrayCB: expect [ or n, but found {}",
            first_char(value)
        ));
    };
    if parts.len() > 3 {
        return Err("error reading entry: array must contains 2 values".to_owned());
    }
    let timestamp = read_string(parts.first().unwrap_or(&Value::Null))?;
    let ts_ns = timestamp.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("error reading entry timestamp: strconv.ParseInt: parsing {timestamp:?}: {why}")
    })?;
    let line = read_string(parts.get(1).unwrap_or(&Value::Null))?;
    let metadata = string_map(parts.get(2))?.into_iter().collect();
    Ok(ParsedEntry {
        ts_ns,
        line,
        metadata,
    })
}

/// jsoniter's `ReadString`: a string, or `null` as `""`.
fn read_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(format!(
            "ReadString: expects \" or n, but found {}",
            first_char(other)
        )),
    }
}

/// A JSON object of strings; absent or `null` is empty.
fn string_map(value: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(object)) => object
            .iter()
            .map(|(name, value)| Ok((name.clone(), read_string(value)?)))
            .collect(),
        Some(other) => Err(format!(
            "ReadMapCB: expect {{ or n, but found {}",
            first_char(other)
        )),
    }
}

fn first_char(value: &Value) -> char {
    value.to_string().chars().next().unwrap_or(' ')
}

/// The Prometheus lexer's complaint about a label name at `offset` in the label string.
fn check_label_name(name: &str, offset: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "1:{}: parse error: unexpected \"=\" in label set, expected identifier or \"}}\"",
            offset + 1
        ));
    }
    let bad = name
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())));
    match bad {
        None => Ok(()),
        // The lexer reads the valid part as an identifier and stops where it cannot go on.
        Some((i, c)) => Err(format!(
            "1:{}: parse error: unexpected character inside braces: {c:?}",
            offset + i + 1
        )),
    }
}

/// `{a="x", b="y"}`, as Prometheus prints labels.
fn label_string(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={}", go_quote(value)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Go's `strconv.Quote`, for the characters JSON strings carry.
fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Prometheus' `NormalizeLabel`, without the leading-underscore rule.
fn normalize_label(name: &str) -> String {
    let sanitized: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if sanitized.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{sanitized}")
    } else {
        sanitized
    }
}

/// `util.GroupedErrors`: distinct messages, counted when more than one.
fn grouped(errors: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for error in errors {
        match counts.iter_mut().find(|(message, _)| message == error) {
            Some((_, n)) => *n += 1,
            None => counts.push((error, 1)),
        }
    }
    let distinct = counts.len();
    counts
        .iter()
        .map(|&(message, n)| {
            if distinct > 1 || n > 1 {
                format!("{n} errors like: {message}")
            } else {
                message.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Go's `Time.Format(time.RFC3339)` in UTC.
fn rfc3339(ts_ns: i64) -> String {
    let seconds = ts_ns.div_euclid(1_000_000_000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = s3logd_parser_sdk::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// `http.Error`: the message and a newline, as plain text.
fn text(status: StatusCode, message: &str) -> Answer {
    let mut answer = Answer::new(status, format!("{message}\n"));
    answer.content_type = Some("text/plain; charset=utf-8");
    answer
}

fn unix_nanos_now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_nanos()).expect("time fits in i64 nanoseconds")
}
