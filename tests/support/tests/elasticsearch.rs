//! The Elasticsearch receiver answers `_bulk` by ES 8's rules, item by
//! item, and fails exactly as scripted.

use std::collections::HashSet;
use std::io::Write;

use serde_json::{Value, json};

use s3logd_test_support::elasticsearch::{Auth, Elasticsearch, FieldType, MAX_ID_BYTES};

/// A client that opens a new connection per request.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

/// A POST of `body` to `<url><path>` as NDJSON.
fn post(
    receiver: &Elasticsearch,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{path}", receiver.url()))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
}

/// Status and body (JSON when it parses, else the text as a JSON string).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn bulk(receiver: &Elasticsearch, path: &str, body: &str) -> (u16, Value) {
    answer(post(receiver, path, body.to_owned())).await
}

/// `(action, status)` of each item of a bulk answer.
fn item_statuses(body: &Value) -> Vec<(String, u64)> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (action, result) = item
                .as_object()
                .expect("item")
                .iter()
                .next()
                .expect("one key");
            (action.clone(), result["status"].as_u64().expect("status"))
        })
        .collect()
}

/// The result object of item `i`, whatever its action.
fn item(body: &Value, i: usize) -> &Value {
    body["items"][i]
        .as_object()
        .expect("item")
        .values()
        .next()
        .expect("one key")
}

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("<none>")
}

fn error_reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or("<none>")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn create_index_and_delete_answer_per_item_like_es() {
    let receiver = Elasticsearch::start();
    let body = concat!(
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"a\"}}\n{\"msg\":\"first\"}\n",
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"a\"}}\n{\"msg\":\"again\"}\n",
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"b\"}}\n{\"msg\":\"b1\"}\n",
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"b\"}}\n{\"msg\":\"b2\"}\n",
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"b\"}}\n",
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"nope\"}}\n",
    );
    let (status, answer) = bulk(&receiver, "/_bulk", body).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    assert!(answer["took"].is_u64());
    let expected = [
        ("create", 201),
        ("create", 409),
        ("index", 201),
        ("index", 200),
        ("delete", 200),
        ("delete", 404),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(a, s)| (a.to_string(), *s)).collect();
    assert_eq!(item_statuses(&answer), expected);
    assert_eq!(
        (
            item(&answer, 0)["result"].as_str(),
            item(&answer, 0)["_version"].as_u64()
        ),
        (Some("created"), Some(1))
    );
    assert_eq!(
        error_type(item(&answer, 1)),
        "version_conflict_engine_exception"
    );
    assert_eq!(
        error_reason(item(&answer, 1)),
        "[a]: version conflict, document already exists (current version [1])"
    );
    assert_eq!(
        (
            item(&answer, 3)["result"].as_str(),
            item(&answer, 3)["_version"].as_u64()
        ),
        (Some("updated"), Some(2))
    );
    assert_eq!(item(&answer, 4)["result"], "deleted");
    assert_eq!(item(&answer, 5)["result"], "not_found");
    assert!(
        item(&answer, 5).get("error").is_none(),
        "not_found is not an error"
    );
    let seq_nos: Vec<_> = (0..6)
        .filter_map(|i| item(&answer, i)["_seq_no"].as_u64())
        .collect();
    assert_eq!(
        seq_nos,
        [0, 1, 2, 3, 4],
        "the conflict takes no sequence number"
    );

    let documents = receiver.documents_in("logs");
    assert_eq!(documents.len(), 1, "{documents:#?}");
    assert_eq!(documents[0].id, "a");
    assert_eq!(
        documents[0].source,
        json!({"msg": "first"}),
        "a conflict does not replace"
    );
    let counters = receiver.counters();
    assert_eq!(
        (
            counters.created,
            counters.updated,
            counters.deleted,
            counters.conflicts,
            counters.items,
            counters.bulk_requests
        ),
        (2, 1, 1, 1, 6, 1)
    );
}

