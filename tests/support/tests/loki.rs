//! The Loki receiver stores entries by Loki 3's push rules, partial
//! success included, and fails exactly as scripted.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use s3logd_test_support::loki::{
    Auth, FAKE_TENANT, Loki, MAX_LABEL_VALUE_LENGTH, MAX_LINE_SIZE,
    MAX_STRUCTURED_METADATA_ENTRIES, PUSH_PATH,
};

/// 2001-09-09T01:46:40Z.
const BILLENNIUM_NS: i64 = 1_000_000_000_000_000_000;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64
}

/// A JSON push of `body` to the receiver's push path.
fn push(receiver: &Loki, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{PUSH_PATH}", receiver.url()))
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("request answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// One stream of `lines` at consecutive recent nanoseconds.
fn stream(labels: Value, lines: &[&str]) -> Value {
    let start = now_ns();
    let values: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| json!([(start + i as i64).to_string(), line]))
        .collect();
    json!({"stream": labels, "values": values})
}

fn streams(streams: Vec<Value>) -> Value {
    json!({ "streams": streams })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn lines(receiver: &Loki) -> Vec<String> {
    receiver.entries().into_iter().map(|e| e.line).collect()
}

#[tokio::test]
async fn push_stores_entries_with_labels_timestamps_and_metadata() {
    let receiver = Loki::start();
    let ts = now_ns();
    let body = json!({"streams": [
        {"stream": {"app": "web", "env": "prod"}, "values": [
            [ts.to_string(), "first"],
            [(ts + 1).to_string(), "second", {"trace_id": "abc", "user": "u1"}],
        ]},
        {"stream": {"job": "alb"}, "values": [[(ts + 2).to_string(), "third"]]},
    ]});
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!((status, text.as_str()), (204, ""));

    let entries = receiver.entries();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0].labels,
        labels(&[("app", "web"), ("env", "prod"), ("service_name", "web")])
    );
    assert_eq!((entries[0].ts_ns, entries[0].line.as_str()), (ts, "first"));
    assert!(entries[0].metadata.is_empty());
    assert_eq!(
        entries[1].metadata,
        labels(&[("trace_id", "abc"), ("user", "u1")])
    );
    assert_eq!(
        entries[2].labels,
        labels(&[("job", "alb"), ("service_name", "alb")])
    );
    assert!(entries.iter().all(|e| e.tenant == FAKE_TENANT));
    let counters = receiver.counters();
    assert_eq!(
        (
            counters.pushes_accepted,
            counters.entries_stored,
            counters.requests
        ),
        (1, 3, 1)
    );
    assert_eq!(
        receiver.requests()[0].decoded_body_len,
        Some(body.to_string().len())
    );
}

#[tokio::test]
async fn service_name_discovery_and_empty_label_values() {
    let receiver = Loki::start();
    let body = streams(vec![
        stream(
            json!({"component": "c", "app": "a"}),
            &["app wins by order"],
        ),
        stream(json!({"host": "h", "app": ""}), &["empty app is dropped"]),
        stream(json!({"service_name": "mine", "app": "a"}), &["kept"]),
        stream(json!({}), &["no labels at all"]),
    ]);
    assert_eq!(answer(push(&receiver, &body)).await.0, 204);
    let stored: Vec<_> = receiver.entries().into_iter().map(|e| e.labels).collect();
    assert_eq!(
        stored,
        [
            labels(&[("app", "a"), ("component", "c"), ("service_name", "a")]),
            labels(&[("host", "h"), ("service_name", "unknown_service")]),
            labels(&[("app", "a"), ("service_name", "mine")]),
            labels(&[("service_name", "unknown_service")]),
        ]
    );

    let plain = Loki::builder().discover_service_name(&[]).start();
    let body = streams(vec![
        stream(json!({"app": "a"}), &["as sent"]),
        stream(json!({"app": ""}), &["nothing left"]),
    ]);
    let (status, text) = answer(push(&plain, &body)).await;
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            "error at least one label pair is required per stream\n"
        )
    );
    let stored = plain.entries();
    assert_eq!(stored.len(), 1, "the valid stream is stored: {stored:?}");
    assert_eq!(stored[0].labels, labels(&[("app", "a")]));
}

