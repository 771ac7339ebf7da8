//! The VictoriaLogs receiver stores rows by VictoriaLogs' `/insert/jsonline`
//! rules and fails exactly as scripted.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use s3logd_test_support::victorialogs::{
    Auth, MAX_LINE_BYTES, MISSING_MSG, StoredRow, TimeSource, VictoriaLogs,
};

const NANOS: i64 = 1_000_000_000;
/// 2023-06-20T15:32:10Z (`date -u -d 2023-06-20T15:32:10Z +%s`).
const JUNE_20_SECONDS: i64 = 1_687_275_130;

/// A client that opens a new connection per request, so one request's
/// dropped connection or a receiver going down cannot affect the next.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

/// A POST to `/insert/jsonline?<query>` sent as the stream+json content type.
fn jsonline(receiver: &VictoriaLogs, query: &str) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/insert/jsonline?{query}", receiver.url()))
        .header("Content-Type", "application/stream+json")
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request
        .send()
        .await
        .expect("request answered")
        .status()
        .as_u16()
}

fn only_row(receiver: &VictoriaLogs) -> StoredRow {
    let rows = receiver.rows();
    assert_eq!(rows.len(), 1, "expected one row, got {rows:#?}");
    rows.into_iter().next().expect("one row")
}

fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64
}

#[tokio::test]
async fn stores_stream_msg_time_and_flattened_fields() {
    let receiver = VictoriaLogs::start();
    let line = r#"{"date":"2023-06-20T15:32:10Z","source":"alb","elb":"app/x","log":{"message":"hello","level":{"n":3}},"status":502,"ratio":0.50,"ok":true,"empty":"","none":null,"list":[1, "a"]}"#;

    let request = jsonline(
        &receiver,
        "_stream_fields=source,elb&_msg_field=log.message&_time_field=date",
    );
    assert_eq!(status_of(request.body(line)).await, 200);

    let row = only_row(&receiver);
    assert_eq!(row.time, JUNE_20_SECONDS * NANOS);
    assert_eq!(row.time_source, TimeSource::Rfc3339);
    assert_eq!(row.msg, "hello");
    assert_eq!(row.stream, r#"{elb="app/x",source="alb"}"#);
    assert_eq!((row.account_id, row.project_id), (0, 0));
    let fields: Vec<(&str, &str)> = row
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("elb", "app/x"),
            ("list", r#"[1,"a"]"#),
            ("log.level.n", "3"),
            ("ok", "true"),
            ("ratio", "0.50"),
            ("source", "alb"),
            ("status", "502"),
        ]
    );
    assert_eq!(receiver.counters().rows_stored, 1);
}