#[tokio::test]
async fn default_index_from_path_generated_ids_and_op_type_create() {
    let receiver = Elasticsearch::start();
    let body = concat!(
        "{\"index\":{}}\n{\"n\":1}\n",
        "{\"create\":{}}\n{\"n\":2}\n",
        "{\"index\":{\"_index\":\"other\"}}\n{\"n\":3}\n",
        "{\"index\":{\"_id\":\"x\",\"op_type\":\"create\"}}\n{\"n\":4}\n",
        "{\"index\":{\"_id\":\"x\",\"op_type\":\"create\"}}\n{\"n\":5}\n",
    );
    let (status, answer) = bulk(&receiver, "/my-logs/_bulk", body).await;
    assert_eq!(status, 200, "{answer}");

    let statuses: Vec<_> = item_statuses(&answer);
    let expected: Vec<(String, u64)> = [
        ("index", 201),
        ("create", 201),
        ("index", 201),
        ("create", 201),
        ("create", 409),
    ]
    .iter()
    .map(|(a, s)| (a.to_string(), *s))
    .collect();
    assert_eq!(statuses, expected, "op_type create answers under `create`");
    let indices: Vec<_> = (0..4)
        .map(|i| item(&answer, i)["_index"].as_str().unwrap())
        .collect();
    assert_eq!(indices, ["my-logs", "my-logs", "other", "my-logs"]);
    let generated: HashSet<&str> = (0..3)
        .map(|i| item(&answer, i)["_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        generated.len(),
        3,
        "generated ids are distinct: {generated:?}"
    );
    assert!(generated.iter().all(|id| id.len() == 20), "{generated:?}");

    let in_path: Vec<_> = receiver
        .documents_in("my-logs")
        .into_iter()
        .map(|d| d.source["n"].clone())
        .collect();
    assert_eq!(in_path, [json!(1), json!(2), json!(4)]);
    let other = receiver.documents_in("other");
    assert_eq!(other.len(), 1);
    let id = item(&answer, 2)["_id"].as_str().unwrap();
    assert_eq!(
        receiver.document("other", id).map(|d| d.source),
        Some(json!({"n": 3}))
    );
}

#[tokio::test]
async fn content_type_must_be_json_or_ndjson() {
    let receiver = Elasticsearch::start();
    let body = "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1}\n";
    let url = format!("{}/_bulk", receiver.url());

    let (status, answer_body) = answer(client().post(&url).body(body)).await;
    assert_eq!(
        (status, answer_body),
        (
            406,
            json!({"error": "Content-Type header is missing", "status": 406})
        )
    );
    let (status, answer_body) = answer(
        client()
            .post(&url)
            .header("Content-Type", "text/plain")
            .body(body),
    )
    .await;
    assert_eq!(
        (status, answer_body),
        (
            406,
            json!({"error": "Content-Type header [text/plain] is not supported", "status": 406})
        )
    );
    let vendor_9 = "application/vnd.elasticsearch+x-ndjson; compatible-with=9";
    let (status, _) = answer(
        client()
            .post(&url)
            .header("Content-Type", vendor_9)
            .body(body),
    )
    .await;
    assert_eq!(status, 406);

    for accepted in [
        "application/json",
        "application/x-ndjson",
        "application/json; charset=UTF-8",
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
    ] {
        let (status, answer_body) = answer(
            client()
                .post(&url)
                .header("Content-Type", accepted)
                .body(body),
        )
        .await;
        assert_eq!(status, 200, "{accepted}: {answer_body}");
    }
    assert_eq!(receiver.documents().len(), 4);
}

#[tokio::test]
async fn gzip_is_decoded_and_other_encodings_are_refused() {
    let receiver = Elasticsearch::start();
    let body = "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1}\n";
    let (status, _) =
        answer(post(&receiver, "/_bulk", gzip(body.as_bytes())).header("Content-Encoding", "gzip"))
            .await;
    assert_eq!(status, 200);
    let (status, answer_body) =
        answer(post(&receiver, "/_bulk", body).header("Content-Encoding", "br")).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer_body["status"], 400,
        "an ES-shaped error: {answer_body}"
    );
    let (status, _) =
        answer(post(&receiver, "/_bulk", body).header("Content-Encoding", "gzip")).await;
    assert_eq!(status, 400, "a body that is not gzip");

    assert_eq!(receiver.documents().len(), 1);
    let decoded: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.decoded_body_len)
        .collect();
    assert_eq!(decoded, [Some(body.len()), None, None]);
}