#[tokio::test]
async fn an_invalid_label_name_refuses_the_whole_request() {
    let receiver = Loki::start();
    for (name, expected) in [
        (
            "foo-bar",
            "couldn't parse labels: 1:5: parse error: unexpected character inside braces: '-'\n",
        ),
        (
            "1abc",
            "couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'\n",
        ),
    ] {
        let body = streams(vec![
            stream(json!({"app": "ok"}), &["valid"]),
            stream(json!({ name: "x" }), &["bad"]),
        ]);
        let (status, text) = answer(push(&receiver, &body)).await;
        assert_eq!((status, text.as_str()), (400, expected), "{name}");
    }
    let in_second_label = streams(vec![stream(json!({"a": "1", "b.c": "2"}), &["x"])]);
    let (status, text) = answer(push(&receiver, &in_second_label)).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("1:10: parse error: unexpected character inside braces: '.'"),
        "{text}"
    );
    let without_entries = streams(vec![json!({"stream": {"x-y": "1"}, "values": []})]);
    assert_eq!(answer(push(&receiver, &without_entries)).await.0, 400);
    assert!(receiver.entries().is_empty());
    assert_eq!(receiver.counters().pushes_refused, 4);
}

#[tokio::test]
async fn json_shapes_loki_refuses_whole() {
    let receiver = Loki::start();
    let ts = now_ns().to_string();
    let bad_entries = [
        json!([now_ns(), "timestamp as a number"]),
        json!(["1.5", "fractional"]),
        json!(["1e18", "exponent"]),
        json!(["99999999999999999999", "out of range"]),
        json!([null, "null timestamp"]),
        json!([ts, 42]),
        json!([ts, "metadata value", {"k": 1}]),
        json!([ts, "four", {}, "x"]),
    ];
    for entry in bad_entries {
        let body = json!({"streams": [{"stream": {"app": "a"}, "values": [[ts, "good"], entry]}]});
        let (status, text) = answer(push(&receiver, &body)).await;
        assert_eq!(status, 400, "{entry}: {text}");
        assert!(text.ends_with('\n'), "{text:?}");
    }
    let (_, text) = answer(push(
        &receiver,
        &json!({"streams": [{"stream": {"app": "a"}, "values": [["1.5", "x"]]}]}),
    ))
    .await;
    assert!(
        text.contains("strconv.ParseInt: parsing \"1.5\": invalid syntax"),
        "{text}"
    );
    let bad_labels = json!({"streams": [{"stream": {"app": 7}, "values": [[ts, "x"]]}]});
    assert_eq!(answer(push(&receiver, &bad_labels)).await.0, 400);
    let not_json = client()
        .post(format!("{}{PUSH_PATH}", receiver.url()))
        .header("Content-Type", "application/json")
        .body("{\"streams\":");
    assert_eq!(answer(not_json).await.0, 400);
    assert!(receiver.entries().is_empty(), "{:?}", receiver.entries());

    let nulls = json!({"streams": [{"stream": {"app": "a", "gone": null}, "values": [[ts, null, {"k": null}]], "extra": 1}], "ignored": true});
    assert_eq!(answer(push(&receiver, &nulls)).await.0, 204);
    let entries = receiver.entries();
    assert_eq!(
        (entries[0].line.as_str(), &entries[0].metadata),
        ("", &labels(&[("k", "")]))
    );
    assert!(!entries[0].labels.contains_key("gone"));
    let signed =
        json!({"streams": [{"stream": {"app": "a"}, "values": [[format!("+{ts}"), "plus sign"]]}]});
    assert_eq!(
        answer(push(&receiver, &signed)).await.0,
        204,
        "ParseInt takes a sign"
    );
}

#[tokio::test]
async fn no_streams_is_422_and_streams_without_entries_are_skipped() {
    let receiver = Loki::start();
    for body in [json!({}), json!({"streams": []}), json!({"streams": null})] {
        let (status, text) = answer(push(&receiver, &body)).await;
        assert_eq!(
            (status, text.as_str()),
            (
                422,
                "error at least one valid stream is required for ingestion\n"
            ),
            "{body}"
        );
    }
    let empty = json!({"streams": [{"stream": {"app": "a"}, "values": []}, {"stream": {}}]});
    assert_eq!(answer(push(&receiver, &empty)).await.0, 204);
    assert!(receiver.entries().is_empty());
}

