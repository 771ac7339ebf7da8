//! An Elasticsearch stand-in for integration tests: an HTTP server on
//! 127.0.0.1 that ingests `_bulk` requests the way Elasticsearch 8 does
//! (its `BulkRequestParser`, `RestController` and dynamic mapping, error
//! types and messages included), keeps the documents for tests to inspect,
//! and fails on request, per request or per item.
//!
//! Modelled rules, in the order a request meets them:
//! * faults scripted with `fail_next` and friends ([`HttpReceiver`]), one
//!   per request in the order they were scripted;
//! * the optional [`Auth`] requirement (401 otherwise);
//! * with [`ElasticsearchBuilder::require_sigv4`], an `Authorization:
//!   AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
//!   SignedHeaders=…, Signature=…` header scoped to that service, whose date
//!   is the one of `X-Amz-Date`, and an `X-Amz-Content-Sha256` header, as
//!   Amazon OpenSearch Service requires them (403 `{"message":…}`
//!   otherwise); the signature itself is not checked;
//! * `Content-Encoding` gzip or deflate (zlib) is undone first, as ES's HTTP
//!   layer does; another encoding, or a body that does not decode, is a 400;
//! * `http.max_content_length` (default 100 MB) applies to the decoded body:
//!   413 with an empty body;
//! * routes: `GET`/`HEAD /` (cluster info), `POST`/`PUT /_bulk` and
//!   `/{index}/_bulk` (the index, percent-decoded, is the default for the
//!   items); another method on a bulk path is a 405, another path a 400
//!   `no handler found for uri […] and method […]`;
//! * a body needs `Content-Type` `application/json` or `application/x-ndjson`
//!   (any `charset`), or their `application/vnd.elasticsearch+…` forms with
//!   `compatible-with=7|8`; otherwise 406 `Content-Type header [..] is not
//!   supported` (or `is missing`);
//! * the body, line by line as `BulkRequestParser` reads it: empty is a 400
//!   `parse_exception`; not ending in `\n` a 400 `illegal_argument_exception`;
//!   blank action lines are skipped; an action line must be one JSON object
//!   `{"<create|index|delete>":{…}}` with simple values for `_index`, `_id`,
//!   `pipeline`, `op_type` (`create` makes an `index` a create), `routing`
//!   (no effect here, nulls ignored), or it is a whole-request 400
//!   (`x_content_parse_exception` for bad JSON, `illegal_argument_exception`
//!   otherwise, unknown parameters such as `_type` included); `create` and
//!   `index` take the next line as the source (a trailing `\r` dropped), and
//!   one with no line after it is silently dropped, as ES does;
//! * request validation, whole request 400 `action_request_validation_exception`:
//!   no items, an item without index, a delete without `_id`, an `_id` over
//!   512 bytes;
//! * query parameters, once the body parsed: `pipeline` (default for the
//!   items), `filter_path`, `pretty` applied; `refresh`, `routing`,
//!   `timeout`, `wait_for_active_shards`, `error_trace`, `human` accepted
//!   with no effect here; any other is a 400 `request [...] contains
//!   unrecognized parameter: [...]`;
//! * then each item, in order, answered in `items` (top-level `errors` true
//!   if any failed): a fault scripted with
//!   [`reject_items_next`](Elasticsearch::reject_items_next) (its status,
//!   nothing stored); an invalid index name (`invalid_index_name_exception`,
//!   e.g. not lowercase); in an index matching a data stream pattern, any op
//!   but create (`illegal_argument_exception`); an empty `_id`; a source that
//!   is not a JSON object (`document_parsing_exception`); dynamic mapping:
//!   each top-level field is mapped by the first stored document that has it
//!   (string as `text`, or `date` when it reads as an RFC 3339 date-time or
//!   `yyyy-MM-dd`; integer `long`; other number `float`; `boolean`;
//!   `object`; arrays by their first non-null element), and a value the
//!   mapped type does not take (ES's coercion included: numeric strings into
//!   numbers, numbers and booleans into text) is a 400
//!   `document_parsing_exception`, nothing stored; a data stream document
//!   without `@timestamp` (mapped `date`) likewise; finally `create` of an
//!   existing `_id` is a 409 `version_conflict_engine_exception` (the
//!   document kept, its new fields still mapped, as ES maps before the
//!   engine checks), `index` replaces it (200 `updated`, `_version` + 1), and
//!   `delete` answers 200 `deleted` or 404 `not_found` (not an error);
//!   absent `_id`s get a 20-character generated one;
//! * a data stream's items name its backing index
//!   `.ds-<name>-<yyyy.MM.dd>-000001` in `_index`;
//! * `filter_path`: comma-separated dotted paths with `*` (within a name)
//!   and `**` (any depth) wildcards, arrays transparent, emptied objects and
//!   arrays dropped (so `items.*.error` on success is `{}`); error answers
//!   are not filtered, as in ES.
//!
//! Not modelled: `update` actions and versioning parameters (`version`,
//! `if_seq_no`, …, a 400 naming the parameter), `require_alias`,
//! `dynamic_templates`, `_source`; aliases, index templates and explicit
//! mappings; ingest pipelines (a `pipeline` is recorded with the document,
//! not run or checked); nested field mapping, `total_fields` limits, the
//! `yyyy/MM/dd` date detection format; the `[line:col]` prefix of parse
//! error reasons; smile/cbor bodies; `filter_path` exclusions (`-name`, a
//! 400 here); response headers such as `X-Elastic-Product` (the
//! [`HttpReceiver`] sets none); OpenSearch and ES 7 error type names
//! (`mapper_parsing_exception`); refresh (documents are visible at once).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hyper::header::HeaderMap;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::http::{
    Answer, Decoded, HttpReceiver, Protocol, content_encoding, decode_body, wait_for_stored,
};
pub use crate::http::{Auth, LoggedRequest};

