//! `s3logd check-config FILE` as an operator runs it: the documented example
//! passes, and a broken file is refused with every problem named by its key
//! path and no secret echoed back.

use std::path::Path;
use std::process::{Command, Output};

fn check_config(path: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_s3logd"));
    command.arg("check-config").arg(path);
    // Overrides from the developer's environment would change the verdict.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("S3LOGD_") {
            command.env_remove(name);
        }
    }
    command.output().expect("cannot run s3logd check-config")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("cannot create a temporary file");
    std::fs::write(file.path(), text).expect("cannot write the config");
    file
}

#[test]
fn accepts_the_example_configuration() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3logd.example.toml");
    let output = check_config(&example);
    let text = printed(&output);
    assert!(output.status.success(), "example refused:\n{text}");
    // The example's queue shows up in the effective configuration, its
    // password does not.
    assert!(
        text.contains("https://sqs.eu-west-1.amazonaws.com/123456789012/s3logd"),
        "{text}"
    );
    assert!(!text.contains("change-me"), "password printed:\n{text}");
}

#[test]
fn refuses_invalid_values_naming_each_key_path() {
    let broken = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
visibility_timeout_secs = 60
heartbeat_interval_secs = 90

[sink.victorialogs]
url = "ftp://victorialogs:9428"
password = "hunter2-secret"
"#,
    );
    let output = check_config(broken.path());
    let text = printed(&output);
    assert!(!output.status.success(), "broken file accepted:\n{text}");
    for path in [
        "queue.heartbeat_interval_secs",
        "sink.victorialogs.url",
        "sink.victorialogs.username",
    ] {
        assert!(text.contains(path), "{path} not named in:\n{text}");
    }
    assert!(!text.contains("hunter2-secret"), "secret printed:\n{text}");
}

#[test]
fn refuses_unknown_keys_and_wrong_types_naming_the_key_path() {
    let broken = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
concurency = 4

[sink.victorialogs]
url = "http://127.0.0.1:9428"
"#,
    );
    let output = check_config(broken.path());
    let text = printed(&output);
    assert!(!output.status.success(), "unknown key accepted:\n{text}");
    assert!(text.contains("queue.concurency"), "{text}");

    let mistyped = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
concurrency = "four"

[sink.victorialogs]
url = "http://127.0.0.1:9428"
"#,
    );
    let output = check_config(mistyped.path());
    let text = printed(&output);
    assert!(!output.status.success(), "mistyped value accepted:\n{text}");
    assert!(text.contains("queue.concurrency"), "{text}");
}

#[test]
fn prints_neither_header_values_nor_credentials_in_a_url() {
    let config = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"

[sink.victorialogs]
url = "http://user:pa55@host:9428"
headers = { Authorization = "ApiKey s3cr3t" }
"#,
    );
    let output = check_config(config.path());
    let text = printed(&output);
    assert!(output.status.success(), "refused:\n{text}");
    assert!(text.contains("host:9428"), "the URL is shown:\n{text}");
    for secret in ["s3cr3t", "pa55", "user:"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

#[test]
fn a_refused_url_is_named_without_its_credentials() {
    for url in [
        "ftp://user:pa55@host:9428",
        "http://user:pa55@ho st:9428",
        "user:pa55@host:9428",
    ] {
        let config = write_config(&format!(
            r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"

[sink.victorialogs]
url = "{url}"
"#
        ));
        let output = check_config(config.path());
        let text = printed(&output);
        assert!(!output.status.success(), "{url} accepted:\n{text}");
        assert!(text.contains("sink.victorialogs.url"), "{text}");
        assert!(!text.contains("pa55"), "password printed:\n{text}");
    }
}

#[test]
fn refuses_settings_that_would_hang_or_crash_the_collector() {
    let config = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
concurrency = 100000

[objects]
max_line_bytes = 9223372036854775807

[sink.victorialogs]
url = "http://127.0.0.1:9428"
"#,
    );
    let output = check_config(config.path());
    let text = printed(&output);
    assert!(!output.status.success(), "accepted:\n{text}");
    for key in ["queue.concurrency", "objects.max_line_bytes"] {
        assert!(
            text.contains(&format!("{key}: ")),
            "{key} not named:\n{text}"
        );
    }
}

#[test]
fn refuses_a_line_limit_the_in_flight_budget_cannot_hold() {
    let config = write_config(
        r#"
[queue]
url = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"

[objects]
max_line_bytes = 134217728

[sink.victorialogs]
url = "http://127.0.0.1:9428"
"#,
    );
    let output = check_config(config.path());
    let text = printed(&output);
    assert!(!output.status.success(), "accepted:\n{text}");
    assert!(
        text.contains("objects.max_line_bytes: ") && text.contains("objects.in_flight_bytes"),
        "{text}"
    );
}
