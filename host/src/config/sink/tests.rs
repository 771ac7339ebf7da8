use crate::config::{Config, ConfigErrors};

use super::*;

const QUEUE: &str = "[queue]\nurl = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";

fn parse(sinks: &str, env: &[(&str, &str)]) -> Result<Config, Vec<(String, String)>> {
    let env = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()));
    Config::parse(&format!("{QUEUE}{sinks}"), env).map_err(|ConfigErrors(errors)| {
        errors
            .into_iter()
            .map(|error| (error.path, error.message))
            .collect()
    })
}

#[test]
fn a_sink_named_after_its_kind_needs_no_type() {
    let config = parse(
        "[sink.loki]\nurl = \"http://127.0.0.1:3100\"\n[sink.file]\npath = \"out.ndjson\"\n",
        &[],
    )
    .unwrap();
    let kinds: Vec<(&str, &str)> = config
        .sink
        .iter()
        .map(|(name, sink)| (name.as_str(), sink.kind()))
        .collect();
    assert_eq!(kinds, [("file", "file"), ("loki", "loki")]);
}

#[test]
fn several_sinks_of_one_kind_take_their_type() {
    let config = parse(
        r#"
[sink.es-a]
type = "elasticsearch"
url = "http://127.0.0.1:9200"
[sink.es-b]
type = "elasticsearch"
url = "http://127.0.0.1:9201/proxy"
index = "alb-%Y.%m"
"#,
        &[],
    )
    .unwrap();
    let indices: Vec<(&str, &str, &str)> = config
        .sink
        .iter()
        .map(|(name, sink)| match sink {
            SinkConfig::Elasticsearch(es) => (
                name.as_str(),
                es.http.url.as_str(),
                es.options.index.as_str(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        indices,
        [
            ("es-a", "http://127.0.0.1:9200", "s3logd-%Y.%m.%d"),
            ("es-b", "http://127.0.0.1:9201/proxy", "alb-%Y.%m")
        ]
    );
}

#[test]
fn a_name_that_is_no_kind_needs_a_known_type() {
    let errors = parse("[sink.main]\nurl = \"http://x\"\n", &[]).unwrap_err();
    assert_eq!(errors[0].0, "sink.main.type");
    assert!(errors[0].1.starts_with("required"), "{errors:?}");
    let errors = parse("[sink.main]\ntype = \"kafka\"\n", &[]).unwrap_err();
    assert_eq!(errors[0].0, "sink.main.type");
    assert!(
        errors[0].1.contains("unknown sink type \"kafka\""),
        "{errors:?}"
    );
}

#[test]
fn each_kind_takes_only_its_own_keys() {
    // `index` is Elasticsearch's, `log_group` CloudWatch Logs'.
    let errors = parse(
        "[sink.victorialogs]\nurl = \"http://x\"\nindex = \"i\"\n[sink.file]\npath = \"p\"\nurl = \"http://x\"\nlog_group = \"g\"\n",
        &[],
    )
    .unwrap_err();
    let mut paths: Vec<&str> = errors.iter().map(|(path, _)| path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "sink.file.log_group",
            "sink.file.url",
            "sink.victorialogs.index"
        ]
    );
}

#[test]
fn defaults_differ_by_store() {
    let config = parse(
        r#"
[sink.elasticsearch]
url = "http://127.0.0.1:9200"
[sink.loki]
url = "http://127.0.0.1:3100"
[sink.cloudwatch_logs]
log_group = "/aws/elb/{load_balancer}"
[sink.file]
path = "-"
"#,
        &[],
    )
    .unwrap();
    let batches: Vec<(&str, u64, u64)> = config
        .sink
        .iter()
        .map(|(name, sink)| {
            let batch = sink.batch();
            (name.as_str(), batch.batch_max_bytes, batch.max_record_bytes)
        })
        .collect();
    assert_eq!(
        batches,
        [
            ("cloudwatch_logs", MIB, 256 * 1024 - 26),
            ("elasticsearch", 5 * MIB, 64 * MIB),
            ("file", 2 * MIB, 1 << 30),
            ("loki", MIB, 256 * 1024),
        ]
    );
    let SinkConfig::CloudWatchLogs(cloudwatch) = &config.sink["cloudwatch_logs"] else {
        unreachable!()
    };
    assert_eq!(cloudwatch.options.log_stream, "s3logd");
    assert!(cloudwatch.options.create_missing);
    let SinkConfig::Elasticsearch(es) = &config.sink["elasticsearch"] else {
        unreachable!()
    };
    assert_eq!(
        (
            es.options.action,
            es.options.deterministic_ids,
            es.options.timestamp_field.as_str(),
            es.options.message_field.as_str()
        ),
        (BulkAction::Create, true, "@timestamp", "message")
    );
}

#[test]
fn the_environment_sets_keys_of_sinks_and_adds_sinks() {
    let config = parse(
        "[sink.es-a]\ntype = \"elasticsearch\"\nurl = \"http://127.0.0.1:9200\"\n",
        &[
            ("S3LOGD_SINK_ES_A_INDEX", "from-env"),
            ("S3LOGD_SINK_ES_A_BATCH_MAX_RECORDS", "7"),
            ("S3LOGD_SINK_LOKI_URL", "http://127.0.0.1:3100"),
            ("S3LOGD_SINK_LOKI_TENANT_ID", "42"),
            ("S3LOGD_SINK_ARCHIVE_TYPE", "file"),
            ("S3LOGD_SINK_ARCHIVE_PATH", "/tmp/archive.ndjson"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.sink.keys().collect::<Vec<_>>(),
        ["archive", "es-a", "loki"]
    );
    let SinkConfig::Elasticsearch(es) = &config.sink["es-a"] else {
        unreachable!()
    };
    assert_eq!(
        (es.options.index.as_str(), es.batch.batch_max_records),
        ("from-env", 7)
    );
    let SinkConfig::Loki(loki) = &config.sink["loki"] else {
        unreachable!()
    };
    // A text key keeps "42" as text rather than reading a number.
    assert_eq!(loki.options.tenant_id.as_deref(), Some("42"));
    let SinkConfig::File(file) = &config.sink["archive"] else {
        unreachable!()
    };
    assert_eq!(
        file.options.path,
        std::path::Path::new("/tmp/archive.ndjson")
    );
}

#[test]
fn an_environment_variable_for_no_sink_is_reported() {
    let errors = parse(
        "[sink.file]\npath = \"-\"\n",
        &[("S3LOGD_SINK_NOWHERE_URL", "http://x")],
    )
    .unwrap_err();
    assert_eq!(errors[0].0, "sink");
    assert!(
        errors[0]
            .1
            .starts_with("S3LOGD_SINK_NOWHERE_URL names no sink"),
        "{errors:?}"
    );
}

#[test]
fn every_sink_is_validated_under_its_name() {
    let errors = parse(
        r#"
[sink.es]
type = "elasticsearch"
url = "http://127.0.0.1:9200"
aws_service = "s3"
api_key = "k"
compression = "zstd"
[sink.cloudwatch_logs]
max_record_bytes = 2000000
[sink.loki]
url = "ftp://x"
static_labels = { "bad-label" = "x" }
[sink.Bad_Name]
type = "file"
path = "-"
"#,
        &[],
    )
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sink.Bad_Name",
            "sink.cloudwatch_logs.log_group",
            "sink.cloudwatch_logs.max_record_bytes",
            "sink.es.compression",
            "sink.es.api_key",
            "sink.es.aws_service",
            "sink.loki.url",
            "sink.loki.static_labels",
        ],
        "{errors:?}"
    );
}

#[test]
fn routes_name_existing_sinks() {
    let errors = parse(
        "[sink.file]\npath = \"-\"\n[[routes]]\nkey_regex = 'WAF'\nsinks = [\"file\", \"missing\"]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [(
            "routes[0].sinks".to_owned(),
            "no sink named \"missing\"".to_owned()
        )]
    );
}

