//! One client connection: read, cut into objects, parsed by the ndjson
//! parser (natively), encoded for every sink and handed over.
//!
//! Backpressure: a connection reads its socket only when its sinks took
//! what it read before. [`Handle::send`](crate::sink::delivery::Handle::send)
//! waits while a sink's buffer budget is used up, and at most
//! [`MAX_UNRESOLVED`] deliveries of one connection may be unresolved before
//! it waits for the oldest; meanwhile nothing is read, the kernel's socket
//! buffers fill and the client's writes block. Nothing is dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use s3logd_parser_ndjson::NdJson;
use s3logd_parser_sdk::{BatchParser, Parser as _};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::decode::{Scanned, Scanner};
use super::metrics::{ListenerMetrics, Malformed};
use crate::parse::{Field, OutputAllowance, Record, RecordVisitor, visit_rows};
use crate::sink::dead_letter::{Letters, LineLetter};
use crate::sink::delivery::{Encoded, Origin, SinkError};
use crate::sink::{ObjectContext, RecordEncoder, Sinks};

/// What one read asks the socket for, at most.
const READ_BYTES: usize = 256 << 10;
/// Deliveries of one connection that may be unresolved while it reads on.
pub const MAX_UNRESOLVED: usize = 8;
/// While draining at shutdown, a connection that sent nothing for this
/// long has nothing more buffered.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Past this many distinct fields a connection starts a new parser
/// session, so that one long-lived client cannot outgrow a session's
/// field table.
const MAX_SESSION_FIELDS: usize = 2_000;
/// How much of an object the dead-letter output keeps.
const LETTER_TEXT_BYTES: usize = 16 * 1024;

/// What every connection shares.
pub struct Shared {
    pub sinks: Arc<Sinks>,
    pub metrics: Arc<ListenerMetrics>,
    /// The ndjson parser's options (`time_field`, `time_format`).
    pub options: Vec<(String, String)>,
    pub max_object_bytes: usize,
    /// Fires when the listener stops receiving: connections then read what
    /// is buffered, deliver it and close.
    pub stop: CancellationToken,
    /// Fires when unfinished deliveries are given up.
    pub abandon: CancellationToken,
}

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    /// The client closed it.
    Closed,
    /// Shutdown: everything it had sent was read.
    Drained,
    Malformed(Malformed, String),
    Read(std::io::Error),
    Abandoned,
}

type Pending = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// Reads `stream` until it ends, handing every object to the sinks, and
/// returns once every delivery of it resolved.
pub async fn serve<S: AsyncRead + Unpin>(
    shared: &Shared,
    mut stream: S,
    origin: Arc<Origin>,
) -> End {
    let mut connection = match Connection::open(shared, origin) {
        Ok(connection) => connection,
        // The options were checked when the listener started.
        Err(reason) => return End::Malformed(Malformed::InvalidJson, reason),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BYTES);
    let mut scanner = Scanner::new(shared.max_object_bytes);
    let mut draining = shared.stop.is_cancelled();
    let end = loop {
        if !connection.settle(MAX_UNRESOLVED).await {
            break End::Abandoned;
        }
        buf.reserve(READ_BYTES.min(shared.max_object_bytes + 1));
        let read = if draining {
            tokio::select! {
                biased;
                () = shared.abandon.cancelled() => break End::Abandoned,
                read = tokio::time::timeout(DRAIN_IDLE, stream.read_buf(&mut buf)) => match read {
                    Ok(read) => read,
                    Err(_) => break End::Drained,
                },
            }
        } else {
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => {
                    draining = true;
                    continue;
                }
                read = stream.read_buf(&mut buf) => read,
            }
        };
        match read {
            Ok(0) => {
                break match scanner.pending_start() {
                    Some(_) => End::Malformed(
                        Malformed::InvalidJson,
                        "the connection ended inside an object".into(),
                    ),
                    None => End::Closed,
                };
            }
            Ok(n) => shared.metrics.bytes.add(n as u64),
            Err(error) => break End::Read(error),
        }
        let mut consumed = 0;
        let failed = loop {
            match scanner.next(&buf) {
                Scanned::Object(range) => {
                    connection.push(&buf[range.clone()]);
                    consumed = range.end;
                }
                Scanned::NeedMore => break None,
                Scanned::Malformed(reason) => break Some((Malformed::InvalidJson, reason)),
                Scanned::TooLarge => {
                    break Some((
                        Malformed::TooLarge,
                        format!(
                            "an object is larger than listen.max_object_bytes ({})",
                            shared.max_object_bytes
                        ),
                    ));
                }
            }
        };
        // What came before a malformed object is stored.
        connection.flush().await;
        if let Some((why, reason)) = failed {
            break End::Malformed(why, reason);
        }
        buf.drain(..consumed);
        scanner.consumed(consumed);
        // Without an object in progress the buffer needs no more than a read.
        if buf.capacity() > 2 * READ_BYTES && buf.len() < READ_BYTES {
            buf.shrink_to(READ_BYTES);
        }
    };
    drop(buf);
    if let End::Malformed(why, _) = &end {
        shared.metrics.malformed(*why);
    }
    connection.flush().await;
    if !connection.settle(0).await {
        return End::Abandoned;
    }
    end
}