#[tokio::test]
async fn query_args_win_over_headers_and_first_non_empty_msg_field_wins() {
    let receiver = VictoriaLogs::start();
    let line = r#"{"a":"","b":"from b","c":"from c","h":"from header","s":"x"}"#;

    let both = jsonline(&receiver, "_msg_field=a,b&_stream_fields=s")
        .header("VL-Msg-Field", "h")
        .header("VL-Stream-Fields", "c");
    assert_eq!(status_of(both.body(line)).await, 200);
    let headers_only = jsonline(&receiver, "")
        .header("VL-Msg-Field", "h")
        .header("VL-Stream-Fields", "c");
    assert_eq!(status_of(headers_only.body(line)).await, 200);
    assert_eq!(status_of(jsonline(&receiver, "").body(line)).await, 200);

    let rows = receiver.rows();
    assert_eq!(
        (rows[0].msg.as_str(), rows[0].stream.as_str()),
        ("from b", r#"{s="x"}"#)
    );
    assert!(rows[0].fields.contains_key("c") && !rows[0].fields.contains_key("b"));
    assert_eq!(
        (rows[1].msg.as_str(), rows[1].stream.as_str()),
        ("from header", r#"{c="from c"}"#)
    );
    assert_eq!(
        (rows[2].msg.as_str(), rows[2].stream.as_str()),
        (MISSING_MSG, "{}")
    );
}

#[tokio::test]
async fn time_formats() {
    let receiver = VictoriaLogs::start();
    let cases = [
        ("1686026893", 1_686_026_893 * NANOS, TimeSource::UnixInteger),
        // 2100-01-01: past 32 bits, still seconds.
        ("4102444800", 4_102_444_800 * NANOS, TimeSource::UnixInteger),
        (
            "1686026893735",
            1_686_026_893_735_000_000,
            TimeSource::UnixInteger,
        ),
        (
            "1686026893735321",
            1_686_026_893_735_321_000,
            TimeSource::UnixInteger,
        ),
        (
            "1686026893735321098",
            1_686_026_893_735_321_098,
            TimeSource::UnixInteger,
        ),
        (
            "2023-06-20 15:32:10.123456789+02:00",
            (JUNE_20_SECONDS - 2 * 3600) * NANOS + 123_456_789,
            TimeSource::Rfc3339,
        ),
        (
            "2023-06-20T15:32:10",
            JUNE_20_SECONDS * NANOS,
            TimeSource::Rfc3339WithoutZone,
        ),
    ];
    let body: String = cases
        .iter()
        .map(|(time, _, _)| format!("{{\"_time\":\"{time}\",\"_msg\":\"{time}\"}}\n"))
        .collect();
    assert_eq!(status_of(jsonline(&receiver, "").body(body)).await, 200);
    let stored: Vec<_> = receiver
        .rows()
        .into_iter()
        .map(|r| (r.msg, r.time, r.time_source))
        .collect();
    let expected: Vec<_> = cases
        .iter()
        .map(|(text, nanos, source)| (text.to_string(), *nanos, *source))
        .collect();
    assert_eq!(stored, expected);

    let before = unix_nanos_now();
    let body = "{\"_msg\":\"no time\"}\n{\"_msg\":\"zero\",\"_time\":\"0\"}\n{\"_msg\":\"bad\",\"_time\":\"yesterday\"}\n";
    assert_eq!(status_of(jsonline(&receiver, "").body(body)).await, 200);
    let after = unix_nanos_now();
    let ingested = &receiver.rows()[cases.len()..];
    assert_eq!(
        ingested.len(),
        2,
        "the unparsable time is an invalid line: {ingested:#?}"
    );
    for row in ingested {
        assert_eq!(row.time_source, TimeSource::Ingestion);
        assert!(
            (before..=after).contains(&row.time),
            "{row:?} not ingested between {before} and {after}"
        );
    }
    assert_eq!(receiver.counters().invalid_lines, 1);
}

#[tokio::test]
async fn tenant_headers() {
    let receiver = VictoriaLogs::start();
    let tenant = jsonline(&receiver, "")
        .header("AccountID", "12")
        .header("ProjectID", "34");
    assert_eq!(status_of(tenant.body(r#"{"_msg":"x"}"#)).await, 200);
    let bad = jsonline(&receiver, "").header("AccountID", "-1");
    assert_eq!(status_of(bad.body(r#"{"_msg":"y"}"#)).await, 400);

    let row = only_row(&receiver);
    assert_eq!((row.account_id, row.project_id), (12, 34));
}

#[tokio::test]
async fn body_without_stream_json_content_type_is_answered_ok_and_dropped() {
    let receiver = VictoriaLogs::start();
    let url = format!("{}/insert/jsonline", receiver.url());
    let untyped = client().post(&url).body(r#"{"_msg":"x"}"#);
    assert_eq!(status_of(untyped).await, 200);
    let json = client()
        .post(&url)
        .header("Content-Type", "application/json")
        .body(r#"{"_msg":"x"}"#);
    assert_eq!(status_of(json).await, 200);

    assert!(receiver.rows().is_empty());
    assert_eq!(receiver.counters().dropped_bodies, 2);
    let with_charset = client()
        .post(&url)
        .header("Content-Type", "application/stream+json; charset=utf-8")
        .body(r#"{"_msg":"x"}"#);
    assert_eq!(status_of(with_charset).await, 200);
    assert_eq!(receiver.rows().len(), 1);
}

#[tokio::test]
async fn bad_lines_are_skipped_and_only_all_bad_is_400() {
    let receiver = VictoriaLogs::start();
    let too_long = format!("{{\"_msg\":\"{}\"}}", "x".repeat(MAX_LINE_BYTES));
    let mixed = format!(
        "{{\"_msg\":\"good\"}}\nnot json\n[1,2]\n\n{too_long}\n{{\"_msg\":\"also good\"}}\n"
    );
    assert_eq!(status_of(jsonline(&receiver, "").body(mixed)).await, 200);
    let all_bad = "{\"_msg\":\nstill not json\n";
    let response = jsonline(&receiver, "")
        .body(all_bad)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        !response.text().await.expect("body").is_empty(),
        "a 400 says why"
    );

    let msgs: Vec<_> = receiver.rows().into_iter().map(|r| r.msg).collect();
    assert_eq!(msgs, ["good", "also good"]);
    let counters = receiver.counters();
    assert_eq!((counters.invalid_lines, counters.too_long_lines), (4, 1));
}

#[tokio::test]
async fn compressed_bodies() {
    let receiver = VictoriaLogs::start();
    let body = "{\"_msg\":\"one\"}\n{\"_msg\":\"two\"}\n";
    let gzip = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let deflate = {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("zlib");
        encoder.finish().expect("zlib")
    };
    let zstd = zstd::encode_all(body.as_bytes(), 0).expect("zstd");
    for (encoding, encoded) in [("gzip", gzip), ("deflate", deflate), ("zstd", zstd)] {
        let request = jsonline(&receiver, "")
            .header("Content-Encoding", encoding)
            .body(encoded);
        assert_eq!(status_of(request).await, 200, "{encoding}");
    }
    let brotli = jsonline(&receiver, "")
        .header("Content-Encoding", "br")
        .body(body);
    assert_eq!(
        status_of(brotli).await,
        200,
        "unsupported encodings are answered 200"
    );
    let corrupt = jsonline(&receiver, "")
        .header("Content-Encoding", "gzip")
        .body(body);
    assert_eq!(status_of(corrupt).await, 400);

    let msgs: Vec<_> = receiver.rows().into_iter().map(|r| r.msg).collect();
    assert_eq!(msgs, ["one", "two", "one", "two", "one", "two"]);
    assert_eq!(receiver.counters().unsupported_encodings, 1);
    let decoded: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.decoded_body_len)
        .collect();
    let plain = Some(body.len());
    assert_eq!(decoded, [plain, plain, plain, None, None]);
}

#[tokio::test]
async fn request_log_records_what_arrived() {
    let receiver = VictoriaLogs::start();
    let request = jsonline(&receiver, "_stream_fields=source").header("AccountID", "7");
    assert_eq!(status_of(request.body("{\"_msg\":\"x\"}\n")).await, 200);
    assert_eq!(
        status_of(client().get(format!("{}/nowhere", receiver.url()))).await,
        404
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].uri, "/insert/jsonline?_stream_fields=source");
    assert_eq!(requests[0].headers["accountid"], "7");
    assert_eq!(
        (requests[0].decoded_body_len, requests[0].status),
        (Some(13), Some(200))
    );
    assert_eq!(
        (requests[1].method.as_str(), requests[1].status),
        ("GET", Some(404))
    );
    assert_eq!(receiver.counters().requests, 2);
}

#[tokio::test]
async fn auth_is_required_when_configured() {
    let basic = VictoriaLogs::start_with_auth(Auth::Basic {
        username: "vl".into(),
        password: "secret".into(),
    });
    assert_eq!(
        status_of(jsonline(&basic, "").body(r#"{"_msg":"x"}"#)).await,
        401
    );
    let wrong = jsonline(&basic, "").basic_auth("vl", Some("guess"));
    assert_eq!(status_of(wrong.body(r#"{"_msg":"x"}"#)).await, 401);
    let right = jsonline(&basic, "").basic_auth("vl", Some("secret"));
    assert_eq!(status_of(right.body(r#"{"_msg":"x"}"#)).await, 200);
    assert_eq!(basic.rows().len(), 1);

    let bearer = VictoriaLogs::start_with_auth(Auth::Bearer("token".into()));
    let wrong = jsonline(&bearer, "").basic_auth("token", None::<&str>);
    assert_eq!(status_of(wrong.body(r#"{"_msg":"x"}"#)).await, 401);
    let right = jsonline(&bearer, "").bearer_auth("token");
    assert_eq!(status_of(right.body(r#"{"_msg":"x"}"#)).await, 200);
    assert_eq!(bearer.rows().len(), 1);
}

#[tokio::test]
async fn scripted_faults_apply_in_order_then_stop() {
    let receiver = VictoriaLogs::start();
    receiver.fail_next(1, 503);
    receiver.drop_connection_next(1);
    receiver.fail_next(1, 429);
    let send = |msg: &str| {
        jsonline(&receiver, "")
            .body(format!("{{\"_msg\":\"{msg}\"}}"))
            .send()
    };

    assert_eq!(send("a").await.expect("answered").status().as_u16(), 503);
    let dropped = send("b")
        .await
        .expect_err("connection closed without an answer");
    assert!(!dropped.is_status() && !dropped.is_connect(), "{dropped:?}");
    assert_eq!(send("c").await.expect("answered").status().as_u16(), 429);
    assert_eq!(send("d").await.expect("answered").status().as_u16(), 200);

    assert_eq!(only_row(&receiver).msg, "d");
    let statuses: Vec<_> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), None, Some(429), Some(200)]);
}

#[tokio::test]
async fn delayed_request_is_stored_even_when_the_client_gave_up() {
    let receiver = VictoriaLogs::start();
    let delay = Duration::from_millis(600);
    receiver.delay_next(2, delay);

    let started = Instant::now();
    assert_eq!(
        status_of(jsonline(&receiver, "").body(r#"{"_msg":"patient"}"#)).await,
        200
    );
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );

    let impatient = jsonline(&receiver, "").timeout(Duration::from_millis(100));
    let gave_up = impatient
        .body(r#"{"_msg":"impatient"}"#)
        .send()
        .await
        .expect_err("client timeout");
    assert!(gave_up.is_timeout(), "{gave_up:?}");
    let rows = receiver.wait_for_rows(2, Duration::from_secs(5)).await;
    let msgs: Vec<_> = rows.into_iter().map(|r| r.msg).collect();
    assert_eq!(msgs, ["patient", "impatient"]);
}

#[tokio::test]
async fn down_refuses_connections_until_up_again_on_the_same_port() {
    let receiver = VictoriaLogs::start();
    let url = receiver.url();
    assert_eq!(
        status_of(jsonline(&receiver, "").body(r#"{"_msg":"before"}"#)).await,
        200
    );

    receiver.set_down(true);
    let refused = jsonline(&receiver, "")
        .body(r#"{"_msg":"while down"}"#)
        .send()
        .await;
    assert!(refused.expect_err("down").is_connect());

    receiver.set_down(false);
    assert_eq!(receiver.url(), url);
    assert_eq!(
        status_of(jsonline(&receiver, "").body(r#"{"_msg":"after"}"#)).await,
        200
    );
    let msgs: Vec<_> = receiver.rows().into_iter().map(|r| r.msg).collect();
    assert_eq!(msgs, ["before", "after"]);
}

#[tokio::test]
async fn going_down_closes_open_connections() {
    let receiver = VictoriaLogs::start();
    let mut idle = tokio::net::TcpStream::connect(receiver.address())
        .await
        .expect("connect");

    receiver.set_down(true);

    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buffer),
    )
    .await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "open connection not closed: {read:?}"
    );
}

#[tokio::test]
async fn counting_receiver_counts_lines_keeps_no_rows_and_still_checks_the_protocol() {
    let receiver = VictoriaLogs::start_counting();
    let body = "{\"_msg\":\"one\"}\n\n{\"_msg\":\"two\"}\nnot even json\n";
    let zstd = zstd::encode_all(body.as_bytes(), 0).expect("zstd");
    let compressed = jsonline(&receiver, "")
        .header("Content-Encoding", "zstd")
        .body(zstd);
    assert_eq!(status_of(compressed).await, 200);
    let untyped = client()
        .post(format!("{}/insert/jsonline", receiver.url()))
        .body(body);
    assert_eq!(status_of(untyped).await, 200);
    let corrupt = jsonline(&receiver, "")
        .header("Content-Encoding", "gzip")
        .body(body);
    assert_eq!(status_of(corrupt).await, 400);

    assert!(receiver.rows().is_empty());
    let counters = receiver.counters();
    assert_eq!((counters.rows_stored, counters.dropped_bodies), (3, 1));
}