#[test]
fn secrets_of_every_store_are_masked() {
    let config = parse(
        r#"
[sink.elasticsearch]
url = "http://127.0.0.1:9200"
api_key = "es-api-key-secret"
headers = { "X-Api" = "header-secret" }
[sink.loki]
url = "http://127.0.0.1:3100"
username = "u"
password = "loki-password-secret"
"#,
        &[("S3LOGD_SINK_LOKI_BEARER_TOKEN", "")],
    );
    // Both credentials for Loki is a problem; its message names no secret.
    let errors = config.unwrap_err();
    assert!(!format!("{errors:?}").contains("secret"), "{errors:?}");
    let config = parse(
        r#"
[sink.elasticsearch]
url = "http://127.0.0.1:9200"
api_key = "es-api-key-secret"
headers = { "X-Api" = "header-secret" }
[sink.loki]
url = "http://127.0.0.1:3100"
username = "u"
password = "loki-password-secret"
"#,
        &[],
    )
    .unwrap();
    let printed = format!("{config:?}\n{}", toml::to_string(&config).unwrap());
    assert!(!printed.contains("secret"), "{printed}");
    assert_eq!(printed.matches("\"***\"").count(), 3, "{printed}");
}

#[test]
fn the_printed_configuration_reads_back() {
    let config = parse(
        r#"
[sink.es]
type = "elasticsearch"
url = "http://127.0.0.1:9200"
index = "waf-{account}-%Y.%m.%d"
[sink.cloudwatch_logs]
log_group = "/aws/elb/{load_balancer}"
message = "raw"
"#,
        &[],
    )
    .unwrap();
    let printed = toml::to_string(&config).unwrap();
    let reread = Config::parse(&printed, Vec::new()).unwrap();
    assert_eq!(reread, config);
}