#[tokio::test]
async fn body_must_end_with_a_newline_and_not_be_empty() {
    let receiver = Elasticsearch::start();
    let (status, answer_body) = bulk(
        &receiver,
        "/_bulk",
        "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1}",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_type(&answer_body), "illegal_argument_exception");
    assert_eq!(
        error_reason(&answer_body),
        r"The bulk request must be terminated by a newline [\n]"
    );
    assert_eq!(
        answer_body["error"]["root_cause"][0]["type"],
        "illegal_argument_exception"
    );

    let (status, answer_body) = answer(post(&receiver, "/_bulk", "")).await;
    assert_eq!((status, error_type(&answer_body)), (400, "parse_exception"));
    let (status, answer_body) = bulk(&receiver, "/_bulk", "\n\n").await;
    assert_eq!(status, 400);
    assert_eq!(
        error_reason(&answer_body),
        "Validation Failed: 1: no requests added;"
    );
    assert!(receiver.documents().is_empty());
}

#[tokio::test]
async fn malformed_action_lines_fail_the_whole_request() {
    let receiver = Elasticsearch::start();
    let good = "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1}\n";
    let cases = [
        (
            "[1]\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]",
        ),
        (
            "{\"upsert\":{}}\n{}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
        ),
        (
            "{\"index\":{\"_index\":\"i\",\"_type\":\"_doc\"}}\n{}\n",
            "illegal_argument_exception",
            "Action/metadata line [1] contains an unknown parameter [_type]",
        ),
        (
            "{\"index\":{\"_index\":[\"i\"]}}\n{}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected a simple value for field [_index] but found [START_ARRAY]",
        ),
        (
            "{\"index\":\"i\"}\n{}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]",
        ),
        (
            "{}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]",
        ),
    ];
    for (bad, kind, reason) in cases {
        let (status, answer_body) = bulk(&receiver, "/_bulk", &format!("{good}{bad}")).await;
        let bad_line_reason = reason.replace("line [1]", "line [3]");
        assert_eq!(
            (status, error_type(&answer_body), error_reason(&answer_body)),
            (400, kind, bad_line_reason.as_str()),
            "{bad:?}"
        );
    }
    let (status, answer_body) = bulk(&receiver, "/_bulk", "{\"index\":\n").await;
    assert_eq!(
        (status, error_type(&answer_body)),
        (400, "x_content_parse_exception")
    );
    let (status, answer_body) = bulk(
        &receiver,
        "/_bulk",
        "{\"update\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"doc\":{}}\n",
    )
    .await;
    assert_eq!(
        (status, error_type(&answer_body)),
        (400, "illegal_argument_exception"),
        "updates are not modelled"
    );
    assert!(
        receiver.documents().is_empty(),
        "nothing of a failed request is stored"
    );
    assert_eq!(receiver.counters().items, 0);
}

#[tokio::test]
async fn blank_lines_carriage_returns_and_a_trailing_action_without_source() {
    let receiver = Elasticsearch::start();
    let body = "\n{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\r\n{\"n\":1}\r\n\n{\"index\":{\"_index\":\"i\",\"_id\":\"2\"}}\n";
    let (status, answer_body) = bulk(&receiver, "/_bulk", body).await;
    assert_eq!(status, 200, "{answer_body}");
    assert_eq!(
        item_statuses(&answer_body).len(),
        1,
        "the trailing action is dropped: {answer_body}"
    );
    let documents = receiver.documents();
    assert_eq!(
        (documents[0].id.as_str(), &documents[0].source),
        ("1", &json!({"n": 1}))
    );
}

#[tokio::test]
async fn request_validation_lists_every_failure() {
    let receiver = Elasticsearch::start();
    let long_id = "x".repeat(MAX_ID_BYTES + 1);
    let body = format!(
        "{{\"index\":{{}}}}\n{{}}\n{{\"delete\":{{\"_index\":\"i\"}}}}\n{{\"create\":{{}}}}\n{{}}\n{{\"index\":{{\"_index\":\"i\",\"_id\":\"{long_id}\"}}}}\n{{}}\n{{\"index\":{{\"_index\":\"i\"}}}}\n{{}}\n"
    );
    let (status, answer_body) = bulk(&receiver, "/_bulk", &body).await;
    assert_eq!(
        (status, error_type(&answer_body)),
        (400, "action_request_validation_exception")
    );
    assert_eq!(
        error_reason(&answer_body),
        format!(
            "Validation Failed: 1: index is missing;2: id is missing;3: index is missing;4: id [{long_id}] is too long, must be no longer than 512 bytes but was: 513;"
        )
    );
    assert!(
        receiver.documents().is_empty(),
        "the valid item is not stored either"
    );
}

