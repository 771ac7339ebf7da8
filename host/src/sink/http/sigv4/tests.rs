use std::time::{Duration, UNIX_EPOCH};

use reqwest::header::CONTENT_TYPE;

use super::*;
use crate::config::Compression;

const SCRIPT: &str = r#"
import datetime, json, sys
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

given = json.load(sys.stdin)
now = datetime.datetime.fromtimestamp(given["time"], datetime.timezone.utc)
botocore.auth.get_current_datetime = lambda: now
request = AWSRequest(method="POST", url=given["url"], data=given["body"].encode(), headers=given["headers"])
credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", given.get("token"))
botocore.auth.SigV4Auth(credentials, given["service"], given["region"]).add_auth(request)
print(request.headers["Authorization"])
"#;

fn signer(token: Option<&str>) -> Signer {
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token.map(str::to_owned),
        None,
        "tests",
    );
    Signer::new(
        "es",
        "eu-west-1",
        SharedCredentialsProvider::new(credentials),
    )
}

/// The `Authorization` botocore computes for the same request.
fn botocore_authorization(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    time: u64,
    token: Option<&str>,
) -> String {
    let given = serde_json::json!({
        "url": url,
        "headers": headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        "body": body,
        "time": time,
        "service": "es",
        "region": "eu-west-1",
        "token": token,
    });
    let mut child = std::process::Command::new(s3logd_test_support::moto::botocore_python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(given.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "botocore failed");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn check_against_botocore(token: Option<&str>) {
    let url = Url::parse(
        // Encoded strictly, as the sinks send their query strings: botocore
        // signs a query as it is given, aws-sigv4 (and AWS) encode it first.
        "https://search-logs.eu-west-1.es.amazonaws.com/proxy/_bulk?filter_path=errors%2Citems.%2A.status",
    )
    .unwrap();
    let body_text = "{\"create\":{\"_index\":\"alb-2024.03.01\"}}\n{\"message\":\"a b\"}\n";
    let body = Body::of_bytes(body_text.as_bytes().to_vec(), Compression::None).await;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    let time = 1_709_294_400;
    let signed = signer(token)
        .sign(
            &url,
            &headers,
            &body,
            UNIX_EPOCH + Duration::from_secs(time),
        )
        .await
        .unwrap();
    let header = |name: &str| signed[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-amz-date"), "20240301T120000Z");
    let mut given = vec![
        ("Content-Type", "application/x-ndjson".to_owned()),
        ("X-Amz-Content-SHA256", header("x-amz-content-sha256")),
    ];
    if let Some(token) = token {
        assert_eq!(signed["x-amz-security-token"], token);
    }
    given.retain(|(_, value)| !value.is_empty());
    let given: Vec<(&str, &str)> = given.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let expected = botocore_authorization(url.as_str(), &given, body_text, time, token);
    assert_eq!(header("authorization"), expected);
    assert!(signed["authorization"].is_sensitive());
}

#[tokio::test]
async fn signatures_match_botocore() {
    check_against_botocore(None).await;
}

#[tokio::test]
async fn signatures_with_a_session_token_match_botocore() {
    check_against_botocore(Some("session-token/with+chars=")).await;
}

#[tokio::test]
async fn the_payload_hash_covers_every_part_of_the_body() {
    let url = Url::parse("https://search.example/_bulk").unwrap();
    let whole = Body::of_bytes(b"first\nsecond\n".to_vec(), Compression::None).await;
    let time = UNIX_EPOCH + Duration::from_secs(1_709_294_400);
    let signed = signer(None)
        .sign(&url, &HeaderMap::new(), &whole, time)
        .await
        .unwrap();
    let expected = hex::encode(Sha256::digest(b"first\nsecond\n"));
    assert_eq!(signed["x-amz-content-sha256"], expected.as_str());
}
