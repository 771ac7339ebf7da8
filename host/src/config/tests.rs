use std::collections::BTreeSet;
use std::io::Write;

use super::*;

const MINIMAL: &str = r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/1/q"
[sink.victorialogs]
url = "http://127.0.0.1:9428"
"#;

const EXAMPLE: &str = include_str!("../../s3logd.example.toml");

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn rejections(text: &str, env: Vec<(String, String)>) -> Vec<(String, String)> {
    let ConfigErrors(errors) =
        Config::parse(text, env).expect_err("configuration should be rejected");
    errors
        .into_iter()
        .map(|error| (error.path, error.message))
        .collect()
}

fn victorialogs(config: &Config) -> &VictoriaLogsConfig {
    match &config.sink["victorialogs"] {
        SinkConfig::VictoriaLogs(sink) => sink,
        other => panic!("not a VictoriaLogs sink: {other:?}"),
    }
}

fn victorialogs_mut(config: &mut Config) -> &mut VictoriaLogsConfig {
    match config.sink.get_mut("victorialogs") {
        Some(SinkConfig::VictoriaLogs(sink)) => sink,
        other => panic!("not a VictoriaLogs sink: {other:?}"),
    }
}

/// Every key path a configuration may set: each sink kind's keys under
/// `sink.<kind>`.
fn known_paths() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = schema::shape_of::<Config>()
        .key_paths()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for kind in SinkConfig::KINDS {
        known.insert(format!("sink.{kind}"));
        for (key, _) in SinkConfig::shape(kind).unwrap().key_paths() {
            known.insert(format!("sink.{kind}.{key}"));
        }
    }
    known
}

fn paths(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(path, _)| path.as_str()).collect()
}

#[test]
fn defaults_fill_everything_but_the_required_urls() {
    let config = Config::parse(MINIMAL, no_env()).unwrap();
    assert_eq!(config.queue.url, "https://sqs.us-east-1.amazonaws.com/1/q");
    assert_eq!(
        (
            config.queue.max_messages,
            config.queue.wait_time_secs,
            config.queue.visibility_timeout_secs
        ),
        (10, 20, 300)
    );
    assert_eq!(
        (
            config.queue.heartbeat_interval_secs,
            config.queue.max_receive_count,
            config.queue.concurrency
        ),
        (60, 5, 4)
    );
    assert_eq!(
        config.aws,
        AwsConfig {
            region: None,
            endpoint_url: None
        }
    );
    assert!(config.objects.allowed_buckets.is_empty());
    assert_eq!(config.objects.expected_bucket_owner, None);
    assert_eq!(config.objects.max_line_bytes, 64 << 20);
    assert_eq!(config.objects.in_flight_bytes, 256 << 20);
    assert!(config.routes.is_empty());
    assert_eq!(config.enrich.key_regex, None);
    assert_eq!(
        config.enrich.stream_fields,
        ["log_type", "account", "region", "load_balancer"]
    );
    assert!(config.parsers.paths.is_empty());
    assert_eq!(
        (
            config.parsers.call_timeout_ms,
            config.parsers.memory_limit_mib
        ),
        (30_000, 256)
    );
    let sink = victorialogs(&config);
    assert_eq!(sink.options.compression, Compression::Zstd);
    assert_eq!(
        (
            sink.batch.batch_max_bytes,
            sink.batch.batch_max_records,
            sink.batch.batch_max_age_ms,
            sink.batch.max_record_bytes
        ),
        (2 << 20, 10_000, 1_000, 256 << 10)
    );
    assert_eq!(
        (sink.options.account_id, sink.options.project_id),
        (None, None)
    );
    let http = &sink.http;
    assert!(http.username.is_none() && http.password.is_none() && http.bearer_token.is_none());
    assert!(http.headers.is_empty());
    assert_eq!(
        (
            http.request_timeout_secs,
            sink.batch.max_requests_in_flight,
            http.tls_ca_file.as_deref()
        ),
        (30, 2, None)
    );
    assert_eq!(
        config.dead_letter,
        DeadLetterConfig {
            path: "s3logd-dead-letter.ndjson".into(),
            s3_url: None,
            max_line_bytes: 16 << 10,
        }
    );
    assert_eq!(config.metrics.listen, "127.0.0.1:9477");
    assert_eq!(
        (config.log.format, config.log.level.as_str()),
        (LogFormat::Text, "info")
    );
    assert_eq!(config.shutdown.grace_period_secs, 30);
}