#[tokio::test]
async fn item_errors_for_bad_sources_names_and_ids_leave_other_items_stored() {
    let receiver = Elasticsearch::start();
    let body = concat!(
        "{\"index\":{\"_index\":\"i\"}}\n[1,2]\n",
        "{\"index\":{\"_index\":\"i\"}}\nnot json\n",
        "{\"index\":{\"_index\":\"Logs\"}}\n{}\n",
        "{\"index\":{\"_index\":\"_hidden\"}}\n{}\n",
        "{\"index\":{\"_index\":\"i\",\"_id\":\"\"}}\n{}\n",
        "{\"index\":{\"_index\":\"i\"}}\n{\"ok\":true}\n",
    );
    let (status, answer_body) = bulk(&receiver, "/_bulk", body).await;
    assert_eq!(status, 200);
    assert_eq!(answer_body["errors"], true);
    let statuses: Vec<u64> = item_statuses(&answer_body)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(statuses, [400, 400, 400, 400, 400, 201]);
    let types: Vec<&str> = (0..5).map(|i| error_type(item(&answer_body, i))).collect();
    assert_eq!(
        types,
        [
            "document_parsing_exception",
            "document_parsing_exception",
            "invalid_index_name_exception",
            "invalid_index_name_exception",
            "illegal_argument_exception",
        ]
    );
    assert_eq!(
        error_reason(item(&answer_body, 2)),
        "Invalid index name [Logs], must be lowercase"
    );
    assert_eq!(
        error_reason(item(&answer_body, 4)),
        "if _id is specified it must not be empty"
    );

    let documents = receiver.documents();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].source, json!({"ok": true}));
    let counters = receiver.counters();
    assert_eq!((counters.mapping_errors, counters.invalid_items), (2, 3));
}

#[tokio::test]
async fn dynamic_mapping_rejects_conflicting_types() {
    let receiver = Elasticsearch::start();
    let first = json!({"msg": "hello", "status": 200, "ratio": 0.5, "ok": true, "when": "2023-06-20T15:32:10Z", "day": "2023-06-20", "spaced": "2023-06-20 15:32:10", "client": {"ip": "10.0.0.1"}, "tags": [null, "a"], "none": null});
    let body = format!("{{\"index\":{{\"_index\":\"m\"}}}}\n{first}\n");
    let (status, _) = bulk(&receiver, "/_bulk", &body).await;
    assert_eq!(status, 200);
    let mapping = receiver.mapping("m").expect("mapped");
    let mapped: Vec<(&str, FieldType)> = mapping.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        mapped,
        [
            ("client", FieldType::Object),
            ("day", FieldType::Date),
            ("msg", FieldType::Text),
            ("ok", FieldType::Boolean),
            ("ratio", FieldType::Float),
            ("spaced", FieldType::Text),
            ("status", FieldType::Long),
            ("tags", FieldType::Text),
            ("when", FieldType::Date),
        ],
        "nulls map nothing"
    );

    let accepted = [
        json!({"msg": 42}),
        json!({"msg": false}),
        json!({"status": "404"}),
        json!({"status": 1.5}),
        json!({"ok": "false"}),
        json!({"when": 1_687_275_130_000i64}),
        json!({"when": "2023-06-21"}),
        json!({"tags": ["b", 3]}),
        json!({"client": null}),
        json!({"new_field": "x"}),
    ];
    let rejected = [
        (
            json!({"msg": {"nested": 1}}),
            "failed to parse field [msg] of type [text] in document with id 'r0'. Preview of field's value: '{\"nested\":1}'",
        ),
        (
            json!({"status": "not a number"}),
            "failed to parse field [status] of type [long] in document with id 'r1'. Preview of field's value: 'not a number'",
        ),
        (
            json!({"ok": 1}),
            "failed to parse field [ok] of type [boolean] in document with id 'r2'. Preview of field's value: '1'",
        ),
        (
            json!({"when": "-"}),
            "failed to parse field [when] of type [date] in document with id 'r3'. Preview of field's value: '-'",
        ),
        (
            json!({"client": "10.0.0.2"}),
            "object mapping for [client] tried to parse field [client] as object, but found a concrete value",
        ),
        (
            json!({"new_field": {"a": 1}}),
            "failed to parse field [new_field] of type [text] in document with id 'r5'. Preview of field's value: '{\"a\":1}'",
        ),
    ];
    let mut body = String::new();
    for (i, doc) in accepted.iter().enumerate() {
        body += &format!("{{\"index\":{{\"_index\":\"m\",\"_id\":\"a{i}\"}}}}\n{doc}\n");
    }
    for (i, (doc, _)) in rejected.iter().enumerate() {
        body += &format!("{{\"index\":{{\"_index\":\"m\",\"_id\":\"r{i}\"}}}}\n{doc}\n");
    }
    let (status, answer_body) = bulk(&receiver, "/_bulk", &body).await;
    assert_eq!(status, 200);
    for (i, doc) in accepted.iter().enumerate() {
        let result = item(&answer_body, i);
        assert_eq!(result["status"], 201, "{doc}: {result}");
    }
    for (i, (doc, reason)) in rejected.iter().enumerate() {
        let result = item(&answer_body, accepted.len() + i);
        assert_eq!(
            (
                result["status"].as_u64(),
                error_type(result),
                error_reason(result)
            ),
            (Some(400), "document_parsing_exception", *reason),
            "{doc}"
        );
    }
    assert_eq!(receiver.documents_in("m").len(), 1 + accepted.len());
    assert_eq!(
        receiver.mapping("m").unwrap()["new_field"],
        FieldType::Text,
        "mapped by a later document"
    );
    assert_eq!(receiver.counters().mapping_errors, rejected.len() as u64);
}