/// `http.max_content_length` default.
pub const MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;
/// The longest `_id` ES takes.
pub const MAX_ID_BYTES: usize = 512;

const ENCODINGS: &[&str] = &["gzip", "deflate"];
const VERSION: &str = "8.15.0";
/// Bulk query parameters that change nothing in a single-node store without refresh.
const NO_EFFECT_PARAMS: &[&str] = &[
    "refresh",
    "routing",
    "timeout",
    "wait_for_active_shards",
    "error_trace",
    "human",
];
/// Action metadata ES reads and this receiver does not model.
const UNMODELLED_METADATA: &[&str] = &[
    "version",
    "version_type",
    "if_seq_no",
    "if_primary_term",
    "retry_on_conflict",
    "require_alias",
    "require_data_stream",
    "dynamic_templates",
    "list_executed_pipelines",
    "_source",
];

/// A running receiver; it stops when dropped. Whole-request faults, the
/// request log and going down are [`HttpReceiver`]'s.
pub struct Elasticsearch {
    http: HttpReceiver,
    store: Arc<Store>,
}

impl Deref for Elasticsearch {
    type Target = HttpReceiver;

    fn deref(&self) -> &HttpReceiver {
        &self.http
    }
}

/// Options for [`Elasticsearch::builder`].
pub struct ElasticsearchBuilder {
    auth: Option<Auth>,
    prefix: String,
    config: Config,
}

#[derive(Clone)]
struct Config {
    data_streams: Vec<String>,
    max_content_length: usize,
    sigv4_service: Option<String>,
}

/// One stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The index or data stream the item named.
    pub index: String,
    pub id: String,
    /// 1 when created, one more per `index` that replaced it.
    pub version: u64,
    pub source: Value,
    /// The item's `pipeline` (or the request's), recorded, not run.
    pub pipeline: Option<String>,
}

/// The type a field was dynamically mapped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Date,
    Long,
    Float,
    Boolean,
    Object,
}

impl FieldType {
    /// The name ES gives it in mappings and errors.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Date => "date",
            FieldType::Long => "long",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Object => "object",
        }
    }
}

/// What the receiver has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request, faulted ones included.
    pub requests: u64,
    /// `_bulk` requests answered 200 with items.
    pub bulk_requests: u64,
    /// Items answered in those.
    pub items: u64,
    /// Documents created (by `create` or `index`).
    pub created: u64,
    /// Documents replaced by `index`.
    pub updated: u64,
    pub deleted: u64,
    /// `create` items answered 409 for an existing `_id`.
    pub conflicts: u64,
    /// Items answered a fault scripted with `reject_items_next`.
    pub rejected: u64,
    /// Items answered `document_parsing_exception`.
    pub mapping_errors: u64,
    /// Other items answered 400: index name, data stream op type, empty `_id`.
    pub invalid_items: u64,
}

#[derive(Default)]
struct Index {
    mapping: BTreeMap<String, FieldType>,
    /// `_id` → slot in [`State::documents`].
    ids: HashMap<String, usize>,
    next_seq_no: u64,
    /// `.ds-…` when the index is a data stream.
    backing_index: Option<String>,
}

#[derive(Default)]
struct State {
    indices: BTreeMap<String, Index>,
    /// In the order they were first stored; a deleted one leaves `None`.
    documents: Vec<Option<Document>>,
    item_faults: VecDeque<StatusCode>,
    generated_ids: u64,
    counters: Counters,
}

struct Store {
    config: Config,
    /// Part of every generated `_id`, so that receivers in one test differ.
    id_salt: [u8; 7],
    state: Mutex<State>,
}

impl Elasticsearch {
    /// Starts a receiver that accepts any request.
    pub fn start() -> Elasticsearch {
        Self::builder().start()
    }

    /// Starts a receiver that answers 401 to requests without these credentials.
    pub fn start_with_auth(auth: Auth) -> Elasticsearch {
        Self::builder().auth(auth).start()
    }

    /// Starts a receiver behind a proxy path: `<prefix>/_bulk`.
    pub fn start_at_path(prefix: &str) -> Elasticsearch {
        Self::builder().at_path(prefix).start()
    }

    pub fn builder() -> ElasticsearchBuilder {
        ElasticsearchBuilder {
            auth: None,
            prefix: String::new(),
            config: Config {
                data_streams: Vec::new(),
                max_content_length: MAX_CONTENT_LENGTH,
                sigv4_service: None,
            },
        }
    }