#[tokio::test]
async fn invalid_entries_are_reported_while_valid_ones_are_stored() {
    let receiver = Loki::start();
    let now = now_ns();
    let an_hour = 3_600_000_000_000i64;
    let long_line = "x".repeat(MAX_LINE_SIZE + 1);
    let body = json!({"streams": [{"stream": {"app": "web"}, "values": [
        [now.to_string(), "kept"],
        [BILLENNIUM_NS.to_string(), "old"],
        [(now + an_hour).to_string(), "future"],
        [(now + 1).to_string(), long_line],
        [(now + 2).to_string(), "x".repeat(MAX_LINE_SIZE)],
    ]}]});
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!(status, 400);
    assert_eq!(
        lines(&receiver),
        ["kept".to_owned(), "x".repeat(MAX_LINE_SIZE)]
    );

    let parts: Vec<&str> = text.trim_end().split("; ").collect();
    assert_eq!(parts.len(), 3, "{text}");
    let stream = r#"{app="web", service_name="web"}"#;
    assert!(
        parts[0].starts_with(&format!(
            "1 errors like: entry for stream '{stream}' has timestamp too old: 2001-09-09T01:46:40Z, oldest acceptable timestamp is: 20"
        )),
        "{}",
        parts[0]
    );
    assert!(
        parts[1].starts_with(&format!(
            "1 errors like: entry for stream '{stream}' has timestamp too new: 20"
        )),
        "{}",
        parts[1]
    );
    assert_eq!(
        parts[2],
        format!(
            "1 errors like: Max entry size '262144' bytes exceeded for stream '{stream}' while adding an entry with length '262145' bytes"
        )
    );
    let counters = receiver.counters();
    assert_eq!(
        (
            counters.pushes_partial,
            counters.entries_stored,
            counters.entries_discarded
        ),
        (1, 2, 3)
    );

    let twice = json!({"streams": [{"stream": {"app": "web"}, "values": [
        [BILLENNIUM_NS.to_string(), "old"],
        [BILLENNIUM_NS.to_string(), "old too"],
    ]}]});
    let (status, text) = answer(push(&receiver, &twice)).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("2 errors like: entry for stream"),
        "{text}"
    );
    let once = json!({"streams": [{"stream": {"app": "web"}, "values": [[BILLENNIUM_NS.to_string(), "old"]]}]});
    let (_, text) = answer(push(&receiver, &once)).await;
    assert!(text.starts_with("entry for stream '"), "{text}");
}

#[tokio::test]
async fn limits_are_configurable() {
    let receiver = Loki::builder()
        .reject_old_samples_max_age(None)
        .max_line_size(10)
        .max_label_names_per_series(2)
        .start();
    let body = json!({"streams": [
        {"stream": {"a": "1", "b": "2"}, "values": [[BILLENNIUM_NS.to_string(), "old is fine"], [now_ns().to_string(), "short"]]},
        {"stream": {"a": "1", "b": "2", "c": "3"}, "values": [[now_ns().to_string(), "three"]]},
    ]});
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!(status, 400);
    assert_eq!(lines(&receiver), ["short"]);
    assert!(
        text.contains("Max entry size '10' bytes exceeded"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"entry for stream '{a="1", b="2", c="3", service_name="unknown_service"}' has 3 label names; limit 2"#
        ),
        "service_name is not counted: {text}"
    );
}

#[tokio::test]
async fn label_count_and_length_limits() {
    let receiver = Loki::start();
    let fifteen: serde_json::Map<String, Value> =
        (0..15).map(|i| (format!("l{i:02}"), json!("v"))).collect();
    let mut sixteen = fifteen.clone();
    sixteen.insert("l15".into(), json!("v"));
    let long_value = "v".repeat(MAX_LABEL_VALUE_LENGTH + 1);
    let body = streams(vec![
        stream(Value::Object(fifteen), &["fifteen plus service_name"]),
        stream(Value::Object(sixteen), &["sixteen"]),
        stream(json!({"app": long_value}), &["long value"]),
    ]);
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!(status, 400);
    assert_eq!(lines(&receiver), ["fifteen plus service_name"]);
    assert!(text.contains("has 16 label names; limit 15"), "{text}");
    assert!(
        text.contains(&format!("has label value too long: '{long_value}'")),
        "{text}"
    );
    assert_eq!(receiver.entries()[0].labels.len(), 16);
}

#[tokio::test]
async fn structured_metadata_limits_and_name_sanitizing() {
    let receiver = Loki::start();
    let ts = now_ns().to_string();
    let too_many: serde_json::Map<String, Value> = (0..=MAX_STRUCTURED_METADATA_ENTRIES)
        .map(|i| (format!("k{i}"), json!("v")))
        .collect();
    let too_large = json!({"big": "x".repeat(64 * 1024)});
    let body = json!({"streams": [{"stream": {"app": "a"}, "values": [
        [ts, "sanitized", {"http.method": "GET", "1st": "yes", "ok_name": "x"}],
        [ts, "too many", too_many],
        [ts, "too large", too_large],
    ]}]});
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("has too many structured metadata labels: '129', limit: '128'"),
        "{text}"
    );
    assert!(
        text.contains("has structured metadata too large: '65539' bytes, limit: '65536' bytes"),
        "{text}"
    );
    let entries = receiver.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].metadata,
        labels(&[("http_method", "GET"), ("key_1st", "yes"), ("ok_name", "x")])
    );
}

