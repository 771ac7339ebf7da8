//! The dead-letter output: records a store refused for good, each with the
//! sink, bucket, key and line it came from and the store's reason, and
//! lines no record came from, each with the parser, bucket, key, line
//! number and why, as JSON lines in a file or in S3 objects. A record or a
//! line counts as accounted for (and its message may be deleted) only once
//! the write returned: fsync'd for a file, uploaded for S3.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::delivery::Origin;
use super::file::Appender;
use super::json::{write_rfc3339, write_str};
use super::now_nanos;
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

/// One line no record came from: a line error or a line over the line limit.
#[derive(Debug, Clone, Copy)]
pub struct LineLetter<'a> {
    pub parser: &'a str,
    pub origin: &'a Origin,
    pub line: u64,
    pub reason: &'a str,
    /// As much of the line as is kept (`dead_letter.max_line_bytes`).
    pub text: &'a str,
}

/// Letters encoded as JSON lines as they come, for one write:
/// `{"time":…,"sink":…,"bucket":…,"key":…,"line":…,"reason":…,"record":…}`
/// for a record (its bytes as UTF-8, invalid bytes replaced),
/// `{"time":…,"parser":…,"bucket":…,"key":…,"line":…,"reason":…,"text":…}`
/// for a line.
pub struct Letters {
    /// Names the S3 object they are written to.
    label: String,
    /// Of every letter: when they were gathered, RFC 3339.
    time: Vec<u8>,
    encoded: Vec<u8>,
}

impl Letters {
    /// `label` (the sink's name, or `lines`) names the S3 object they go to.
    pub fn new(label: &str) -> Letters {
        Letters::at(label, now_nanos())
    }

    fn at(label: &str, now: i64) -> Letters {
        let mut time = Vec::new();
        write_rfc3339(&mut time, now);
        Letters {
            label: label.to_owned(),
            time,
            encoded: Vec::new(),
        }
    }

    pub fn push_record(&mut self, letter: &Letter<'_>) {
        let record = String::from_utf8_lossy(letter.record);
        self.push(
            ("sink", letter.sink),
            letter.origin,
            letter.line,
            letter.reason,
            ("record", record.trim_end_matches('\n')),
        );
    }

    pub fn push_line(&mut self, letter: &LineLetter<'_>) {
        self.push(
            ("parser", letter.parser),
            letter.origin,
            letter.line,
            letter.reason,
            ("text", letter.text),
        );
    }

    pub fn encoded_bytes(&self) -> usize {
        self.encoded.len()
    }

    fn push(
        &mut self,
        (from_key, from): (&str, &str),
        origin: &Origin,
        line: u64,
        reason: &str,
        (content_key, content): (&str, &str),
    ) {
        let out = &mut self.encoded;
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(&self.time);
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(from_key.as_bytes());
        out.extend_from_slice(b"\":");
        write_str(out, from);
        out.extend_from_slice(b",\"bucket\":");
        write_str(out, &origin.bucket);
        out.extend_from_slice(b",\"key\":");
        write_str(out, &origin.key);
        out.extend_from_slice(b",\"line\":");
        out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        out.extend_from_slice(b",\"reason\":");
        write_str(out, reason);
        out.extend_from_slice(b",\"");
        out.extend_from_slice(content_key.as_bytes());
        out.extend_from_slice(b"\":");
        write_str(out, content);
        out.extend_from_slice(b"}\n");
    }
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

    /// Writes refused records (at least one, all of one sink); `Err` says
    /// why they are not safely stored.
    pub async fn write(&self, letters: &[Letter<'_>]) -> Result<(), String> {
        let mut encoded = Letters::new(letters[0].sink);
        for letter in letters {
            encoded.push_record(letter);
        }
        self.write_letters(encoded).await
    }

    /// Writes `letters`; `Err` says why they are not safely stored.
    pub async fn write_letters(&self, letters: Letters) -> Result<(), String> {
        match &*self.destination {
            Destination::File(appender) => appender
                .append(vec![Bytes::from(letters.encoded)])
                .await
                .map_err(|error| format!("{}: {error}", appender.path().display())),
            Destination::S3 { client, location } => {
                let key = object_key(location, &letters.label, now_nanos());
                let body = gzip(&letters.encoded);
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

/// `<prefix>YYYY/MM/DD/<time>-<label>-<random>.ndjson.gz`: sorted by time,
/// unique across processes.
fn object_key(location: &S3Location, label: &str, now: i64) -> String {
    let mut time = Vec::new();
    write_rfc3339(&mut time, now);
    let time = String::from_utf8(time).expect("RFC 3339 is ASCII");
    let day = time[..10].replace('-', "/");
    format!(
        "{}{day}/{time}-{label}-{:016x}.ndjson.gz",
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
        let mut encoded = Letters::at("es", 1_000_000_000);
        for letter in &letters {
            encoded.push_record(letter);
        }
        encoded.push_line(&LineLetter {
            parser: "alb",
            origin: &origin,
            line: 3,
            reason: "1 fields; expected at least 15",
            text: "garbage \"quoted\"",
        });
        let text = String::from_utf8(encoded.encoded).unwrap();
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
        assert_eq!(
            lines[2],
            serde_json::json!({
                "time": "1970-01-01T00:00:01Z",
                "parser": "alb",
                "bucket": "logs",
                "key": "AWSLogs/x.log.gz",
                "line": 3,
                "reason": "1 fields; expected at least 15",
                "text": "garbage \"quoted\"",
            })
        );
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