    /// The next `n` items, in arrival order across requests, are answered
    /// `status` (e.g. 429 `es_rejected_execution_exception`, 503
    /// `unavailable_shards_exception`) and not stored.
    pub fn reject_items_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        assert!(
            status.is_client_error() || status.is_server_error(),
            "an item fault is an error status, not {status}"
        );
        self.lock()
            .item_faults
            .extend(std::iter::repeat_n(status, n));
    }

    /// Every stored document, in the order first stored.
    pub fn documents(&self) -> Vec<Document> {
        self.lock().documents.iter().flatten().cloned().collect()
    }

    /// The stored documents of one index or data stream.
    pub fn documents_in(&self, index: &str) -> Vec<Document> {
        let state = self.lock();
        state
            .documents
            .iter()
            .flatten()
            .filter(|d| d.index == index)
            .cloned()
            .collect()
    }

    pub fn document(&self, index: &str, id: &str) -> Option<Document> {
        let state = self.lock();
        let slot = *state.indices.get(index)?.ids.get(id)?;
        state.documents[slot].clone()
    }

    /// The dynamic mapping of an index: top-level field → type; `None`
    /// before anything was written to it.
    pub fn mapping(&self, index: &str) -> Option<BTreeMap<String, FieldType>> {
        self.lock().indices.get(index).map(|i| i.mapping.clone())
    }

    pub fn counters(&self) -> Counters {
        Counters {
            requests: self.http.requests_seen(),
            ..self.lock().counters.clone()
        }
    }

    /// Waits until at least `count` documents are stored and returns them
    /// all; panics with the counters if that takes longer than `timeout`.
    pub async fn wait_for_documents(&self, count: usize, timeout: Duration) -> Vec<Document> {
        let store = ("Elasticsearch", "documents");
        wait_for_stored(
            store,
            count,
            timeout,
            || self.documents(),
            || self.counters(),
        )
        .await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.store.state.lock().expect("receiver state lock")
    }
}

impl ElasticsearchBuilder {
    /// Answers 401 to requests without these credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Serves behind a proxy path: `<prefix>/_bulk`.
    pub fn at_path(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Indices whose name matches `pattern` (`*` wildcards, as in an index
    /// template's `index_patterns`) are data streams. ES 8 ships one for
    /// `logs-*-*`; this receiver has none unless told.
    pub fn data_stream(mut self, pattern: &str) -> Self {
        self.config.data_streams.push(pattern.to_owned());
        self
    }

    /// `http.max_content_length`, in decoded bytes.
    pub fn max_content_length(mut self, bytes: usize) -> Self {
        self.config.max_content_length = bytes;
        self
    }

    /// Answers 403 to requests not SigV4-signed for `service` (`es`, `aoss`).
    pub fn require_sigv4(mut self, service: &str) -> Self {
        self.config.sigv4_service = Some(service.to_owned());
        self
    }

    pub fn start(self) -> Elasticsearch {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let mut id_salt = [0u8; 7];
        id_salt.copy_from_slice(&started.to_be_bytes()[9..]);
        let store = Arc::new(Store {
            config: self.config,
            id_salt,
            state: Mutex::default(),
        });
        Elasticsearch {
            http: HttpReceiver::start(store.clone(), self.auth, &self.prefix),
            store,
        }
    }
}

impl Protocol for Store {
    fn answer(&self, parts: &Parts, path: &str, body: &[u8]) -> Answer {
        if let Some(service) = &self.config.sigv4_service
            && let Err(message) = check_sigv4(&parts.headers, service)
        {
            return Answer::json(StatusCode::FORBIDDEN, &json!({ "message": message }));
        }
        let encoding = content_encoding(parts);
        let decoded = match decode_body(encoding, ENCODINGS, body) {
            Decoded::Body(decoded) => decoded,
            Decoded::Unsupported => {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "illegal_argument_exception",
                    &format!("Content-Encoding {encoding:?} is not supported"),
                );
            }
            Decoded::Corrupt(e) => {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "decompression_exception",
                    &format!("cannot decode {encoding:?} body: {e}"),
                );
            }
        };
        let mut answer = self.route(parts, path, &decoded);
        answer.decoded_body_len = Some(decoded.len());
        answer
    }
}