#[tokio::test]
async fn tenants_when_required_and_fake_otherwise() {
    let receiver = Loki::builder().require_tenant().start();
    let body = streams(vec![stream(json!({"app": "a"}), &["x"])]);
    let (status, text) = answer(push(&receiver, &body)).await;
    assert_eq!((status, text.as_str()), (401, "no org id\n"));
    let cases = [
        ("a|b", "multiple org IDs present\n"),
        (
            "te/nant",
            "tenant ID 'te/nant' contains unsupported character '/'\n",
        ),
        ("..", "tenant ID is '.' or '..'\n"),
    ];
    for (header, expected) in cases {
        let request = push(&receiver, &body).header("X-Scope-OrgID", header);
        assert_eq!(
            answer(request).await,
            (400, expected.to_owned()),
            "{header}"
        );
    }
    for tenant in ["team-a", "team-b", "team-a|team-a"] {
        let request = push(&receiver, &body).header("X-Scope-OrgID", tenant);
        assert_eq!(answer(request).await.0, 204, "{tenant}");
    }
    assert_eq!(receiver.entries_of("team-a").len(), 2);
    assert_eq!(receiver.entries_of("team-b").len(), 1);

    let open = Loki::start();
    let request = push(&open, &body).header("X-Scope-OrgID", "team-a");
    assert_eq!(answer(request).await.0, 204);
    assert_eq!(open.entries_of(FAKE_TENANT).len(), 1, "auth_enabled: false");
    assert!(open.entries_of("team-a").is_empty());
}

#[tokio::test]
async fn content_type_must_be_json() {
    let receiver = Loki::start();
    let body = streams(vec![stream(json!({"app": "a"}), &["x"])]).to_string();
    let url = format!("{}{PUSH_PATH}", receiver.url());
    let (status, text) = answer(client().post(&url).body(body.clone())).await;
    assert_eq!((status, text.as_str()), (400, "mime: no media type\n"));
    let protobuf = client()
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .body(body.clone());
    assert_eq!(answer(protobuf).await.0, 415);
    let with_charset = client()
        .post(&url)
        .header("Content-Type", "Application/JSON; charset=utf-8")
        .body(body);
    assert_eq!(answer(with_charset).await.0, 204);
    assert_eq!(receiver.entries().len(), 1);
}

#[tokio::test]
async fn content_encodings_as_loki_reads_them() {
    let receiver = Loki::start();
    let body = streams(vec![stream(json!({"app": "a"}), &["x"])]).to_string();
    let gzip = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let raw_deflate = {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("deflate");
        encoder.finish().expect("deflate")
    };
    let zlib = {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("zlib");
        encoder.finish().expect("zlib")
    };
    let send = |encoding: &str, bytes: Vec<u8>| {
        client()
            .post(format!("{}{PUSH_PATH}", receiver.url()))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", encoding)
            .body(bytes)
    };
    assert_eq!(answer(send("gzip", gzip.clone())).await.0, 204);
    assert_eq!(answer(send("deflate", raw_deflate)).await.0, 204);
    assert_eq!(
        answer(send("snappy", body.clone().into_bytes())).await.0,
        204,
        "snappy is left to the protobuf path"
    );
    assert_eq!(
        answer(send("deflate", zlib)).await.0,
        400,
        "deflate is raw DEFLATE"
    );
    assert_eq!(answer(send("gzip", body.clone().into_bytes())).await.0, 400);
    let (status, text) = answer(send("GZIP", gzip)).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "Content-Encoding \"GZIP\" not supported\n")
    );
    assert_eq!(answer(send("br", body.into_bytes())).await.0, 400);
    assert_eq!(receiver.entries().len(), 3);
}

#[tokio::test]
async fn routes_and_proxy_prefix() {
    let receiver = Loki::start_at_path("/loki-proxy");
    let base = format!("{}/loki-proxy", receiver.url());
    assert_eq!(
        answer(client().get(format!("{base}/ready"))).await,
        (200, "ready\n".to_owned())
    );
    assert_eq!(
        answer(client().get(format!("{base}{PUSH_PATH}"))).await.0,
        405
    );
    assert_eq!(
        answer(client().post(format!("{base}/api/prom/push")))
            .await
            .0,
        404
    );
    let body = streams(vec![stream(json!({"app": "a"}), &["x"])]).to_string();
    let request = client()
        .post(format!("{base}{PUSH_PATH}"))
        .header("Content-Type", "application/json")
        .body(body);
    assert_eq!(answer(request).await.0, 204);
    assert_eq!(receiver.entries().len(), 1);
}

#[tokio::test]
async fn auth_and_scripted_faults_are_http_receivers() {
    let receiver = Loki::start_with_auth(Auth::Bearer("token".into()));
    let body = streams(vec![stream(json!({"app": "a"}), &["x"])]);
    assert_eq!(answer(push(&receiver, &body)).await.0, 401);
    receiver.fail_next(1, 429);
    assert_eq!(
        answer(push(&receiver, &body).bearer_auth("token")).await.0,
        429
    );
    assert_eq!(
        answer(push(&receiver, &body).bearer_auth("token")).await.0,
        204
    );
    let entries = receiver.wait_for_entries(1, Duration::from_secs(5)).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(receiver.counters().requests, 3);
}