#[test]
fn required_urls_are_reported_together() {
    let errors = rejections("[sink.victorialogs]", no_env());
    assert_eq!(
        errors,
        [
            ("queue.url".to_owned(), "required".to_owned()),
            ("sink.victorialogs.url".to_owned(), "required".to_owned())
        ]
    );
    let errors = rejections("", no_env());
    assert_eq!(paths(&errors), ["queue.url", "sink"]);
    assert!(
        errors[1].1.starts_with("required: at least one"),
        "{errors:?}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let text = format!("{MINIMAL}\n[objects]\nallowed_buckets = [\"from-file\"]\n");
    let env = env(&[
        (
            "S3LOGD_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/2/other",
        ),
        ("S3LOGD_QUEUE_MAX_MESSAGES", "3"),
        ("S3LOGD_SINK_VICTORIALOGS_URL", "https://logs.example:9428"),
        ("S3LOGD_SINK_VICTORIALOGS_COMPRESSION", "gzip"),
        (
            "S3LOGD_SINK_VICTORIALOGS_HEADERS",
            r#"{ "X-Team" = "ops" }"#,
        ),
        ("S3LOGD_OBJECTS_ALLOWED_BUCKETS", r#"["a", "b"]"#),
        ("S3LOGD_AWS_REGION", "eu-west-1"),
        ("S3LOGD_LOG_FORMAT", "json"),
        (
            "S3LOGD_ROUTES",
            r#"[{ key_regex = "^cf/", parser = "cloudfront" }]"#,
        ),
        ("UNRELATED", "1"),
    ]);
    let config = Config::parse(&text, env).unwrap();
    assert_eq!(
        config.queue.url,
        "https://sqs.eu-west-1.amazonaws.com/2/other"
    );
    assert_eq!(config.queue.max_messages, 3);
    let sink = victorialogs(&config);
    assert_eq!(sink.http.url, "https://logs.example:9428");
    assert_eq!(sink.options.compression, Compression::Gzip);
    let headers: Vec<(&str, &str)> = sink
        .http
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    assert_eq!(headers, [("X-Team", "ops")]);
    assert_eq!(config.objects.allowed_buckets, ["a", "b"]);
    assert_eq!(config.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.routes.len(), 1);
    assert_eq!(
        (
            config.routes[0].key_regex.as_str(),
            config.routes[0].parser.as_deref()
        ),
        ("^cf/", Some("cloudfront"))
    );
}

#[test]
fn text_keys_take_environment_values_verbatim() {
    // "12345" and "true" would read as TOML numbers and booleans.
    let env = env(&[
        ("S3LOGD_SINK_VICTORIALOGS_USERNAME", "true"),
        ("S3LOGD_SINK_VICTORIALOGS_PASSWORD", "12345"),
        ("S3LOGD_ENRICH_KEY_REGEX", r#""quoted""#),
        ("S3LOGD_OBJECTS_EXPECTED_BUCKET_OWNER", "123456789012"),
    ]);
    let config = Config::parse(MINIMAL, env).unwrap();
    assert_eq!(
        config.objects.expected_bucket_owner.as_deref(),
        Some("123456789012")
    );
    let http = &victorialogs(&config).http;
    assert_eq!(http.username.as_deref(), Some("true"));
    assert_eq!(http.password.as_ref().map(Secret::expose), Some("12345"));
    assert_eq!(config.enrich.key_regex.as_deref(), Some(r#""quoted""#));
}

#[test]
fn the_expected_bucket_owner_is_a_twelve_digit_account_id() {
    let with_owner =
        |owner: &str| format!("{MINIMAL}\n[objects]\nexpected_bucket_owner = {owner:?}\n");
    let config = Config::parse(&with_owner("000123456789"), no_env()).unwrap();
    assert_eq!(
        config.objects.expected_bucket_owner.as_deref(),
        Some("000123456789")
    );
    for wrong in [
        "12345678901",
        "1234567890123",
        "12345678901a",
        "",
        "１２３４５６７８９０１２",
    ] {
        let errors = rejections(&with_owner(wrong), no_env());
        assert_eq!(
            paths(&errors),
            ["objects.expected_bucket_owner"],
            "{wrong:?}"
        );
        assert!(errors[0].1.contains("12 digits"), "{errors:?}");
    }
}

#[test]
fn a_problem_is_one_line_whatever_the_value_holds() {
    let errors = ConfigErrors(vec![ConfigError {
        path: "log.format".to_owned(),
        message: "unknown variant `text\n2026-01-01T00:00:00Z ERROR forged`".to_owned(),
    }]);
    assert_eq!(
        errors.to_string(),
        r"log.format: unknown variant `text\n2026-01-01T00:00:00Z ERROR forged`"
    );
}

#[test]
fn environment_value_of_the_wrong_type_names_the_key() {
    let errors = rejections(MINIMAL, env(&[("S3LOGD_QUEUE_MAX_MESSAGES", "ten")]));
    assert_eq!(paths(&errors), ["queue.max_messages"]);
    assert!(errors[0].1.contains("invalid type"), "{errors:?}");
}

#[test]
fn environment_names_are_unique() {
    let names: Vec<String> = known_paths().iter().map(|path| env_name(path)).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    assert!(names.contains(&"S3LOGD_SINK_VICTORIALOGS_BEARER_TOKEN".to_owned()));
}

#[test]
fn unknown_keys_are_all_named_with_their_path() {
    let text = format!(
        "extra = 1\n{MINIMAL}\n[queue.nested]\n[sink.victorialogs.tls]\n[[routes]]\nkey_regex = 'x'\nparser = 'p'\nparsr = 'typo'\n"
    );
    let text = text.replacen("[queue]", "[queue]\nmax_mesages = 5", 1);
    let errors = rejections(&text, no_env());
    let mut found = paths(&errors);
    found.sort();
    assert_eq!(
        found,
        [
            "extra",
            "queue.max_mesages",
            "queue.nested",
            "routes[0].parsr",
            "sink.victorialogs.tls"
        ]
    );
    let (_, message) = errors
        .iter()
        .find(|(path, _)| path == "queue.max_mesages")
        .unwrap();
    assert!(
        message.starts_with("unknown key (known here: url, max_messages,"),
        "{message}"
    );
}

#[test]
fn wrong_types_name_the_key() {
    let text = MINIMAL.replace("[queue]", "[queue]\nconcurrency = \"four\"");
    let errors = rejections(&text, no_env());
    assert_eq!(paths(&errors), ["queue.concurrency"]);
    let text = format!("{MINIMAL}\n[log]\nformat = \"xml\"\n");
    let errors = rejections(&text, no_env());
    assert_eq!(paths(&errors), ["log.format"]);
    assert!(errors[0].1.contains("unknown variant `xml`"), "{errors:?}");
}

#[test]
fn several_problems_are_reported_at_once() {
    let text = r#"
[queue]
url = "ftp://queue"
max_messages = 11
wait_time_secs = 21
visibility_timeout_secs = 30
heartbeat_interval_secs = 30
[aws]
endpoint_url = "not a url"
[[routes]]
key_regex = "ok"
parser = ""
[sink.victorialogs]
url = "http://127.0.0.1:9428"
username = "u"
password = "p"
bearer_token = "t"
batch_max_records = 0
max_requests_in_flight = 0
[metrics]
listen = "localhost"
[log]
level = "info,=="
"#;
    let errors = rejections(text, no_env());
    assert_eq!(
        paths(&errors),
        [
            "queue.url",
            "queue.max_messages",
            "queue.wait_time_secs",
            "queue.heartbeat_interval_secs",
            "aws.endpoint_url",
            "routes[0].parser",
            "sink.victorialogs.bearer_token",
            "sink.victorialogs.batch_max_records",
            "sink.victorialogs.max_requests_in_flight",
            "metrics.listen",
            "log.level",
        ]
    );
    assert_eq!(
        errors[0].1,
        r#""ftp://queue" is not an http:// or https:// URL with a host"#
    );
    assert_eq!(errors[1].1, "11 is out of range 1..=10");
    let display = ConfigErrors(vec![
        ConfigError {
            path: "queue.url".into(),
            message: "required".into(),
        },
        ConfigError {
            path: String::new(),
            message: "whole file".into(),
        },
    ])
    .to_string();
    assert_eq!(display, "queue.url: required\nwhole file");
}

#[test]
fn half_of_basic_auth_is_reported() {
    let text = MINIMAL.replace(
        "url = \"http://127.0.0.1:9428\"",
        "url = \"http://127.0.0.1:9428\"\nusername = \"u\"",
    );
    assert_eq!(
        rejections(&text, no_env()),
        [(
            "sink.victorialogs.password".to_owned(),
            "required with username".to_owned()
        )]
    );
    let config = Config::parse(
        MINIMAL,
        env(&[("S3LOGD_SINK_VICTORIALOGS_BEARER_TOKEN", "t0k")]),
    )
    .unwrap();
    assert_eq!(
        victorialogs(&config)
            .http
            .bearer_token
            .as_ref()
            .map(Secret::expose),
        Some("t0k")
    );
}

#[test]
fn invalid_regexes_carry_the_regex_error() {
    let text = format!(
        "{MINIMAL}\n[enrich]\nkey_regex = '(?P<account>\\d+'\n[[routes]]\nkey_regex = '['\nparser = 'alb'\n"
    );
    let errors = rejections(&text, no_env());
    assert_eq!(paths(&errors), ["routes[0].key_regex", "enrich.key_regex"]);
    for (_, message) in &errors {
        assert!(message.starts_with("invalid regex: "), "{message}");
    }
    assert!(errors[1].1.contains("unclosed group"), "{}", errors[1].1);
}

#[test]
fn secrets_are_never_printed() {
    let text = MINIMAL.replace(
        "url = \"http://127.0.0.1:9428\"",
        "url = \"http://127.0.0.1:9428\"\nusername = \"u\"\npassword = \"hunter2-password\"",
    );
    let config = Config::parse(&text, no_env()).unwrap();
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("password: Some(***)"), "{debug}");
    let serialized = toml::to_string(&config).unwrap();
    assert!(
        !serialized.contains("hunter2") && serialized.contains("password = \"***\""),
        "{serialized}"
    );
    let secret = victorialogs(&config).http.password.clone().unwrap();
    assert_eq!(secret.to_string(), "***");
    assert_eq!(secret.expose(), "hunter2-password");

    let bearer = Config::parse(
        MINIMAL,
        env(&[("S3LOGD_SINK_VICTORIALOGS_BEARER_TOKEN", "tok-secret")]),
    )
    .unwrap();
    assert!(!format!("{bearer:?}").contains("tok-secret"));
}

#[test]
fn credentials_in_a_url_are_masked_in_output_and_errors() {
    let text = MINIMAL.replace("127.0.0.1:9428", "user:pa55@127.0.0.1:9428");
    let config = Config::parse(&text, no_env()).unwrap();
    assert_eq!(
        victorialogs(&config).http.url,
        "http://user:pa55@127.0.0.1:9428",
        "the sink still gets them"
    );
    let printed = format!("{config:?}\n{}", toml::to_string(&config).unwrap());
    assert!(!printed.contains("pa55"), "{printed}");
    assert!(printed.contains("http://***@127.0.0.1:9428"), "{printed}");

    let refused = MINIMAL.replace("http://127.0.0.1:9428", "ftp://user:pa55@127.0.0.1:9428");
    let errors = rejections(&refused, no_env());
    assert_eq!(
        errors,
        [(
            "sink.victorialogs.url".to_owned(),
            r#""ftp://***@127.0.0.1:9428" is not an http:// or https:// URL with a host"#
                .to_owned()
        )]
    );
    let unparsable = MINIMAL.replace("http://127.0.0.1:9428", "http://user:pa55@127.0.0.1:port");
    let errors = rejections(&unparsable, no_env());
    assert!(!format!("{errors:?}").contains("pa55"), "{errors:?}");
}

#[test]
fn neither_syntax_nor_type_errors_repeat_a_secret() {
    let unterminated = MINIMAL.replace(
        "url = \"http://127.0.0.1:9428\"",
        "url = \"http://127.0.0.1:9428\"\nusername = \"u\"\npassword = \"hunter2",
    );
    let not_a_string = MINIMAL.replace(
        "url = \"http://127.0.0.1:9428\"",
        "url = \"http://127.0.0.1:9428\"\nheaders = { Authorization = 73311 }",
    );
    for text in [unterminated, not_a_string] {
        let errors = ConfigErrors(
            rejections(&text, no_env())
                .into_iter()
                .map(|(path, message)| ConfigError { path, message })
                .collect(),
        )
        .to_string();
        assert!(
            !errors.contains("hunter2") && !errors.contains("73311"),
            "{errors}"
        );
    }
}

#[test]
fn syntax_errors_are_one_problem_with_the_position() {
    let errors = rejections("[queue\nurl = 1", no_env());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .1
            .starts_with("invalid TOML at line 1, column 7: "),
        "{errors:?}"
    );
}

#[test]
fn load_and_check_read_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(EXAMPLE.as_bytes()).unwrap();
    let effective = Config::check(file.path()).unwrap();
    assert!(
        effective.contains("password = \"***\"") && !effective.contains("change-me"),
        "{effective}"
    );
    // The printed configuration reads back as the same settings, secrets
    // aside.
    let mut reread: Config = toml::from_str(&effective).unwrap();
    let mut loaded = Config::load(file.path()).unwrap();
    assert_eq!(
        victorialogs_mut(&mut reread)
            .http
            .password
            .take()
            .map(|secret| secret.expose().to_owned()),
        Some("***".to_owned())
    );
    victorialogs_mut(&mut loaded).http.password = None;
    // Header values are masked as secrets too.
    let masked = std::mem::take(&mut victorialogs_mut(&mut reread).http.headers);
    assert!(
        masked.values().all(|value| value.expose() == "***"),
        "{masked:?}"
    );
    victorialogs_mut(&mut loaded).http.headers.clear();
    assert_eq!(reread, loaded);

    let missing = Config::load(Path::new("/nonexistent/s3logd.toml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("cannot read /nonexistent/s3logd.toml: "),
        "{missing}"
    );
}

#[test]
fn the_example_file_is_valid() {
    let config = Config::parse(EXAMPLE, no_env()).unwrap();
    assert_eq!(config.routes.len(), 1);
    assert!(config.enrich.key_regex.is_some());
}

/// Key paths the example shows, set or commented out: `key =` lines under
/// `[section]` / `[[section]]` headers (which may be commented out too).
fn documented_paths(example: &str) -> BTreeSet<String> {
    let header = regex::Regex::new(r"^#?\s*\[\[?([a-z0-9_.]+)\]\]?\s*$").unwrap();
    let key = regex::Regex::new(r"^#?\s*([a-z0-9_]+)\s*=").unwrap();
    let mut section = String::new();
    let mut documented = BTreeSet::new();
    for line in example.lines() {
        if let Some(found) = header.captures(line) {
            section = found[1].to_owned();
            let mut prefix = String::new();
            for part in section.split('.') {
                prefix = if prefix.is_empty() {
                    part.to_owned()
                } else {
                    format!("{prefix}.{part}")
                };
                documented.insert(prefix.clone());
            }
        } else if let Some(found) = key.captures(line) {
            documented.insert(format!("{section}.{}", &found[1]));
        }
    }
    documented
}

#[test]
fn the_example_documents_every_key_and_no_other() {
    let known = known_paths();
    let documented = documented_paths(EXAMPLE);
    let undocumented: Vec<&String> = known.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&known).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from s3logd.example.toml: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "s3logd.example.toml documents unknown keys: {stale:?}"
    );
}

#[test]
fn settings_the_process_cannot_honour_are_refused() {
    let cases = [
        (
            MINIMAL.replace("[queue]", "[queue]\nconcurrency = 4294967295"),
            "queue.concurrency",
        ),
        (
            format!("{MINIMAL}[objects]\nmax_line_bytes = 9223372036854775807\n"),
            "objects.max_line_bytes",
        ),
        (
            format!("{MINIMAL}[objects]\nin_flight_bytes = 1099511627776\n"),
            "objects.in_flight_bytes",
        ),
        (
            format!("{MINIMAL}[parsers]\ncall_timeout_ms = 9223372036854775807\n"),
            "parsers.call_timeout_ms",
        ),
    ];
    for (text, path) in cases {
        let errors = rejections(&text, no_env());
        let (_, message) = errors
            .iter()
            .find(|(at, _)| at == path)
            .unwrap_or_else(|| panic!("{path} accepted: {errors:?}"));
        assert!(message.contains("out of range"), "{path}: {message}");
    }
}

#[test]
fn a_line_the_budget_or_a_parser_instance_cannot_hold_is_refused() {
    // Four objects at once share 256 MiB: the one with long lines may hold
    // 160 MiB, less than a 100 MiB line and its UTF-8 repair.
    let long_lines = format!("{MINIMAL}[objects]\nmax_line_bytes = 104857600\n");
    let errors = rejections(&long_lines, no_env());
    assert_eq!(paths(&errors), ["objects.max_line_bytes"], "{errors:?}");
    assert!(
        errors[0].1.contains("objects.in_flight_bytes"),
        "{errors:?}"
    );

    let small_parsers = format!("{MINIMAL}[parsers]\nmemory_limit_mib = 64\n");
    let errors = rejections(&small_parsers, no_env());
    assert_eq!(paths(&errors), ["parsers.memory_limit_mib"], "{errors:?}");
    assert!(errors[0].1.contains("objects.max_line_bytes"), "{errors:?}");

    let crowded = MINIMAL.replace("[queue]", "[queue]\nconcurrency = 1000")
        + "[objects]\nmax_line_bytes = 1048576\n";
    let errors = rejections(&crowded, no_env());
    assert_eq!(paths(&errors), ["objects.in_flight_bytes"], "{errors:?}");
    assert!(errors[0].1.contains("queue.concurrency"), "{errors:?}");

    let roomy = format!(
        "{MINIMAL}[objects]\nmax_line_bytes = 104857600\nin_flight_bytes = 536870912\n\
         [parsers]\nmemory_limit_mib = 512\n"
    );
    Config::parse(&roomy, no_env()).expect("a budget and instances that hold the line");
}

/// Lets the threads waiting on it go once dropped, also when the test fails.
struct Released(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Drop for Released {
    fn drop(&mut self) {
        let (released, changed) = &*self.0;
        *released
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        changed.notify_all();
    }
}

#[test]
fn the_blocking_pool_runs_compression_while_every_object_waits() {
    // Beyond tokio's default of 512 blocking threads.
    let text = MINIMAL.replace("[queue]", "[queue]\nconcurrency = 600")
        + "[objects]\nin_flight_bytes = 4294967295\n";
    let config = Config::parse(&text, no_env()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(config.blocking_threads())
        .enable_time()
        .build()
        .unwrap();
    let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    runtime.block_on(async {
        let released = Released(gate.clone());
        // Every object's thread waits for budget that only compression
        // gives back.
        for _ in 0..config.queue.concurrency {
            let gate = gate.clone();
            tokio::task::spawn_blocking(move || {
                let (released, changed) = &*gate;
                let mut released = released.lock().unwrap();
                while !*released {
                    released = changed.wait(released).unwrap();
                }
            });
        }
        let compression = tokio::task::spawn_blocking(|| ());
        tokio::time::timeout(std::time::Duration::from_secs(10), compression)
            .await
            .expect("compression got a thread")
            .unwrap();
        drop(released);
    });
}