impl Store {
    fn route(&self, parts: &Parts, path: &str, body: &[u8]) -> Answer {
        if body.len() > self.config.max_content_length {
            return Answer::new(StatusCode::PAYLOAD_TOO_LARGE, "");
        }
        let method = &parts.method;
        if path == "/" && (method == Method::GET || method == Method::HEAD) {
            return if method == Method::HEAD {
                Answer::new(StatusCode::OK, "")
            } else {
                Answer::json(StatusCode::OK, &cluster_info())
            };
        }
        let Some(default_index) = bulk_path(path) else {
            return simple_error(
                StatusCode::BAD_REQUEST,
                &format!("no handler found for uri [{path}] and method [{method}]"),
            );
        };
        if method != Method::POST && method != Method::PUT {
            return simple_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [POST, PUT]"
                ),
            );
        }
        if !body.is_empty()
            && let Err(message) = check_content_type(&parts.headers)
        {
            return simple_error(StatusCode::NOT_ACCEPTABLE, &message);
        }
        self.bulk(parts, path, default_index.as_deref(), body)
    }

    fn bulk(&self, parts: &Parts, path: &str, default_index: Option<&str>, body: &[u8]) -> Answer {
        let started = Instant::now();
        let params = match BulkParams::from_query(parts.uri.query()) {
            Ok(params) => params,
            Err(answer) => return answer,
        };
        let actions = match parse_bulk(body, default_index, params.pipeline.as_deref()) {
            Ok(actions) => actions,
            Err(answer) => return answer,
        };
        if !params.unrecognized.is_empty() {
            let plural = if params.unrecognized.len() > 1 {
                "s"
            } else {
                ""
            };
            let names: Vec<String> = params
                .unrecognized
                .iter()
                .map(|name| format!("[{name}]"))
                .collect();
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!(
                    "request [{path}] contains unrecognized parameter{plural}: {}",
                    names.join(", ")
                ),
            );
        }
        let mut state = self.state.lock().expect("receiver state lock");
        let items: Vec<Value> = actions
            .into_iter()
            .map(|action| self.apply(&mut state, action))
            .collect();
        state.counters.bulk_requests += 1;
        state.counters.items += items.len() as u64;
        drop(state);
        let errors = items.iter().any(|item| {
            item.as_object()
                .and_then(|o| o.values().next())
                .is_some_and(|result| result.get("error").is_some())
        });
        let took = started.elapsed().as_millis() as u64;
        let response = json!({ "took": took, "errors": errors, "items": items });
        let response = match &params.filter_path {
            Some(patterns) => filter(
                &response,
                &patterns.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            )
            .unwrap_or_else(|| Value::Object(Map::new())),
            None => response,
        };
        let text = if params.pretty {
            serde_json::to_string_pretty(&response).expect("JSON serializes")
        } else {
            response.to_string()
        };
        let mut answer = Answer::new(StatusCode::OK, text);
        answer.content_type = Some("application/json");
        answer
    }

    /// One item's outcome, as its entry in `items`.
    fn apply(&self, state: &mut State, action: Action<'_>) -> Value {
        let op = action.op.name();
        let index = action
            .index
            .expect("validation left no item without an index");
        let id = match action.id {
            Some(id) => id,
            None => {
                state.generated_ids += 1;
                self.generated_id(state.generated_ids)
            }
        };
        if let Some(status) = state.item_faults.pop_front() {
            state.counters.rejected += 1;
            let (kind, reason) = scripted_item_error(status, &index);
            return failed(op, &index, &id, status, kind, &reason);
        }
        if let Err(reason) = validate_index_name(&index) {
            state.counters.invalid_items += 1;
            let error = json!({
                "type": "invalid_index_name_exception",
                "reason": format!("Invalid index name [{index}], {reason}"),
                "index_uuid": "_na_",
                "index": index,
            });
            return item(
                op,
                json!({ "_index": index, "_id": id, "status": 400, "error": error }),
            );
        }
        let is_data_stream = self
            .config
            .data_streams
            .iter()
            .any(|pattern| glob(pattern, &index));
        let shown_index = {
            let entry = state.indices.entry(index.clone()).or_default();
            if is_data_stream && entry.backing_index.is_none() {
                entry.backing_index = Some(backing_index_name(&index));
                entry
                    .mapping
                    .insert("@timestamp".to_owned(), FieldType::Date);
            }
            entry.backing_index.clone().unwrap_or_else(|| index.clone())
        };
        if is_data_stream && action.op != Op::Create {
            state.counters.invalid_items += 1;
            return failed(
                op,
                &shown_index,
                &id,
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "only write ops with an op_type of create are allowed in data streams",
            );
        }
        let Some(source) = action.source else {
            return self.delete(state, &index, &shown_index, &id);
        };
        if id.is_empty() {
            state.counters.invalid_items += 1;
            return failed(
                op,
                &shown_index,
                &id,
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "if _id is specified it must not be empty",
            );
        }
        let indexed = state.indices.get_mut(&index).expect("entry made above");
        let source = match parse_source(source, &indexed.mapping, &id, is_data_stream) {
            Ok((source, new_fields)) => {
                indexed.mapping.extend(new_fields);
                source
            }
            Err(reason) => {
                state.counters.mapping_errors += 1;
                return failed(
                    op,
                    &shown_index,
                    &id,
                    StatusCode::BAD_REQUEST,
                    "document_parsing_exception",
                    &reason,
                );
            }
        };
        let existing = indexed.ids.get(&id).copied();
        let document = |version| Document {
            index: index.clone(),
            id: id.clone(),
            version,
            source,
            pipeline: action.pipeline,
        };
        let (version, status, result) = match existing {
            Some(slot) if action.op == Op::Create => {
                let current = state.documents[slot].as_ref().map_or(0, |d| d.version);
                state.counters.conflicts += 1;
                let error = json!({
                    "type": "version_conflict_engine_exception",
                    "reason": format!("[{id}]: version conflict, document already exists (current version [{current}])"),
                    "index_uuid": uuid_of(&index),
                    "shard": "0",
                    "index": shown_index,
                });
                return item(
                    op,
                    json!({ "_index": shown_index, "_id": id, "status": 409, "error": error }),
                );
            }
            Some(slot) => {
                let version = state.documents[slot].as_ref().map_or(1, |d| d.version + 1);
                state.documents[slot] = Some(document(version));
                state.counters.updated += 1;
                (version, 200, "updated")
            }
            None => {
                state.documents.push(Some(document(1)));
                let slot = state.documents.len() - 1;
                let indexed = state.indices.get_mut(&index).expect("entry made above");
                indexed.ids.insert(id.clone(), slot);
                state.counters.created += 1;
                (1, 201, "created")
            }
        };
        let seq_no = next_seq_no(state, &index);
        item(
            op,
            written(&shown_index, &id, version, result, seq_no, status),
        )
    }

    fn delete(&self, state: &mut State, index: &str, shown_index: &str, id: &str) -> Value {
        let indexed = state.indices.get_mut(index).expect("entry made by apply");
        let (version, status, result) = match indexed.ids.remove(id) {
            Some(slot) => {
                let version = state.documents[slot].take().map_or(1, |d| d.version + 1);
                state.counters.deleted += 1;
                (version, 200, "deleted")
            }
            None => (1, 404, "not_found"),
        };
        let seq_no = next_seq_no(state, index);
        item(
            "delete",
            written(shown_index, id, version, result, seq_no, status),
        )
    }

    /// 20 URL-safe base64 characters, like ES's time-based ids.
    fn generated_id(&self, n: u64) -> String {
        let mut bytes = [0u8; 15];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&self.id_salt);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Index,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Index => "index",
            Op::Delete => "delete",
        }
    }
}

