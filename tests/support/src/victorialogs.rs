//! A VictoriaLogs stand-in for integration tests: an HTTP server on
//! 127.0.0.1 that ingests `/insert/jsonline` the way VictoriaLogs does
//! (as VictoriaLogs' own source at commit 7c0626e handles it, quirks included),
//! keeps the rows for tests to inspect, and fails on request.
//!
//! Modelled rules, in the order a request meets them:
//! * faults scripted with `fail_next` and friends ([`HttpReceiver`]), one
//!   per request in the order they were scripted;
//! * the optional [`Auth`] requirement (401 otherwise);
//! * tenant headers `AccountID`/`ProjectID` (uint32, default 0; 400 if not);
//! * a body not sent as `Content-Type: application/stream+json` is answered
//!   200 and dropped unread;
//! * `Content-Encoding` gzip, deflate (zlib), zstd, snappy (one raw block,
//!   as v1.26.0's `protoparserutil` reads it) or none/identity; any other
//!   encoding is logged and answered 200 with nothing stored (the quirk at
//!   that commit); a body that does not decode is a 400;
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

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use hyper::header::HeaderMap;
use hyper::http::request::Parts;
use serde_json::value::RawValue;

use crate::http::{
    Answer, Decoded, HttpReceiver, Protocol, content_encoding, decode_body, wait_for_stored,
};
pub use crate::http::{Auth, LoggedRequest};

/// `-insert.maxLineSizeBytes` default.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// `-defaultMsgValue` default, stored as `_msg` when no message field has a value.
pub const MISSING_MSG: &str = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field";

const STREAM_CONTENT_TYPE: &str = "application/stream+json";
/// The encodings VictoriaLogs reads.
const ENCODINGS: &[&str] = &["gzip", "deflate", "zstd", "snappy"];

/// A running receiver; it stops when dropped. Faults, the request log and
/// going down are [`HttpReceiver`]'s.
pub struct VictoriaLogs {
    http: HttpReceiver,
    ingest: Arc<Ingest>,
}

impl Deref for VictoriaLogs {
    type Target = HttpReceiver;

    fn deref(&self) -> &HttpReceiver {
        &self.http
    }
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

#[derive(Default)]
struct State {
    /// Benchmark mode: lines are counted in `rows_stored`, neither parsed nor kept.
    count_only: bool,
    rows: Vec<StoredRow>,
    counters: Counters,
}

/// `/insert/jsonline` and `/health`.
#[derive(Default)]
struct Ingest {
    state: Mutex<State>,
}

impl Protocol for Ingest {
    fn answer(&self, parts: &Parts, path: &str, body: &[u8]) -> Answer {
        match path {
            "/insert/jsonline" => insert_jsonline(&self.state, parts, body),
            "/health" => Answer::new(StatusCode::OK, "OK"),
            path => Answer::new(
                StatusCode::NOT_FOUND,
                format!("unsupported path requested: {path:?}"),
            ),
        }
    }
}

impl VictoriaLogs {
    /// Starts a receiver that accepts any request.
    pub fn start() -> VictoriaLogs {
        Self::start_with(None, "")
    }

    /// Starts a receiver for benchmarks: requests meet the same protocol
    /// rules up to the body's decoding, then every non-blank line counts as
    /// a stored row (in [`Counters::rows_stored`]) without being parsed or
    /// kept, so the receiver costs little CPU and no memory.
    pub fn start_counting() -> VictoriaLogs {
        let receiver = Self::start_with(None, "");
        receiver.lock().count_only = true;
        receiver
    }

    /// Starts a receiver that answers 401 to requests without these credentials.
    pub fn start_with_auth(auth: Auth) -> VictoriaLogs {
        Self::start_with(Some(auth), "")
    }

    /// Starts a receiver behind a proxy path: `<prefix>/insert/jsonline`.
    pub fn start_at_path(prefix: &str) -> VictoriaLogs {
        Self::start_with(None, prefix)
    }

    fn start_with(auth: Option<Auth>, prefix: &str) -> VictoriaLogs {
        let ingest = Arc::new(Ingest::default());
        VictoriaLogs {
            http: HttpReceiver::start(ingest.clone(), auth, prefix),
            ingest,
        }
    }

    pub fn rows(&self) -> Vec<StoredRow> {
        self.lock().rows.clone()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            requests: self.http.requests_seen(),
            ..self.lock().counters.clone()
        }
    }

    /// Waits until at least `count` rows are stored and returns them all;
    /// panics with the counters if that takes longer than `timeout`.
    pub async fn wait_for_rows(&self, count: usize, timeout: Duration) -> Vec<StoredRow> {
        let store = ("VictoriaLogs", "rows");
        wait_for_stored(store, count, timeout, || self.rows(), || self.counters()).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.ingest.state.lock().expect("receiver state lock")
    }
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
    let encoding = content_encoding(parts);
    let decoded = match decode_body(encoding, ENCODINGS, body) {
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