/// A connection's parser session and what it has not yet handed over.
struct Connection<'a> {
    shared: &'a Shared,
    origin: Arc<Origin>,
    session: Session,
    /// Objects read and not yet parsed, one a line.
    batch: String,
    /// Records of the connection so far: their index for the encoders.
    records: u64,
    /// Objects handed to the parser so far: their line numbers.
    lines: u64,
    /// Unresolved deliveries, oldest first, with the records they carry.
    pending: VecDeque<(Pending, u64)>,
}

/// The parser and the encoders of one session.
struct Session {
    parser: BatchParser<NdJson>,
    fields: Vec<Field>,
    allowance: OutputAllowance,
    /// One per sink, in the sinks' order.
    targets: Vec<Target>,
}

struct Target {
    encoder: Box<dyn RecordEncoder>,
    buffer: Option<Encoded>,
}

impl<'a> Connection<'a> {
    fn open(shared: &'a Shared, origin: Arc<Origin>) -> Result<Connection<'a>, String> {
        Ok(Connection {
            session: Session::open(shared, &origin)?,
            shared,
            origin,
            batch: String::new(),
            records: 0,
            lines: 0,
            pending: VecDeque::new(),
        })
    }

    /// Adds one complete, well-formed object. Line breaks between its
    /// tokens become spaces (JSON strings cannot hold raw ones), so that
    /// it is one line of the batch.
    fn push(&mut self, object: &[u8]) {
        self.shared.metrics.objects.inc();
        let text = std::str::from_utf8(object).expect("serde_json accepted it, so it is UTF-8");
        if memchr::memchr2(b'\n', b'\r', object).is_some() {
            self.batch.extend(
                text.chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
            );
        } else {
            self.batch.push_str(text);
        }
        self.batch.push('\n');
    }

    /// Parses the objects pushed so far and hands their records to every
    /// sink; waits while a sink's buffer budget is used up.
    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let received = crate::sink::now_nanos();
        let rows = self.session.parser.parse(&self.batch);
        let mut visitor = Visitor {
            targets: &mut self.session.targets,
            sinks: &self.shared.sinks,
            origin: &self.origin,
            received,
            records: &mut self.records,
            letters: None,
            metrics: &self.shared.metrics,
        };
        let visited = visit_rows(
            &rows,
            &self.batch,
            &mut self.session.fields,
            &mut self.session.allowance,
            self.lines,
            &mut visitor,
        );
        let letters = visitor.letters.take();
        match visited {
            Ok(outcome) => self.lines += outcome.lines,
            Err(failure) => {
                // The parser's output was refused as a whole (its content
                // allowance): a fresh session goes on.
                let objects = self.batch.lines().count() as u64;
                tracing::error!(origin = %self.origin.key, %failure, objects, "objects not parsed");
                self.shared.metrics.records_failed.add(objects);
                self.lines += objects;
                self.reopen();
            }
        }
        self.batch.clear();
        for (at, target) in self.session.targets.iter_mut().enumerate() {
            let Some(records) = target.buffer.take() else {
                continue;
            };
            let count = records.records();
            let delivery = self.shared.sinks.all()[at].handle.send(records).await;
            self.pending.push_back((Box::pin(delivery), count));
        }
        if let Some(letters) = letters {
            let sinks = self.shared.sinks.clone();
            self.pending.push_back((
                Box::pin(async move { sinks.dead_letter_lines(letters).await }),
                0,
            ));
        }
        if self.session.fields.len() > MAX_SESSION_FIELDS {
            self.reopen();
        }
    }