/// One parsed item; `source` is `None` for a delete.
struct Action<'a> {
    op: Op,
    index: Option<String>,
    id: Option<String>,
    pipeline: Option<String>,
    source: Option<&'a [u8]>,
}

struct BulkParams {
    pipeline: Option<String>,
    /// Each path split at `.`.
    filter_path: Option<Vec<Vec<String>>>,
    pretty: bool,
    unrecognized: Vec<String>,
}

impl BulkParams {
    fn from_query(query: Option<&str>) -> Result<BulkParams, Answer> {
        let mut params = BulkParams {
            pipeline: None,
            filter_path: None,
            pretty: false,
            unrecognized: Vec::new(),
        };
        let pairs = query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned());
        for (name, value) in pairs.into_iter().flatten() {
            match name.as_str() {
                "pipeline" => params.pipeline = Some(value),
                "pretty" => params.pretty = value != "false",
                "filter_path" => {
                    let paths = params.filter_path.get_or_insert_with(Vec::new);
                    for path in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        if path.starts_with('-') {
                            return Err(es_error(
                                StatusCode::BAD_REQUEST,
                                "illegal_argument_exception",
                                &format!(
                                    "filter_path exclusion [{path}] is not modelled by this receiver"
                                ),
                            ));
                        }
                        paths.push(path.split('.').map(String::from).collect());
                    }
                }
                name if NO_EFFECT_PARAMS.contains(&name) => {}
                _ if params.unrecognized.contains(&name) => {}
                _ => params.unrecognized.push(name),
            }
        }
        params.unrecognized.sort();
        params.filter_path = params.filter_path.filter(|paths| !paths.is_empty());
        Ok(params)
    }
}