#[tokio::test]
async fn a_conflicting_create_still_maps_its_new_fields() {
    let receiver = Elasticsearch::start();
    let body = concat!(
        "{\"create\":{\"_index\":\"c\",\"_id\":\"1\"}}\n{\"a\":\"x\"}\n",
        "{\"create\":{\"_index\":\"c\",\"_id\":\"1\"}}\n{\"b\":5}\n",
        "{\"create\":{\"_index\":\"c\",\"_id\":\"2\"}}\n{\"b\":\"five\"}\n",
    );
    let (_, answer_body) = bulk(&receiver, "/_bulk", body).await;
    let statuses: Vec<u64> = item_statuses(&answer_body)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(statuses, [201, 409, 400]);
    assert_eq!(receiver.mapping("c").unwrap()["b"], FieldType::Long);
}

#[tokio::test]
async fn data_streams_take_only_creates_with_a_timestamp() {
    let receiver = Elasticsearch::builder().data_stream("logs-*-*").start();
    let body = concat!(
        "{\"index\":{\"_index\":\"logs-alb-default\"}}\n{\"@timestamp\":\"2023-06-20T15:32:10Z\"}\n",
        "{\"create\":{\"_index\":\"logs-alb-default\"}}\n{\"msg\":\"no time\"}\n",
        "{\"create\":{\"_index\":\"logs-alb-default\"}}\n{\"@timestamp\":\"yesterday\"}\n",
        "{\"create\":{\"_index\":\"logs-alb-default\"}}\n{\"@timestamp\":\"2023-06-20T15:32:10Z\",\"msg\":\"ok\"}\n",
        "{\"index\":{\"_index\":\"logs-plain\"}}\n{\"msg\":\"not a data stream\"}\n",
    );
    let (status, answer_body) = bulk(&receiver, "/_bulk", body).await;
    assert_eq!(status, 200);
    let statuses: Vec<u64> = item_statuses(&answer_body)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(statuses, [400, 400, 400, 201, 201]);
    assert_eq!(
        (
            error_type(item(&answer_body, 0)),
            error_reason(item(&answer_body, 0))
        ),
        (
            "illegal_argument_exception",
            "only write ops with an op_type of create are allowed in data streams"
        )
    );
    assert_eq!(
        error_reason(item(&answer_body, 1)),
        "data stream timestamp field [@timestamp] is missing"
    );
    assert_eq!(
        error_type(item(&answer_body, 2)),
        "document_parsing_exception"
    );
    let backing = item(&answer_body, 3)["_index"].as_str().unwrap();
    assert!(
        backing.starts_with(".ds-logs-alb-default-") && backing.ends_with("-000001"),
        "{backing}"
    );
    assert_eq!(item(&answer_body, 4)["_index"], "logs-plain");

    let stored = receiver.documents_in("logs-alb-default");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].source["msg"], "ok");
}

