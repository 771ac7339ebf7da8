//! `[sink.<name>]` of `type = "s3_archive"`: records as gzip JSON-lines
//! objects in S3, named as s3logger names them, spooled on local disk
//! until uploaded.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{BatchConfig, MIB, sections};
use crate::config::validate::Problems;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct S3ArchiveConfig {
    pub batch: BatchConfig,
    pub options: S3ArchiveOptions,
}

sections!(S3ArchiveConfig {
    batch: BatchConfig,
    options: S3ArchiveOptions,
});

/// The least `rotate_secs`, as s3logger's `-t` (min 1m).
pub const MIN_ROTATE_SECS: u64 = 60;
/// S3's least multipart part (all but the last).
pub const MIN_PART_BYTES: u64 = 5 * MIB;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct S3ArchiveOptions {
    /// The bucket objects are uploaded to (required).
    pub bucket: String,
    /// Prepended to every key, a `/` added when it lacks one.
    pub prefix: String,
    /// Region of the bucket; `aws.region` (or the default chain) when absent.
    pub region: Option<String>,
    /// Where files are written and kept until uploaded (required); one
    /// directory per sink.
    pub spool_dir: PathBuf,
    /// A file is finished (and uploaded) once this old.
    pub rotate_secs: u64,
    /// ... or once it holds this many bytes of JSON lines, before
    /// compression [0: by time only].
    pub rotate_bytes: u64,
    /// Uploads at once.
    pub upload_concurrency: u32,
    /// Files larger than this are uploaded in parts of this size.
    pub multipart_part_bytes: u64,
    /// `x-amz-storage-class` [the bucket's default, STANDARD].
    pub storage_class: Option<String>,
    /// `AES256`, `aws:kms` or `aws:kms:dsse` [the bucket's default].
    pub server_side_encryption: Option<String>,
    /// The KMS key of `aws:kms` [the account's AWS managed key].
    pub sse_kms_key_id: Option<String>,
    /// Sends `Content-Encoding: gzip`. Off: the object is a `.gz` file, and
    /// with it HTTP clients unpack it on download.
    pub content_encoding_gzip: bool,
}

impl Default for S3ArchiveOptions {
    fn default() -> Self {
        S3ArchiveOptions {
            bucket: String::new(),
            prefix: String::new(),
            region: None,
            spool_dir: PathBuf::new(),
            rotate_secs: 300,
            rotate_bytes: 512 * MIB,
            upload_concurrency: 4,
            multipart_part_bytes: 16 * MIB,
            storage_class: None,
            server_side_encryption: None,
            sse_kms_key_id: None,
            content_encoding_gzip: false,
        }
    }
}

/// The values `server_side_encryption` takes.
pub const SERVER_SIDE_ENCRYPTION: [&str; 3] = ["AES256", "aws:kms", "aws:kms:dsse"];

impl S3ArchiveConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        self.batch.check(path, problems);
        let options = &self.options;
        let bucket = &options.bucket;
        if bucket.is_empty() {
            problems.add(&format!("{path}.bucket"), "required");
        } else if bucket.contains('/') || bucket.contains(':') {
            problems.add(
                &format!("{path}.bucket"),
                "a bucket name (no `s3://`, no `/`; the path goes in `prefix`)",
            );
        }
        if options.prefix.starts_with('/') {
            problems.add(&format!("{path}.prefix"), "must not start with `/`");
        }
        if options.spool_dir.as_os_str().is_empty() {
            problems.add(&format!("{path}.spool_dir"), "required");
        }
        problems.in_range(
            &format!("{path}.rotate_secs"),
            options.rotate_secs,
            MIN_ROTATE_SECS..=86_400,
        );
        if options.rotate_bytes != 0 {
            problems.in_range(
                &format!("{path}.rotate_bytes"),
                options.rotate_bytes,
                MIB..=1 << 40,
            );
        }
        problems.in_range(
            &format!("{path}.upload_concurrency"),
            options.upload_concurrency,
            1..=64,
        );
        problems.in_range(
            &format!("{path}.multipart_part_bytes"),
            options.multipart_part_bytes,
            MIN_PART_BYTES..=5 << 30,
        );
        if let Some(class) = &options.storage_class {
            let known = aws_sdk_s3::types::StorageClass::values();
            if !known.contains(&class.as_str()) {
                problems.add(
                    &format!("{path}.storage_class"),
                    format_args!("{class:?} is no S3 storage class ({})", known.join(", ")),
                );
            }
        }
        match options.server_side_encryption.as_deref() {
            None => {}
            Some(sse) if SERVER_SIDE_ENCRYPTION.contains(&sse) => {}
            Some(sse) => problems.add(
                &format!("{path}.server_side_encryption"),
                format_args!("{sse:?} is none of {}", SERVER_SIDE_ENCRYPTION.join(", ")),
            ),
        }
        if options.sse_kms_key_id.is_some()
            && !options
                .server_side_encryption
                .as_deref()
                .is_some_and(|sse| sse.starts_with("aws:kms"))
        {
            problems.add(
                &format!("{path}.sse_kms_key_id"),
                "needs server_side_encryption = \"aws:kms\" (or \"aws:kms:dsse\")",
            );
        }
    }
}
