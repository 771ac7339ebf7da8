//! The S3 archive sink: what s3logger did, as a sink. Records become gzip
//! JSON-lines objects in S3 (each record the line the `file` sink writes,
//! [`JsonLines`]), named as s3logger names them,
//! `<prefix>dt=YYYY-MM-DD/YYYYMMDDTHHMMSS_<16 hex>.json.gz` (the UTC time
//! of the file's creation and a random 64-bit value, see [`naming`]), which
//! the bundled `ndjson` parser reads back.
//!
//! Records are written to a spool directory first ([`spool`]): one file at a
//! time, each batch appended as a gzip member of its own, so that a file is
//! valid multi-member gzip up to its last complete batch. A file is finished
//! once `rotate_secs` old or `rotate_bytes` of JSON lines large, and
//! uploaded in the background ([`upload`]; multipart above
//! `multipart_part_bytes`); it is removed only once its upload succeeded,
//! and uploads are retried with backoff for as long as it takes.
//!
//! **Acknowledgement**: a batch counts as stored ([`Answer::Stored`]) once
//! its member is written and fsync'd in the spool, not once it is in S3.
//! The spool is durable, and whatever it holds is uploaded sooner or later
//! (across restarts), so waiting for S3 would only hold messages in flight
//! for up to `rotate_secs` and tie the collector's pace to S3's. A write
//! that fails (a full disk) is retried like any store's outage, the
//! torn member cut off first.
//!
//! **Crash recovery**: the file being written is `<name>.json.gz.part` and
//! renamed to `<name>.json.gz` when finished. At start, a `.part` a crash
//! left is cut back to its last complete member (a batch whose write was
//! torn was never acknowledged, so its records come again) and finished;
//! every finished file is then uploaded. An object's key follows from its
//! file's name alone: a file uploaded twice (a crash between the upload and
//! the removal) overwrites the same object. A lock file keeps two sinks or
//! processes off one spool directory.

pub mod naming;
pub mod spool;
pub mod upload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};
use tokio::sync::mpsc;

use super::Context;
use super::delivery::{Answer, Records, Store};
use super::json::JsonLines;
use crate::config::S3ArchiveConfig;
use crate::metrics::ArchiveCounters;
use spool::Spool;
use upload::{ObjectSettings, Uploader};

/// How often the file being written is checked for its age.
const ROTATION_CHECK: Duration = Duration::from_secs(1);

/// The archive's own counters, beside the delivery's [`super::delivery::SinkStats`].
#[derive(Debug, Default)]
pub struct ArchiveStats {
    /// Bytes in the spool: finished files and the one being written.
    pub spool_bytes: AtomicU64,
    pub spool_files: AtomicU64,
    /// Files uploaded (and removed from the spool).
    pub uploads: AtomicU64,
    /// Upload attempts that failed (and are tried again).
    pub upload_failures: AtomicU64,
}

impl ArchiveStats {
    pub fn counters(&self) -> ArchiveCounters {
        ArchiveCounters {
            spool_bytes: self.spool_bytes.load(Relaxed),
            spool_files: self.spool_files.load(Relaxed),
            uploads: self.uploads.load(Relaxed),
            upload_failures: self.upload_failures.load(Relaxed),
        }
    }
}

/// The sink's store: appends each batch to the spool.
pub struct S3Archive {
    spool: Arc<Spool>,
}

impl Store for S3Archive {
    async fn send(&self, records: &Records) -> Answer {
        let parts = records.concatenated();
        let spool = self.spool.clone();
        let written = tokio::task::spawn_blocking(move || {
            let member = spool::compress(&parts)?;
            spool.append(&member)
        })
        .await
        .expect("spooling does not panic");
        match written {
            Ok(()) => Answer::Stored,
            Err(error) => Answer::Retry {
                reason: format!("spool {}: {error}", self.spool.dir().display()),
                retry_after: None,
            },
        }
    }
}

/// The store of `[sink.<name>]` at `path` and its counters; starts the
/// uploader and the rotation timer on the current runtime. Fails when the
/// spool directory cannot be opened (or another sink holds it).
pub fn build(
    name: &str,
    config: &S3ArchiveConfig,
    path: &str,
    context: &Context,
) -> anyhow::Result<(S3Archive, JsonLines, Arc<ArchiveStats>)> {
    let options = &config.options;
    let stats = Arc::new(ArchiveStats::default());
    let (wake, woken) = mpsc::channel(1);
    let spool = Spool::open(
        &options.spool_dir,
        options.rotate_bytes,
        Duration::from_secs(options.rotate_secs),
        stats.clone(),
        wake,
    )
    .map_err(|error| {
        anyhow::anyhow!("{path}.spool_dir: {}: {error}", options.spool_dir.display())
    })?;
    let spool = Arc::new(spool);

    // Retrying is the uploader's, with its own backoff.
    let timeouts = super::aws_attempt_timeouts(&context.aws, Duration::from_secs(600));
    let mut builder = aws_sdk_s3::config::Builder::from(&context.aws)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        // S3-compatible stores (and moto) behind an endpoint override
        // expect path-style addressing, as `run`'s own S3 client does.
        .force_path_style(context.aws.endpoint_url().is_some());
    if let Some(region) = &options.region {
        builder = builder.region(Region::new(region.clone()));
    }
    let uploader = Uploader {
        client: Client::from_conf(builder.build()),
        bucket: options.bucket.clone(),
        key_prefix: naming::key_prefix(&options.prefix),
        dir: options.spool_dir.clone(),
        concurrency: options.upload_concurrency.max(1) as usize,
        part_bytes: options.multipart_part_bytes.max(1),
        object: ObjectSettings {
            storage_class: options.storage_class.as_deref().map(StorageClass::from),
            server_side_encryption: options
                .server_side_encryption
                .as_deref()
                .map(ServerSideEncryption::from),
            sse_kms_key_id: options.sse_kms_key_id.clone(),
            content_encoding_gzip: options.content_encoding_gzip,
        },
        stats: stats.clone(),
        sink: name.to_owned(),
    };
    tokio::spawn(uploader.run(woken, context.cancel.clone()));
    tokio::spawn(rotate_by_age(Arc::downgrade(&spool)));
    Ok((S3Archive { spool }, JsonLines, stats))
}

/// Finishes the file being written once it is old enough, also when no
/// record comes; ends with the spool.
async fn rotate_by_age(spool: std::sync::Weak<Spool>) {
    let mut ticks = tokio::time::interval(ROTATION_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(spool) = spool.upgrade() else {
            return;
        };
        let rotated = tokio::task::spawn_blocking(move || {
            let result = spool.rotate_if_due();
            (result, spool.dir().to_owned())
        })
        .await;
        if let Ok((Err(error), dir)) = rotated {
            tracing::warn!(spool = %dir.display(), %error, "cannot finish the spool's current file");
        }
    }
}

#[cfg(test)]
mod tests;