    fn reopen(&mut self) {
        match Session::open(self.shared, &self.origin) {
            Ok(session) => self.session = session,
            Err(reason) => tracing::error!(%reason, "cannot reopen the parser session"),
        }
    }

    /// Waits until at most `unresolved` deliveries are; false when they
    /// were abandoned.
    async fn settle(&mut self, unresolved: usize) -> bool {
        let mut abandoned = false;
        while self.pending.len() > unresolved {
            let (delivery, records) = self.pending.pop_front().expect("not empty");
            match delivery.await {
                Ok(()) => {}
                Err(SinkError::Cancelled) => {
                    self.shared.metrics.records_failed.add(records);
                    abandoned = true;
                }
                Err(error) => {
                    self.shared.metrics.records_failed.add(records);
                    tracing::error!(origin = %self.origin.key, %error, records, "records not stored");
                }
            }
        }
        !abandoned
    }
}

impl Session {
    fn open(shared: &Shared, origin: &Arc<Origin>) -> Result<Session, String> {
        let parser = BatchParser::<NdJson>::open("", shared.options.clone())?;
        let fields: Vec<Field> = NdJson::describe()
            .fields
            .into_iter()
            .map(Field::from)
            .collect();
        let allowance = OutputAllowance::new(&fields)?;
        let object = ObjectContext {
            origin,
            fields: &[],
        };
        let targets = shared
            .sinks
            .all()
            .iter()
            .map(|sink| Target {
                encoder: sink.encoding.encoder(&object),
                buffer: None,
            })
            .collect();
        Ok(Session {
            parser,
            fields,
            allowance,
            targets,
        })
    }
}

/// The options for the ndjson parser from `[listen]`.
pub fn parser_options(config: &crate::config::listen::ListenConfig) -> Vec<(String, String)> {
    let mut options = vec![("time_format".to_owned(), config.time_format.clone())];
    if let Some(field) = &config.time_field {
        options.push(("time_field".to_owned(), field.clone()));
    }
    options
}

/// Checks the parser options once, at start.
pub fn check_options(options: &[(String, String)]) -> Result<(), String> {
    BatchParser::<NdJson>::open("", options.to_vec()).map(drop)
}

struct Visitor<'v> {
    targets: &'v mut [Target],
    sinks: &'v Sinks,
    origin: &'v Arc<Origin>,
    /// Now, for records without a time of their own.
    received: i64,
    records: &'v mut u64,
    letters: Option<Letters>,
    metrics: &'v ListenerMetrics,
}

impl RecordVisitor for Visitor<'_> {
    fn record(&mut self, record: &Record<'_>) {
        let record = Record {
            time: record.time.or(Some(self.received)),
            ..*record
        };
        let index = *self.records;
        *self.records += 1;
        for (at, target) in self.targets.iter_mut().enumerate() {
            let buffer = target.buffer.get_or_insert_with(|| {
                Encoded::new(self.sinks.all()[at].handle.buffer(), self.origin.clone())
            });
            target.encoder.encode(&record, index, buffer);
        }
    }

    fn line_error(&mut self, line: u64, text: &str, reason: &str) {
        tracing::debug!(origin = %self.origin.key, line, reason, "object gave no record");
        self.metrics.objects_rejected.inc();
        let kept = text.floor_char_boundary(LETTER_TEXT_BYTES);
        self.letters
            .get_or_insert_with(|| Letters::new("lines"))
            .push_line(&LineLetter {
                parser: "ndjson",
                origin: self.origin,
                line,
                reason,
                text: &text[..kept],
            });
    }
}
