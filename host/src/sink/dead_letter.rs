//! The dead-letter output: records a store refused for good, each with the
//! sink, bucket, key and line it came from and the store's reason, as JSON
//! lines in a file or in S3 objects. A record counts as accounted for (and
//! its message may be deleted) only once the write returned: fsync'd for a
//! file, uploaded for S3.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::delivery::Origin;
use super::file::Appender;
use super::json::{write_rfc3339, write_str};
use crate::config::{FileOptions, S3Location};
use crate::errors::error_chain;

/// One refused record.
#[derive(Debug, Clone, Copy)]
pub struct Letter<'a> {
    pub sink: &'a str,
    pub origin: &'a Origin,
    pub line: u64,
    pub reason: &'a str,
    /// The record as encoded for the store.
    pub record: &'a [u8],
}

/// Where letters go; clones share it.
#[derive(Clone)]
pub struct DeadLetter {
    destination: Arc<Destination>,
}

enum Destination {
    File(Appender),
    S3 {
        client: aws_sdk_s3::Client,
        location: S3Location,
    },
}

impl DeadLetter {
    /// Appends to `path`, fsync'd before a write returns.
    pub fn file(path: &Path) -> DeadLetter {
        let options = FileOptions {
            path: path.to_owned(),
            fsync: true,
            ..FileOptions::default()
        };
        DeadLetter {
            destination: Arc::new(Destination::File(Appender::new(&options))),
        }
    }

    /// One gzipped JSON-lines object per write under `location`.
    pub fn s3(client: aws_sdk_s3::Client, location: S3Location) -> DeadLetter {
        DeadLetter {
            destination: Arc::new(Destination::S3 { client, location }),
        }
    }

    /// Writes `letters`; `Err` says why they are not safely stored.
    pub async fn write(&self, letters: &[Letter<'_>]) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64);
        let lines = encode(letters, now);
        match &*self.destination {
            Destination::File(appender) => appender
                .append(vec![Bytes::from(lines)])
                .await
                .map_err(|error| format!("{}: {error}", appender.path().display())),
            Destination::S3 { client, location } => {
                let key = object_key(location, letters[0].sink, now);
                let body = gzip(&lines);
                client
                    .put_object()
                    .bucket(&location.bucket)
                    .key(&key)
                    .content_type("application/x-ndjson")
                    .content_encoding("gzip")
                    .body(body.into())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|error| {
                        format!("s3://{}/{key}: {}", location.bucket, error_chain(&error))
                    })
            }
        }
    }
}

/// `{"time":…,"sink":…,"bucket":…,"key":…,"line":…,"reason":…,"record":…}`
/// per letter; the record is a string (its bytes as UTF-8, invalid bytes
/// replaced).
fn encode(letters: &[Letter<'_>], now: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut time = Vec::new();
    write_rfc3339(&mut time, now);
    for letter in letters {
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(&time);
        out.extend_from_slice(b"\",\"sink\":");
        write_str(&mut out, letter.sink);
        out.extend_from_slice(b",\"bucket\":");
        write_str(&mut out, &letter.origin.bucket);
        out.extend_from_slice(b",\"key\":");
        write_str(&mut out, &letter.origin.key);
        out.extend_from_slice(b",\"line\":");
        out.extend_from_slice(itoa::Buffer::new().format(letter.line).as_bytes());
        out.extend_from_slice(b",\"reason\":");
        write_str(&mut out, letter.reason);
        out.extend_from_slice(b",\"record\":");
        let record = String::from_utf8_lossy(letter.record);
        write_str(&mut out, record.trim_end_matches('\n'));
        out.extend_from_slice(b"}\n");
    }
    out
}

/// `<prefix>YYYY/MM/DD/<time>-<sink>-<random>.ndjson.gz`: sorted by time,
/// unique across processes.
fn object_key(location: &S3Location, sink: &str, now: i64) -> String {
    let mut time = Vec::new();
    write_rfc3339(&mut time, now);
    let time = String::from_utf8(time).expect("RFC 3339 is ASCII");
    let day = time[..10].replace('-', "/");
    format!(
        "{}{day}/{time}-{sink}-{:016x}.ndjson.gz",
        location.prefix,
        fastrand::u64(..)
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_json_lines_with_where_and_why() {
        let origin = Origin {
            bucket: "logs".into(),
            key: "AWSLogs/x.log.gz".into(),
            version: "v1".into(),
        };
        let letters = [
            Letter {
                sink: "es",
                origin: &origin,
                line: 17,
                reason: "mapper_parsing_exception: \"status\"",
                record: b"{\"create\":{}}\n{\"status\":\"x\"}\n",
            },
            Letter {
                sink: "es",
                origin: &origin,
                line: 18,
                reason: "bad",
                record: b"\xff\n",
            },
        ];
        let text = String::from_utf8(encode(&letters, 1_000_000_000)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({
                "time": "1970-01-01T00:00:01Z",
                "sink": "es",
                "bucket": "logs",
                "key": "AWSLogs/x.log.gz",
                "line": 17,
                "reason": "mapper_parsing_exception: \"status\"",
                "record": "{\"create\":{}}\n{\"status\":\"x\"}",
            })
        );
        assert_eq!(lines[1]["record"], "\u{fffd}");
    }

    #[tokio::test]
    async fn a_file_receives_every_letter_and_a_failing_file_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let dead_letter = DeadLetter::file(&path);
        let origin = Origin::default();
        let letter = Letter {
            sink: "vl",
            origin: &origin,
            line: 1,
            reason: "too long",
            record: b"{}\n",
        };
        dead_letter.write(&[letter]).await.unwrap();
        dead_letter.write(&[letter, letter]).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);

        let unwritable = DeadLetter::file(&dir.path().join("missing-dir/dead.ndjson"));
        let error = unwritable.write(&[letter]).await.unwrap_err();
        assert!(error.contains("missing-dir/dead.ndjson"), "{error}");
    }

    #[test]
    fn s3_keys_sort_by_time_under_the_prefix() {
        let location = S3Location::parse("s3://dlq/s3logd/").unwrap();
        let key = object_key(&location, "es", 86_400 * 1_000_000_000 + 5);
        assert!(
            key.starts_with("s3logd/1970/01/02/1970-01-02T00:00:00.000000005Z-es-"),
            "{key}"
        );
        assert!(key.ends_with(".ndjson.gz"));
    }
}