#[tokio::test]
async fn scripted_item_faults_apply_in_arrival_order_across_requests() {
    let receiver = Elasticsearch::start();
    receiver.reject_items_next(2, 429);
    receiver.reject_items_next(1, 503);
    let two =
        "{\"index\":{\"_index\":\"i\"}}\n{\"n\":1}\n{\"index\":{\"_index\":\"i\"}}\n{\"n\":2}\n";

    let (_, first) = bulk(
        &receiver,
        "/_bulk",
        "{\"index\":{\"_index\":\"i\"}}\n{\"n\":0}\n",
    )
    .await;
    let (_, second) = bulk(&receiver, "/_bulk", two).await;
    let (_, third) = bulk(&receiver, "/_bulk", two).await;

    let statuses =
        |body: &Value| -> Vec<u64> { item_statuses(body).into_iter().map(|(_, s)| s).collect() };
    assert_eq!(statuses(&first), [429]);
    assert_eq!(statuses(&second), [429, 503]);
    assert_eq!(statuses(&third), [201, 201]);
    assert_eq!(
        error_type(item(&first, 0)),
        "es_rejected_execution_exception"
    );
    assert_eq!(error_type(item(&second, 1)), "unavailable_shards_exception");
    assert_eq!(
        (first["errors"].as_bool(), third["errors"].as_bool()),
        (Some(true), Some(false))
    );
    let stored: Vec<_> = receiver
        .documents()
        .into_iter()
        .map(|d| d.source["n"].clone())
        .collect();
    assert_eq!(stored, [json!(1), json!(2)]);
    assert_eq!(receiver.counters().rejected, 3);
}

