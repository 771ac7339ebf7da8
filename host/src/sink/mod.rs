//! Delivering records to log stores: every `[sink.<name>]` of the
//! configuration started as a [`Sink`], records encoded per sink on the
//! parsing thread, and the machinery they share (`delivery`, `http`).
//!
//! Each store is a module of its own that supplies two things: an
//! [`Encoding`] (how one object's records become the store's bytes) and a
//! [`delivery::Store`] (how a batch of them is sent and what the answer
//! means). Everything else, batching, the buffer budget, retries,
//! dead letters and acknowledgement, is `delivery`'s.

pub mod cloudwatch_logs;
pub mod dead_letter;
pub mod delivery;
pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod json;
pub mod loki;
pub mod s3_archive;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
pub mod victorialogs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::parse::Record;
use dead_letter::{DeadLetter, Letters};
use delivery::{Encoded, Handle, Origin, SinkError};

/// What encoders know of an object.
pub struct ObjectContext<'a> {
    pub origin: &'a Arc<Origin>,
    /// Fields added to every record (bucket, key, fields from the key).
    pub fields: &'a [(String, String)],
}

/// How one store encodes records; one per sink, shared by all objects.
pub trait Encoding: Send + Sync {
    /// An encoder for the records of one object.
    fn encoder(&self, object: &ObjectContext<'_>) -> Box<dyn RecordEncoder>;
}

/// Encodes the records of one object, on the parsing thread.
pub trait RecordEncoder: Send {
    /// Appends `record`, the `index`-th (0-based) of its object, to `out`
    /// and ends it there ([`Encoded::end_record`]).
    fn encode(&mut self, record: &Record<'_>, index: u64, out: &mut Encoded);
}

/// A running sink.
pub struct Sink {
    pub name: String,
    pub handle: Handle,
    pub encoding: Arc<dyn Encoding>,
    /// The spool and uploads of an S3 archive sink.
    pub archive: Option<Arc<s3_archive::ArchiveStats>>,
}

/// What starting a sink takes besides its own settings.
pub struct Context {
    /// `enrich.stream_fields`: the record fields that name a stream, for
    /// stores that keep streams (VictoriaLogs, Loki labels).
    pub stream_fields: Vec<String>,
    /// Region and credentials for AWS stores and SigV4.
    pub aws: aws_config::SdkConfig,
    pub dead_letter: DeadLetter,
    /// Fires when deliveries are to be abandoned (the end of shutdown's
    /// grace period).
    pub cancel: CancellationToken,
}

/// Every configured sink, in name order, and the dead-letter output they
/// share.
pub struct Sinks {
    sinks: Vec<Sink>,
    dead_letter: DeadLetter,
    cancel: CancellationToken,
}

impl Sinks {
    /// Starts every sink on the current tokio runtime. Fails on settings
    /// the sink cannot use (a header, a CA file), naming the key.
    pub fn start(
        config: &BTreeMap<String, SinkConfig>,
        context: &Context,
    ) -> anyhow::Result<Sinks> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("sinks must start inside a tokio runtime"))?;
        let mut sinks = Vec::with_capacity(config.len());
        for (name, sink) in config {
            let path = format!("sink.{name}");
            let settings = delivery::Settings {
                name,
                batch: sink.batch(),
                dead_letter: context.dead_letter.clone(),
                cancel: context.cancel.clone(),
                runtime: runtime.clone(),
            };
            let mut archive = None;
            let (handle, encoding): (Handle, Arc<dyn Encoding>) = match sink {
                SinkConfig::VictoriaLogs(config) => {
                    let (store, encoding) = victorialogs::build(config, &path, context)?;
                    (delivery::start(store, settings), Arc::new(encoding))
                }
                SinkConfig::File(config) => (
                    delivery::start(file::FileStore::new(&config.options), settings),
                    Arc::new(json::JsonLines),
                ),
                SinkConfig::Elasticsearch(config) => {
                    let (store, encoding) = elasticsearch::build(config, &path, context)?;
                    (delivery::start(store, settings), Arc::new(encoding))
                }
                SinkConfig::Loki(config) => {
                    let (store, encoding) = loki::build(config, &path, context)?;
                    (delivery::start(store, settings), Arc::new(encoding))
                }
                SinkConfig::CloudWatchLogs(config) => {
                    let (store, encoding) = cloudwatch_logs::build(config, &path, context)?;
                    (delivery::start(store, settings), Arc::new(encoding))
                }
                SinkConfig::S3Archive(config) => {
                    let (store, encoding, stats) = s3_archive::build(name, config, &path, context)?;
                    archive = Some(stats);
                    (delivery::start(store, settings), Arc::new(encoding))
                }
            };
            sinks.push(Sink {
                name: name.clone(),
                handle,
                encoding,
                archive,
            });
        }
        Ok(Sinks {
            sinks,
            dead_letter: context.dead_letter.clone(),
            cancel: context.cancel.clone(),
        })
    }

    pub fn all(&self) -> &[Sink] {
        &self.sinks
    }

    /// The position of the sink called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.sinks.iter().position(|sink| sink.name == name)
    }

    /// Writes letters of lines that gave no record to the dead-letter
    /// output; resolves like a sink's delivery, `Cancelled` once
    /// deliveries are abandoned.
    pub async fn dead_letter_lines(&self, letters: Letters) -> Result<(), SinkError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(SinkError::Cancelled),
            written = self.dead_letter.write_letters(letters) => {
                written.map_err(|reason| SinkError::DeadLetterLines { reason })
            }
        }
    }
}

/// Now, in UTC nanoseconds: the time of records that have none, where a
/// store needs one.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

/// The timeouts of an AWS SDK client whose retrying is the sink's own: what
/// the shared AWS configuration sets, else 10 s to connect and `attempt`
/// per attempt, so that a connection that hangs comes back as a failure
/// to retry instead of holding its work forever.
fn aws_attempt_timeouts(
    aws: &aws_config::SdkConfig,
    attempt: Duration,
) -> aws_config::timeout::TimeoutConfig {
    use aws_config::timeout::TimeoutConfig;
    let mut timeouts = aws
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| TimeoutConfig::builder().build());
    timeouts.take_defaults_from(
        &TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(attempt)
            .build(),
    );
    timeouts
}