/// `Some(None)` for `/_bulk`, `Some(Some(index))` for `/{index}/_bulk`.
fn bulk_path(path: &str) -> Option<Option<String>> {
    if path == "/_bulk" {
        return Some(None);
    }
    let index = path.strip_prefix('/')?.strip_suffix("/_bulk")?;
    if index.is_empty() || index.contains('/') {
        return None;
    }
    percent_decode(index).map(Some)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let values: Vec<&str> = headers
        .get_all(hyper::header::CONTENT_TYPE)
        .iter()
        .map(|v| v.to_str().unwrap_or("<not text>"))
        .collect();
    let [value] = values.as_slice() else {
        return Err(if values.is_empty() {
            "Content-Type header is missing".to_owned()
        } else {
            format!(
                "Content-Type header [{}] is not supported",
                values.join(",")
            )
        });
    };
    let mut parts = value.split(';').map(str::trim);
    let media_type = parts.next().unwrap_or("").to_ascii_lowercase();
    let params: Vec<(String, String)> = parts
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (
                name.trim().to_ascii_lowercase(),
                value.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    let compatible = params
        .iter()
        .find(|(name, _)| name == "compatible-with")
        .map(|(_, v)| v.as_str());
    let supported = match media_type.as_str() {
        "application/json" | "application/x-ndjson" => compatible.is_none(),
        "application/vnd.elasticsearch+json" | "application/vnd.elasticsearch+x-ndjson" => {
            matches!(compatible, Some("7" | "8"))
        }
        _ => false,
    };
    let known_params = params
        .iter()
        .all(|(name, _)| name == "charset" || name == "compatible-with");
    if supported && known_params {
        Ok(())
    } else {
        Err(format!("Content-Type header [{value}] is not supported"))
    }
}

/// `Err` holds the 403 message Amazon OpenSearch Service would give.
fn check_sigv4(headers: &HeaderMap, service: &str) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or("Missing Authentication Token")?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization header requires 'AWS4-HMAC-SHA256' as the signing algorithm.")?;
    let field = |name: &str| {
        fields.split(',').map(str::trim).find_map(|f| {
            f.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .filter(|v| !v.is_empty())
        })
    };
    let missing: Vec<String> = ["Credential", "SignedHeaders", "Signature"]
        .into_iter()
        .filter(|name| field(name).is_none())
        .map(|name| format!("Authorization header requires '{name}' parameter."))
        .collect();
    if !missing.is_empty() {
        return Err(missing.join(" "));
    }
    let credential = field("Credential").expect("checked above");
    let [_key, date, region, scoped_service, terminator] =
        credential.split('/').collect::<Vec<_>>()[..]
    else {
        return Err(format!(
            "Credential should be scoped to a valid region, service and terminator, not '{credential}'. "
        ));
    };
    if terminator != "aws4_request" {
        return Err(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        ));
    }
    if scoped_service != service {
        return Err(format!(
            "Credential should be scoped to correct service: '{service}'. "
        ));
    }
    if region.is_empty() {
        return Err("Credential should be scoped to a valid region. ".to_owned());
    }
    let amz_date = header("x-amz-date").ok_or(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )?;
    if amz_date.get(..8) != Some(date) {
        return Err(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}', from '{amz_date}'.",
            amz_date.get(..8).unwrap_or(amz_date)
        ));
    }
    if header("x-amz-content-sha256").is_none() {
        return Err("The request must contain the header x-amz-content-sha256.".to_owned());
    }
    Ok(())
}

/// The items of a bulk body, or the whole-request 400 ES answers.
fn parse_bulk<'a>(
    body: &'a [u8],
    default_index: Option<&str>,
    default_pipeline: Option<&str>,
) -> Result<Vec<Action<'a>>, Answer> {
    if body.is_empty() {
        return Err(es_error(
            StatusCode::BAD_REQUEST,
            "parse_exception",
            "request body is required",
        ));
    }
    if body.last() != Some(&b'\n') {
        return Err(es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let illegal = |reason: String| {
        es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &reason,
        )
    };
    let mut lines = body
        .split_inclusive(|&b| b == b'\n')
        .map(|line| &line[..line.len() - 1])
        .enumerate()
        .map(|(i, line)| (i + 1, line));
    let mut actions = Vec::new();
    while let Some((number, line)) = lines.next() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let parsed: Value = serde_json::from_slice(line).map_err(|e| {
            es_error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                &format!("[{number}:{}] {e}", e.column()),
            )
        })?;
        let Value::Object(object) = parsed else {
            return Err(illegal(format!(
                "Malformed action/metadata line [{number}], expected START_OBJECT but found [{}]",
                token_name(&parsed)
            )));
        };
        let mut entries = object.into_iter();
        let Some((action, metadata)) = entries.next() else {
            return Err(illegal(format!(
                "Malformed action/metadata line [{number}], expected FIELD_NAME but found [END_OBJECT]"
            )));
        };
        let op = match action.as_str() {
            "create" => Op::Create,
            "index" => Op::Index,
            "delete" => Op::Delete,
            "update" => {
                return Err(illegal(format!(
                    "Action/metadata line [{number}]: update actions are not modelled by this receiver"
                )));
            }
            other => {
                return Err(illegal(format!(
                    "Malformed action/metadata line [{number}], expected field [create], [delete], [index] or [update] but found [{other}]"
                )));
            }
        };
        let Value::Object(metadata) = metadata else {
            return Err(illegal(format!(
                "Malformed action/metadata line [{number}], expected START_OBJECT or END_OBJECT but found [{}]",
                token_name(&metadata)
            )));
        };
        if entries.next().is_some() {
            return Err(illegal(format!(
                "Malformed action/metadata line [{number}], expected END_OBJECT but found [FIELD_NAME]"
            )));
        }
        let mut parsed = Action {
            op,
            index: default_index.map(String::from),
            id: None,
            pipeline: default_pipeline.map(String::from),
            source: None,
        };
        let mut op_type = None;
        for (name, value) in metadata {
            let text = match &value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Object(_) | Value::Array(_) => {
                    return Err(illegal(format!(
                        "Malformed action/metadata line [{number}], expected a simple value for field [{name}] but found [{}]",
                        token_name(&value)
                    )));
                }
            };
            match name.as_str() {
                "_index" => parsed.index = Some(text),
                "_id" => parsed.id = Some(text),
                "pipeline" => parsed.pipeline = Some(text),
                "op_type" => op_type = Some(text),
                "routing" => {}
                name if UNMODELLED_METADATA.contains(&name) => {
                    return Err(illegal(format!(
                        "Action/metadata line [{number}] parameter [{name}] is not modelled by this receiver"
                    )));
                }
                _ => {
                    return Err(illegal(format!(
                        "Action/metadata line [{number}] contains an unknown parameter [{name}]"
                    )));
                }
            }
        }
        if op == Op::Index && op_type.as_deref() == Some("create") {
            parsed.op = Op::Create;
        }
        if op != Op::Delete {
            let Some((_, source)) = lines.next() else {
                break;
            };
            parsed.source = Some(source.strip_suffix(b"\r").unwrap_or(source));
        }
        actions.push(parsed);
    }
    validate(&actions)?;
    Ok(actions)
}