#[tokio::test]
async fn max_content_length_applies_to_the_decoded_body() {
    let receiver = Elasticsearch::builder().max_content_length(100).start();
    let doc = format!("{{\"msg\":\"{}\"}}", "x".repeat(80));
    let body = format!("{{\"index\":{{\"_index\":\"i\"}}}}\n{doc}\n");
    let compressed = gzip(body.as_bytes());
    assert!(compressed.len() < 100);
    let (status, _) =
        answer(post(&receiver, "/_bulk", compressed).header("Content-Encoding", "gzip")).await;
    assert_eq!(status, 413);
    let (status, _) = bulk(
        &receiver,
        "/_bulk",
        "{\"index\":{\"_index\":\"i\"}}\n{\"msg\":\"short\"}\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(receiver.documents().len(), 1);
}

#[tokio::test]
async fn filter_path_keeps_only_what_it_names() {
    let receiver = Elasticsearch::start();
    let body = "{\"create\":{\"_index\":\"f\",\"_id\":\"1\"}}\n{}\n{\"create\":{\"_index\":\"f\",\"_id\":\"1\"}}\n{}\n";
    let (status, filtered) = bulk(
        &receiver,
        "/_bulk?filter_path=errors,items.*.error.type,items.*.status",
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        filtered,
        json!({"errors": true, "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        ]})
    );
    let ok = "{\"index\":{\"_index\":\"f\"}}\n{}\n";
    let (_, no_errors) = bulk(&receiver, "/_bulk?filter_path=items.*.error", ok).await;
    assert_eq!(no_errors, json!({}));
    let (_, deep) = bulk(&receiver, "/_bulk?filter_path=took,**.result", ok).await;
    assert!(deep["took"].is_u64());
    assert_eq!(deep["items"], json!([{"index": {"result": "created"}}]));
    let (_, pretty) = answer(post(&receiver, "/_bulk?pretty&filter_path=errors", ok)).await;
    assert_eq!(pretty, json!({"errors": false}));
}

#[tokio::test]
async fn query_parameters_pipeline_and_unrecognized_ones() {
    let receiver = Elasticsearch::start();
    let body = "{\"index\":{\"_index\":\"p\"}}\n{}\n{\"index\":{\"_index\":\"p\",\"pipeline\":\"own\"}}\n{}\n";
    let (status, _) = bulk(
        &receiver,
        "/_bulk?pipeline=default&refresh=wait_for&timeout=1m",
        body,
    )
    .await;
    assert_eq!(status, 200);
    let pipelines: Vec<_> = receiver
        .documents()
        .into_iter()
        .map(|d| d.pipeline)
        .collect();
    assert_eq!(
        pipelines,
        [Some("default".to_owned()), Some("own".to_owned())]
    );

    let (status, answer_body) = bulk(&receiver, "/_bulk?refersh=true&zeta=1", body).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_reason(&answer_body),
        "request [/_bulk] contains unrecognized parameters: [refersh], [zeta]"
    );
    assert_eq!(receiver.documents().len(), 2);
}

#[tokio::test]
async fn routes_cluster_info_methods_and_proxy_prefix() {
    let receiver = Elasticsearch::start_at_path("/es");
    let (status, info) = answer(client().get(format!("{}/es/", receiver.url()))).await;
    assert_eq!(status, 200);
    assert_eq!(
        info["version"]["number"]
            .as_str()
            .map(|v| v.starts_with("8.")),
        Some(true)
    );
    let (status, answer_body) = answer(client().get(format!("{}/es/_bulk", receiver.url()))).await;
    assert_eq!(
        (status, answer_body),
        (
            405,
            json!({"error": "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]", "status": 405})
        )
    );
    let (status, answer_body) = answer(post(&receiver, "/es/_nope", "{}\n")).await;
    assert_eq!(
        (status, answer_body),
        (
            400,
            json!({"error": "no handler found for uri [/_nope] and method [POST]", "status": 400})
        )
    );
    let put = client()
        .put(format!("{}/es/web%2Dlogs/_bulk", receiver.url()))
        .header("Content-Type", "application/json")
        .body("{\"index\":{}}\n{}\n");
    assert_eq!(answer(put).await.0, 200);
    assert_eq!(
        receiver.documents_in("web-logs").len(),
        1,
        "the path index is percent-decoded"
    );
    assert_eq!(
        answer(post(
            &receiver,
            "/_bulk",
            "{\"index\":{\"_index\":\"i\"}}\n{}\n"
        ))
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn api_key_auth_is_http_receivers() {
    let receiver = Elasticsearch::start_with_auth(Auth::ApiKey("c2VjcmV0".into()));
    let body = "{\"index\":{\"_index\":\"i\"}}\n{}\n";
    assert_eq!(bulk(&receiver, "/_bulk", body).await.0, 401);
    let keyed = post(&receiver, "/_bulk", body).header("Authorization", "ApiKey c2VjcmV0");
    assert_eq!(answer(keyed).await.0, 200);
    assert_eq!(receiver.documents().len(), 1);
}

#[tokio::test]
async fn sigv4_headers_must_be_present_and_scoped_to_the_service() {
    let receiver = Elasticsearch::builder().require_sigv4("es").start();
    let body = "{\"index\":{\"_index\":\"i\"}}\n{}\n";
    let signed = |credential: &str, date: Option<&str>, sha: bool| {
        let mut request = post(&receiver, "/_bulk", body).header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=abcdef"),
        );
        if let Some(date) = date {
            request = request.header("X-Amz-Date", date);
        }
        if sha {
            request = request.header("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
        }
        request
    };
    let good = "AKIDEXAMPLE/20240102/eu-west-1/es/aws4_request";

    let (status, unsigned) = bulk(&receiver, "/_bulk", body).await;
    assert_eq!(status, 403);
    assert!(unsigned["message"].is_string(), "{unsigned}");
    let (status, wrong_service) = answer(signed(
        "AKIDEXAMPLE/20240102/eu-west-1/aoss/aws4_request",
        Some("20240102T000000Z"),
        true,
    ))
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        wrong_service["message"],
        "Credential should be scoped to correct service: 'es'. "
    );
    let (status, other_day) = answer(signed(good, Some("20240103T000000Z"), true)).await;
    assert_eq!(status, 403, "{other_day}");
    assert_eq!(answer(signed(good, None, true)).await.0, 403);
    assert_eq!(
        answer(signed(good, Some("20240102T000000Z"), false))
            .await
            .0,
        403
    );
    assert_eq!(
        answer(signed(
            "AKIDEXAMPLE/20240102/es/aws4_request",
            Some("20240102T000000Z"),
            true
        ))
        .await
        .0,
        403
    );
    assert!(receiver.documents().is_empty());

    let (status, accepted) = answer(signed(good, Some("20240102T000000Z"), true)).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(receiver.documents().len(), 1);
}

#[tokio::test]
async fn whole_request_faults_come_before_the_protocol() {
    let receiver = Elasticsearch::start();
    receiver.fail_next(1, 429);
    let body = "{\"index\":{\"_index\":\"i\"}}\n{}\n";
    assert_eq!(bulk(&receiver, "/_bulk", body).await.0, 429);
    assert_eq!(bulk(&receiver, "/_bulk", body).await.0, 200);
    let documents = receiver
        .wait_for_documents(1, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(documents.len(), 1);
    assert_eq!(receiver.counters().requests, 2);
}
