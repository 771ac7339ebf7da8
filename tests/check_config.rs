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