/// `BulkRequest.validate`: every failure, numbered, in one 400.
fn validate(actions: &[Action<'_>]) -> Result<(), Answer> {
    let mut failures = Vec::new();
    if actions.is_empty() {
        failures.push("no requests added".to_owned());
    }
    for action in actions {
        if action.index.is_none() {
            failures.push("index is missing".to_owned());
        }
        match (&action.id, action.op) {
            (None, Op::Delete) => failures.push("id is missing".to_owned()),
            (Some(id), Op::Delete) if id.is_empty() => failures.push("id is missing".to_owned()),
            (Some(id), _) if id.len() > MAX_ID_BYTES => failures.push(format!(
                "id [{id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
                id.len()
            )),
            _ => {}
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let numbered: String = failures
        .iter()
        .enumerate()
        .map(|(i, failure)| format!("{}: {failure};", i + 1))
        .collect();
    Err(es_error(
        StatusCode::BAD_REQUEST,
        "action_request_validation_exception",
        &format!("Validation Failed: {numbered}"),
    ))
}

/// The source as stored, with the fields it adds to the mapping; `Err` is
/// the reason of a `document_parsing_exception`.
fn parse_source(
    source: &[u8],
    mapping: &BTreeMap<String, FieldType>,
    id: &str,
    is_data_stream: bool,
) -> Result<(Value, Vec<(String, FieldType)>), String> {
    let value: Value =
        serde_json::from_slice(source).map_err(|e| format!("failed to parse: {e}"))?;
    let Value::Object(fields) = &value else {
        return Err("failed to parse: Malformed content, must start with an object".to_owned());
    };
    let mut new_fields = Vec::new();
    for (name, field) in fields {
        match mapping.get(name) {
            Some(&mapped) => check_field(name, mapped, field, id)?,
            None => {
                if let Some(dynamic) = dynamic_type(field) {
                    check_field(name, dynamic, field, id)?;
                    new_fields.push((name.clone(), dynamic));
                }
            }
        }
    }
    if is_data_stream && fields.get("@timestamp").is_none_or(Value::is_null) {
        return Err("data stream timestamp field [@timestamp] is missing".to_owned());
    }
    Ok((value, new_fields))
}

fn dynamic_type(value: &Value) -> Option<FieldType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(FieldType::Boolean),
        Value::Number(n) if n.is_f64() => Some(FieldType::Float),
        Value::Number(_) => Some(FieldType::Long),
        Value::String(s) if is_date(s) => Some(FieldType::Date),
        Value::String(_) => Some(FieldType::Text),
        Value::Object(_) => Some(FieldType::Object),
        Value::Array(items) => items.iter().find_map(dynamic_type),
    }
}

fn check_field(name: &str, mapped: FieldType, value: &Value, id: &str) -> Result<(), String> {
    let scalar = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => {
            return items
                .iter()
                .try_for_each(|item| check_field(name, mapped, item, id));
        }
        scalar => scalar,
    };
    let accepted = match mapped {
        FieldType::Object => {
            return if scalar.is_object() {
                Ok(())
            } else {
                Err(format!(
                    "object mapping for [{name}] tried to parse field [{name}] as object, but found a concrete value"
                ))
            };
        }
        FieldType::Text => !scalar.is_object(),
        FieldType::Long | FieldType::Float => {
            scalar.is_number()
                || scalar
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<f64>().is_ok_and(f64::is_finite))
        }
        FieldType::Boolean => {
            scalar.is_boolean() || matches!(scalar.as_str(), Some("true" | "false" | ""))
        }
        FieldType::Date => {
            scalar.is_i64()
                || scalar.is_u64()
                || scalar.as_str().is_some_and(|s| {
                    is_date(s) || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                })
        }
    };
    if accepted {
        return Ok(());
    }
    let preview = match scalar {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Err(format!(
        "failed to parse field [{name}] of type [{}] in document with id '{id}'. Preview of field's value: '{preview}'",
        mapped.name()
    ))
}

/// `strict_date_optional_time` as far as modelled: RFC 3339 date-times and plain dates.
fn is_date(text: &str) -> bool {
    use s3logd_parser_sdk::time::parse_iso8601;
    // The parser also takes a space for the `T`; ES's strict format does not.
    text.as_bytes().get(10) != Some(&b' ') && parse_iso8601(text).is_some()
        || (text.len() == 10 && parse_iso8601(&format!("{text}T00:00:00Z")).is_some())
}

