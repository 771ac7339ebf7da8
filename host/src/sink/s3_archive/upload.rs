//! Uploading finished spool files, in the background: each round lists
//! the spool's finished files (oldest first, crash leftovers among them),
//! uploads up to `upload_concurrency` at once, and removes a file only
//! once S3 answered its upload with success. A round with failures is
//! followed by another after a backoff (1 s doubling to a minute), forever:
//! the records are durable in the spool, and S3 coming back is all it
//! takes. Files larger than a part go up as multipart uploads, read from
//! disk a part at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ArchiveStats;
use super::naming;
use super::spool::finished_files;
use crate::errors::error_chain;

/// S3's most parts of one multipart upload.
const MAX_PARTS: u64 = 10_000;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What an upload sends besides the bytes.
#[derive(Clone, Default)]
pub struct ObjectSettings {
    pub storage_class: Option<StorageClass>,
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub sse_kms_key_id: Option<String>,
    pub content_encoding_gzip: bool,
}

pub struct Uploader {
    pub client: Client,
    pub bucket: String,
    /// As [`naming::key_prefix`] makes it.
    pub key_prefix: String,
    pub dir: PathBuf,
    pub concurrency: usize,
    pub part_bytes: u64,
    pub object: ObjectSettings,
    pub stats: Arc<ArchiveStats>,
    /// The sink's name, in logs.
    pub sink: String,
}

impl Uploader {
    /// Uploads what the spool holds, then again whenever `finished` is
    /// woken, until it is closed (one last round then) or `cancel` fires.
    pub async fn run(self, mut finished: mpsc::Receiver<()>, cancel: CancellationToken) {
        let uploader = Arc::new(self);
        let mut backoff = FIRST_BACKOFF;
        let mut open = true;
        loop {
            let complete = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                complete = uploader.clone().round() => complete,
            };
            if complete {
                backoff = FIRST_BACKOFF;
                if !open {
                    return;
                }
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    woken = finished.recv() => open = woken.is_some(),
                }
            } else {
                if !open {
                    // The sink stopped: what is left waits for the next start.
                    return;
                }
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Uploads every finished file; whether all went up.
    async fn round(self: Arc<Self>) -> bool {
        let files = match finished_files(&self.dir) {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(sink = self.sink, spool = %self.dir.display(), %error, "cannot list the spool");
                return false;
            }
        };
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut uploads = JoinSet::new();
        for (name, len) in files {
            let slot = slots.clone().acquire_owned().await.expect("never closed");
            let uploader = self.clone();
            uploads.spawn(async move {
                let _slot = slot;
                uploader.upload_and_remove(&name, len).await
            });
        }
        let mut complete = true;
        while let Some(done) = uploads.join_next().await {
            complete &= done.unwrap_or(false);
        }
        complete
    }

    async fn upload_and_remove(&self, name: &str, len: u64) -> bool {
        let key = naming::object_key(&self.key_prefix, name).expect("a finished file's name");
        if let Err(reason) = self.upload(name, &key, len).await {
            self.stats.upload_failures.fetch_add(1, Relaxed);
            tracing::warn!(
                sink = self.sink,
                bucket = self.bucket,
                key,
                reason,
                "upload failed; the file stays in the spool and is tried again"
            );
            return false;
        }
        self.stats.uploads.fetch_add(1, Relaxed);
        tracing::debug!(
            sink = self.sink,
            bucket = self.bucket,
            key,
            bytes = len,
            "uploaded"
        );
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => {
                self.stats.spool_files.fetch_sub(1, Relaxed);
                self.stats.spool_bytes.fetch_sub(len, Relaxed);
                true
            }
            Err(error) => {
                // Uploaded again next round, to the same key.
                tracing::warn!(sink = self.sink, file = name, %error, "cannot remove an uploaded file");
                false
            }
        }
    }

    /// Uploads the spool file `name` to `key`.
    async fn upload(&self, name: &str, key: &str, len: u64) -> Result<(), String> {
        let path = self.dir.join(name);
        let part_bytes = self.part_bytes.max(len.div_ceil(MAX_PARTS));
        if len <= part_bytes {
            let body = ByteStream::read_from()
                .path(&path)
                .build()
                .await
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let object = &self.object;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .content_type(content_type(object))
                .set_content_encoding(content_encoding(object))
                .set_storage_class(object.storage_class.clone())
                .set_server_side_encryption(object.server_side_encryption.clone())
                .set_ssekms_key_id(object.sse_kms_key_id.clone())
                .send()
                .await
                .map_err(|error| error_chain(&error))?;
            return Ok(());
        }
        self.upload_in_parts(&path, key, len, part_bytes).await
    }

    async fn upload_in_parts(
        &self,
        path: &std::path::Path,
        key: &str,
        len: u64,
        part_bytes: u64,
    ) -> Result<(), String> {
        let object = &self.object;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type(object))
            .set_content_encoding(content_encoding(object))
            .set_storage_class(object.storage_class.clone())
            .set_server_side_encryption(object.server_side_encryption.clone())
            .set_ssekms_key_id(object.sse_kms_key_id.clone())
            .send()
            .await
            .map_err(|error| error_chain(&error))?;
        let upload_id = created
            .upload_id()
            .ok_or("CreateMultipartUpload answered no upload id")?
            .to_owned();
        let result = self
            .send_parts(path, key, &upload_id, len, part_bytes)
            .await;
        if result.is_err() {
            // Best effort: a lifecycle rule for incomplete uploads is the
            // backstop.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn send_parts(
        &self,
        path: &std::path::Path,
        key: &str,
        upload_id: &str,
        len: u64,
        part_bytes: u64,
    ) -> Result<(), String> {
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < len {
            let size = part_bytes.min(len - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(size))
                .build()
                .await
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let sent = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(size as i64)
                .body(body)
                .send()
                .await
                .map_err(|error| format!("part {number}: {}", error_chain(&error)))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(sent.e_tag().map(str::to_owned))
                    .part_number(number)
                    .build(),
            );
            offset += size;
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| error_chain(&error))?;
        Ok(())
    }
}

/// Gzip JSON lines; with `Content-Encoding: gzip`, the JSON lines are the
/// content and gzip its encoding.
fn content_type(object: &ObjectSettings) -> &'static str {
    if object.content_encoding_gzip {
        "application/x-ndjson"
    } else {
        "application/gzip"
    }
}

fn content_encoding(object: &ObjectSettings) -> Option<String> {
    object.content_encoding_gzip.then(|| "gzip".to_owned())
}