/// `MetadataCreateIndexService.validateIndexOrAliasName` and `validateIndexName`.
fn validate_index_name(name: &str) -> Result<(), String> {
    const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];
    if name.contains(FORBIDDEN) {
        return Err(
            "must not contain the following characters [' ', '\"', '*', ',', '/', '<', '>', '?', '\\', '|']"
                .to_owned(),
        );
    }
    if name.contains('#') {
        return Err("must not contain '#'".to_owned());
    }
    if name.contains(':') {
        return Err("must not contain ':'".to_owned());
    }
    if name.starts_with(['_', '-', '+']) {
        return Err("must not start with '_', '-', or '+'".to_owned());
    }
    if name.to_lowercase() != name {
        return Err("must be lowercase".to_owned());
    }
    if name == "." || name == ".." {
        return Err("must not be '.' or '..'".to_owned());
    }
    if name.len() > 255 {
        return Err(format!("index name is too long, ({} > 255)", name.len()));
    }
    Ok(())
}

/// `.ds-<name>-<yyyy.MM.dd>-000001`, dated today (UTC).
fn backing_index_name(name: &str) -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
        / 86_400;
    let (year, month, day) = s3logd_parser_sdk::time::civil_from_days(days);
    format!(".ds-{name}-{year:04}.{month:02}.{day:02}-000001")
}

fn next_seq_no(state: &mut State, index: &str) -> u64 {
    let indexed = state.indices.get_mut(index).expect("entry made by apply");
    indexed.next_seq_no += 1;
    indexed.next_seq_no - 1
}

/// A stable made-up index UUID, so errors name the same one each time.
fn uuid_of(index: &str) -> String {
    let hash = index.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash.to_be_bytes()[..])
}

fn scripted_item_error(status: StatusCode, index: &str) -> (&'static str, String) {
    match status.as_u16() {
        429 => (
            "es_rejected_execution_exception",
            "rejected execution of primary operation [scripted fault]".to_owned(),
        ),
        503 => (
            "unavailable_shards_exception",
            format!("[{index}][0] primary shard is not active Timeout: [1m] (scripted fault)"),
        ),
        409 => (
            "version_conflict_engine_exception",
            "version conflict (scripted fault)".to_owned(),
        ),
        _ => ("exception", "scripted fault".to_owned()),
    }
}

fn item(op: &str, result: Value) -> Value {
    json!({ op: result })
}

fn written(index: &str, id: &str, version: u64, result: &str, seq_no: u64, status: u16) -> Value {
    json!({
        "_index": index,
        "_id": id,
        "_version": version,
        "result": result,
        "_shards": { "total": 2, "successful": 1, "failed": 0 },
        "_seq_no": seq_no,
        "_primary_term": 1,
        "status": status,
    })
}

fn failed(op: &str, index: &str, id: &str, status: StatusCode, kind: &str, reason: &str) -> Value {
    let error = json!({
        "type": kind,
        "reason": reason,
        "index_uuid": uuid_of(index),
        "index": index,
    });
    item(
        op,
        json!({ "_index": index, "_id": id, "status": status.as_u16(), "error": error }),
    )
}

/// The response of `GET /`.
fn cluster_info() -> Value {
    json!({
        "name": "s3logd-test",
        "cluster_name": "s3logd-test",
        "cluster_uuid": "s3logd-test-cluster-uuid",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "docker",
            "lucene_version": "9.11.1",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    })
}

/// An exception as ES renders it: `{"error":{"root_cause":[…],…},"status":…}`.
fn es_error(status: StatusCode, kind: &str, reason: &str) -> Answer {
    let cause = json!({ "type": kind, "reason": reason });
    let body = json!({
        "error": { "root_cause": [cause], "type": kind, "reason": reason },
        "status": status.as_u16(),
    });
    Answer::json(status, &body)
}

/// `RestController`'s simple form: `{"error":"…","status":…}`.
fn simple_error(status: StatusCode, message: &str) -> Answer {
    Answer::json(
        status,
        &json!({ "error": message, "status": status.as_u16() }),
    )
}

fn token_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// `value` with only what the patterns reach; `None` when nothing is left.
fn filter(value: &Value, patterns: &[&[String]]) -> Option<Value> {
    if patterns.iter().any(|p| p.is_empty()) {
        return Some(value.clone());
    }
    match value {
        Value::Object(object) => {
            let kept: Map<String, Value> = object
                .iter()
                .filter_map(|(key, child)| {
                    let rest: Vec<&[String]> =
                        patterns.iter().flat_map(|p| advance(p, key)).collect();
                    if rest.is_empty() {
                        return None;
                    }
                    filter(child, &rest).map(|kept| (key.clone(), kept))
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(|i| filter(i, patterns)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

/// What is left of `pattern` below `key`; `**` may match no names or many.
fn advance<'p>(pattern: &'p [String], key: &str) -> Vec<&'p [String]> {
    let Some((first, rest)) = pattern.split_first() else {
        return Vec::new();
    };
    if first == "**" {
        if rest.is_empty() {
            return vec![rest];
        }
        let mut below = advance(rest, key);
        below.push(pattern);
        return below;
    }
    if glob(first, key) {
        vec![rest]
    } else {
        Vec::new()
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(after_head) = text.strip_prefix(head) else {
                return false;
            };
            (0..=after_head.len())
                .filter(|&at| after_head.is_char_boundary(at))
                .any(|at| glob(tail, &after_head[at..]))
        }
    }
}
