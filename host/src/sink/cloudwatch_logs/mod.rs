//! The CloudWatch Logs sink: records as log events sent with
//! `PutLogEvents` through the AWS SDK, into the log group and stream that
//! the `log_group` and `log_stream` templates name for each record.
//!
//! Encoding ([`CloudWatchEncoding`]) writes each record's message (the
//! original line, or the record as JSON) and tags it with its group and
//! stream. A batch handed to [`CloudWatchLogs::send`] may hold events of
//! many streams and more than one call can take, so `send` sorts each
//! stream's events by time and cuts them into calls within the service's
//! limits:
//!
//! - at most 1,048,576 bytes a call, counting each event's UTF-8 message
//!   and 26 bytes;
//! - at most 10,000 events a call;
//! - events of a call less than 24 hours apart;
//! - events in chronological order (the service refused unsorted calls);
//! - messages of valid UTF-8 (invalid bytes become U+FFFD) and not empty.
//!
//! Records without a time are sent at the time of sending. Streams are
//! sent concurrently (at most [`STREAMS_IN_FLIGHT`] calls at once per sink),
//! the calls of one stream one after the other.
//!
//! How answers map, per call, onto the records in it:
//!
//! - success: stored, except the events `rejectedLogEventsInfo` names
//!   (too old, too new, older than the group's retention), which the
//!   service dropped and never takes: refused, to the dead-letter output;
//! - `ResourceNotFoundException`: with `create_missing`, the group and
//!   the stream are created (either may exist already) and the call is
//!   made once more; without, the records fail (their objects are tried
//!   again later), since no retry can help until someone creates them;
//! - throttling, unavailability, timeouts and connection failures: sent
//!   again later;
//! - `InvalidParameterException` (something in the events): refused; the
//!   delivery machinery sends halves apart until the events the service
//!   refuses on their own are found. When other calls of the same attempt
//!   went through, the refused call's records are sent again on their
//!   own first, since a per-record answer cannot ask for halving;
//! - credentials, permissions and any other client error: the records
//!   fail, which no retry of them can change.
//!
//! The SDK's own retries are off: retrying, backoff and outage logging are
//! the delivery machinery's, which sees every attempt. Answers are read up
//! to [`ANSWER_BYTES`], as the HTTP stores' are (see [`AnswerLimit`]).

mod encoding;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};
// aws-sdk-s3 re-exports the body type all AWS SDKs share; this one does not.
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::box_error::BoxError;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Context;
use super::delivery::{Answer, RecordAnswer, Records, Store};
use super::http::ANSWER_BYTES;
use super::template::Template;
use crate::config::CloudWatchLogsConfig;
use crate::errors::error_chain;

pub use encoding::CloudWatchEncoding;

/// The most bytes one `PutLogEvents` call takes, counting
/// [`EVENT_OVERHEAD`] for each event.
pub const MAX_CALL_BYTES: usize = 1_048_576;
/// What the service counts for each event besides its message.
pub const EVENT_OVERHEAD: usize = 26;
/// The most events one call takes.
pub const MAX_CALL_EVENTS: usize = 10_000;
/// The events of one call must lie within this span.
pub const MAX_CALL_SPAN_MS: i64 = 24 * 3_600_000;
/// Events older than this, before the time of sending, are rejected.
const TOO_OLD_MS: i64 = 14 * 86_400_000;
/// Events further in the future than this are rejected.
const TOO_NEW_MS: i64 = 2 * 3_600_000;
/// Calls in flight at once per sink, over all its batches: a batch may name
/// hundreds of streams (a template on a field), which must not become as
/// many simultaneous connections.
pub const STREAMS_IN_FLIGHT: usize = 16;

pub struct CloudWatchLogs {
    client: Client,
    create_missing: bool,
    in_flight: Arc<Semaphore>,
}

/// The store and its encoding for `[sink.<name>]` at `path`.
pub fn build(
    config: &CloudWatchLogsConfig,
    path: &str,
    context: &Context,
) -> anyhow::Result<(CloudWatchLogs, CloudWatchEncoding)> {
    let options = &config.options;
    let log_group = Template::parse(&options.log_group)
        .map_err(|error| anyhow::anyhow!("{path}.log_group: {error}"))?;
    let log_stream = Template::parse(&options.log_stream)
        .map_err(|error| anyhow::anyhow!("{path}.log_stream: {error}"))?;
    let timeouts = super::aws_attempt_timeouts(&context.aws, Duration::from_secs(60));
    let mut builder = aws_sdk_cloudwatchlogs::config::Builder::from(&context.aws)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .interceptor(AnswerLimit);
    if let Some(region) = &options.region {
        builder = builder.region(Region::new(region.clone()));
    }
    let store = CloudWatchLogs {
        client: Client::from_conf(builder.build()),
        create_missing: options.create_missing,
        in_flight: Arc::new(Semaphore::new(STREAMS_IN_FLIGHT)),
    };
    let encoding = CloudWatchEncoding {
        log_group,
        log_stream,
        message: options.message,
    };
    Ok((store, encoding))
}

/// Cuts every answer off after [`ANSWER_BYTES`]: the SDK would read an
/// answer of any length into memory before looking at it. No answer of
/// the service is that long; a longer one fails to read, and the call
/// counts as unanswered (sent again later).
#[derive(Debug)]
struct AnswerLimit;

impl Intercept for AnswerLimit {
    fn name(&self) -> &'static str {
        "AnswerLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let body = response.take_body();
        *response.body_mut() =
            SdkBody::from_body_1_x(http_body_util::Limited::new(body, ANSWER_BYTES));
        Ok(())
    }
}

/// What became of one record in one attempt.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Stored,
    Retry(String),
    /// Refused on its own: to the dead-letter output.
    Refused(String),
    /// Refused as part of a call: which of the call's events is at fault
    /// is for halving to find.
    CallRefused(String),
    Failed(String),
}

/// What one call came to.
#[derive(Debug, Clone, PartialEq)]
enum CallOutcome {
    /// Stored, but for the events (indices into the call) named here.
    Stored(Vec<(usize, &'static str)>),
    Retry(String),
    Refused(String),
    Failed(String),
}

/// The calls of one stream: events in time order.
struct StreamCalls {
    group: String,
    stream: String,
    calls: Vec<Vec<InputLogEvent>>,
}

impl Store for CloudWatchLogs {
    async fn send(&self, records: &Records) -> Answer {
        let now = now_ms();
        let mut slots: Vec<Option<Slot>> = vec![None; records.len()];
        let (streams, positions) = plan(records, now, &mut slots);
        let mut tasks = JoinSet::new();
        for (index, stream) in streams.into_iter().enumerate() {
            let client = self.client.clone();
            let in_flight = self.in_flight.clone();
            let create_missing = self.create_missing;
            tasks.spawn(async move {
                let outcomes = put_stream(&client, &in_flight, create_missing, stream, now).await;
                (index, outcomes)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (index, outcomes) = match joined {
                Ok(done) => done,
                // A call's task panicked: what it stored is unknown, and
                // sending everything again loses nothing.
                Err(error) => {
                    return Answer::Retry {
                        reason: format!("a PutLogEvents task ended: {error}"),
                        retry_after: None,
                    };
                }
            };
            for (call, outcome) in positions[index].iter().zip(outcomes) {
                apply(call, outcome, &mut slots);
            }
        }
        answer(
            slots
                .into_iter()
                .map(|slot| slot.expect("every record is planned"))
                .collect(),
        )
    }
}

/// Sorts each stream's events and cuts them into calls. Returns the calls
/// and, for each call, the position in `records` of each of its events;
/// records that cannot be sent at all get their slot here.
fn plan(
    records: &Records,
    now: i64,
    slots: &mut [Option<Slot>],
) -> (Vec<StreamCalls>, Vec<Vec<Vec<usize>>>) {
    // (position, timestamp, message), by group key.
    let mut by_stream: BTreeMap<&str, Vec<(usize, i64, String)>> = BTreeMap::new();
    for (position, record) in records.iter().enumerate() {
        let message = String::from_utf8_lossy(record.bytes).into_owned();
        let refused = if !record.group.contains(encoding::SEPARATOR) {
            Some("the record names no log group and stream".to_owned())
        } else if message.is_empty() {
            Some("an empty message, which CloudWatch Logs does not take".to_owned())
        } else if message.len() + EVENT_OVERHEAD > MAX_CALL_BYTES {
            Some(format!(
                "a message of {} bytes is longer than a PutLogEvents call takes ({})",
                message.len(),
                MAX_CALL_BYTES - EVENT_OVERHEAD
            ))
        } else {
            None
        };
        if let Some(reason) = refused {
            slots[position] = Some(Slot::Refused(reason));
            continue;
        }
        let timestamp = record.time.map_or(now, |nanos| nanos.div_euclid(1_000_000));
        by_stream
            .entry(record.group)
            .or_default()
            .push((position, timestamp, message));
    }
    let mut streams = Vec::with_capacity(by_stream.len());
    let mut positions = Vec::with_capacity(by_stream.len());
    for (key, mut events) in by_stream {
        let (group, stream) = key.split_once(encoding::SEPARATOR).expect("checked above");
        // Stable: events of the same millisecond keep the order of their lines.
        events.sort_by_key(|&(_, timestamp, _)| timestamp);
        let sizes: Vec<(i64, usize)> = events
            .iter()
            .map(|(_, timestamp, message)| (*timestamp, message.len()))
            .collect();
        let ranges = call_ranges(&sizes);
        let mut events = events.into_iter();
        let mut calls = Vec::with_capacity(ranges.len());
        let mut call_positions = Vec::with_capacity(ranges.len());
        for range in ranges {
            let (at, call): (Vec<usize>, Vec<InputLogEvent>) = events
                .by_ref()
                .take(range.len())
                .map(|(position, timestamp, message)| {
                    let event = InputLogEvent::builder()
                        .timestamp(timestamp)
                        .message(message)
                        .build()
                        .expect("timestamp and message are set");
                    (position, event)
                })
                .unzip();
            calls.push(call);
            call_positions.push(at);
        }
        streams.push(StreamCalls {
            group: group.to_owned(),
            stream: stream.to_owned(),
            calls,
        });
        positions.push(call_positions);
    }
    (streams, positions)
}

/// Cuts events sorted by time, given as (timestamp ms, message bytes),
/// into consecutive calls within the service's limits.
fn call_ranges(events: &[(i64, usize)]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (at, &(timestamp, size)) in events.iter().enumerate() {
        let cost = size + EVENT_OVERHEAD;
        // The span stays below 24 hours: a call of exactly 24 hours is
        // on the edge of what the service documents.
        let full = at - start == MAX_CALL_EVENTS
            || bytes + cost > MAX_CALL_BYTES
            || timestamp - events[start].0 >= MAX_CALL_SPAN_MS;
        if at > start && full {
            ranges.push(start..at);
            start = at;
            bytes = 0;
        }
        bytes += cost;
    }
    if start < events.len() {
        ranges.push(start..events.len());
    }
    ranges
}

/// Records what `outcome` means for the records at `positions`.
fn apply(positions: &[usize], outcome: CallOutcome, slots: &mut [Option<Slot>]) {
    let slot = |outcome: &CallOutcome| match outcome {
        CallOutcome::Stored(_) => Slot::Stored,
        CallOutcome::Retry(reason) => Slot::Retry(reason.clone()),
        CallOutcome::Refused(reason) => Slot::CallRefused(reason.clone()),
        CallOutcome::Failed(reason) => Slot::Failed(reason.clone()),
    };
    for &position in positions {
        slots[position] = Some(slot(&outcome));
    }
    if let CallOutcome::Stored(rejected) = outcome {
        for (event, reason) in rejected {
            if let Some(&position) = positions.get(event) {
                slots[position] = Some(Slot::Refused(reason.into()));
            }
        }
    }
}

/// The answer for a whole attempt, from each record's slot (in
/// [`Records::iter`] order).
fn answer(slots: Vec<Slot>) -> Answer {
    if let Some(reason) = slots.iter().find_map(|slot| match slot {
        Slot::Failed(reason) => Some(reason.clone()),
        _ => None,
    }) {
        // What other calls stored is sent again with the object: duplicates,
        // never losses.
        return Answer::Failed { reason };
    }
    if slots.iter().all(|slot| *slot == Slot::Stored) {
        return Answer::Stored;
    }
    if let [Slot::Retry(reason), rest @ ..] = slots.as_slice()
        && rest.iter().all(|slot| matches!(slot, Slot::Retry(_)))
    {
        return Answer::Retry {
            reason: reason.clone(),
            retry_after: None,
        };
    }
    if let [Slot::CallRefused(reason), rest @ ..] = slots.as_slice()
        && rest.iter().all(|slot| matches!(slot, Slot::CallRefused(_)))
    {
        return Answer::Refused {
            reason: reason.clone(),
        };
    }
    Answer::PerRecord(
        slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Stored => RecordAnswer::Stored,
                Slot::Retry(reason) => RecordAnswer::Retry(reason),
                Slot::Refused(reason) => RecordAnswer::Refused(reason),
                // Sent again without the records that went through, to be
                // halved then (a per-record answer cannot ask for that).
                Slot::CallRefused(reason) => RecordAnswer::Retry(reason),
                Slot::Failed(_) => unreachable!("answered above"),
            })
            .collect(),
    )
}

/// Sends the calls of one stream one after the other. Once one fails or
/// must be retried, so would the rest: they get its outcome unsent.
async fn put_stream(
    client: &Client,
    in_flight: &Semaphore,
    create_missing: bool,
    stream: StreamCalls,
    now: i64,
) -> Vec<CallOutcome> {
    let StreamCalls {
        group,
        stream,
        calls,
    } = stream;
    let mut outcomes = Vec::with_capacity(calls.len());
    let mut calls = calls.into_iter();
    for events in calls.by_ref() {
        let outcome = {
            let _permit = in_flight.acquire().await.expect("never closed");
            put_call(client, &group, &stream, events, create_missing, now).await
        };
        let stop = matches!(outcome, CallOutcome::Retry(_) | CallOutcome::Failed(_));
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    if let Some(last) = outcomes.last().cloned() {
        outcomes.extend(calls.map(|_| last.clone()));
    }
    outcomes
}

/// How the service's error is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Missing,
    AlreadyExists,
    AlreadyStored,
    Retry,
    Refused,
    Failed,
}

async fn put_call(
    client: &Client,
    group: &str,
    stream: &str,
    events: Vec<InputLogEvent>,
    create_missing: bool,
    now: i64,
) -> CallOutcome {
    let timestamps: Vec<i64> = events.iter().map(InputLogEvent::timestamp).collect();
    let request = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events));
    // The request is kept only when it may have to be made again.
    let (first, again) = if create_missing {
        (request.clone().send().await, Some(request))
    } else {
        (request.send().await, None)
    };
    let what = || format!("PutLogEvents to {group} / {stream}");
    let result = match (first, again) {
        (Err(error), Some(again)) if classify(&error).0 == ErrorKind::Missing => {
            if let Err(outcome) = create(client, group, stream).await {
                return outcome;
            }
            again.send().await
        }
        (result, _) => result,
    };
    match result {
        Ok(output) => CallOutcome::Stored(rejected_events(
            output.rejected_log_events_info(),
            &timestamps,
            now,
        )),
        Err(error) => {
            let (kind, reason) = classify(&error);
            let reason = format!("{}: {reason}", what());
            match kind {
                ErrorKind::AlreadyStored => CallOutcome::Stored(Vec::new()),
                ErrorKind::Refused => CallOutcome::Refused(reason),
                // Missing right after creating it: the service may not see
                // the new stream yet.
                ErrorKind::Missing if create_missing => CallOutcome::Retry(reason),
                ErrorKind::Missing => CallOutcome::Failed(format!(
                    "{reason} (create_missing is off: create the log group and stream)"
                )),
                ErrorKind::Retry | ErrorKind::AlreadyExists => CallOutcome::Retry(reason),
                ErrorKind::Failed => CallOutcome::Failed(reason),
            }
        }
    }
}

/// Creates the log group, then the stream; either may exist already.
async fn create(client: &Client, group: &str, stream: &str) -> Result<(), CallOutcome> {
    let created = client.create_log_group().log_group_name(group).send().await;
    if let Err(error) = created {
        created_or_exists(&format!("CreateLogGroup {group}"), &error)?;
    }
    let created = client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    if let Err(error) = created {
        created_or_exists(&format!("CreateLogStream {group} / {stream}"), &error)?;
    }
    Ok(())
}

fn created_or_exists<E>(what: &str, error: &SdkError<E>) -> Result<(), CallOutcome>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, reason) = classify(error);
    let reason = format!("{what}: {reason}");
    match kind {
        ErrorKind::AlreadyExists => Ok(()),
        ErrorKind::Retry | ErrorKind::Missing => Err(CallOutcome::Retry(reason)),
        // A name the service refuses (too long, a `:` in a stream name)
        // comes from the records' fields: halving finds them.
        ErrorKind::Refused => Err(CallOutcome::Refused(reason)),
        ErrorKind::AlreadyStored | ErrorKind::Failed => Err(CallOutcome::Failed(reason)),
    }
}

/// What an SDK error means here, and its text: the service's code and
/// message, else the error and its causes. Neither holds credentials.
fn classify<E>(error: &SdkError<E>) -> (ErrorKind, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(context) = error else {
        let kind = match error {
            // The request could not be built: no retry changes that.
            SdkError::ConstructionFailure(_) => ErrorKind::Failed,
            // Timeouts, connections, unreadable answers.
            _ => ErrorKind::Retry,
        };
        return (kind, error_chain(error));
    };
    let service = context.err();
    let status = context.raw().status().as_u16();
    let code = service.code().unwrap_or("");
    let reason = match (service.code(), service.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => format!("HTTP {status}: {}", error_chain(error)),
    };
    let kind = match code {
        "ResourceNotFoundException" => ErrorKind::Missing,
        "ResourceAlreadyExistsException" => ErrorKind::AlreadyExists,
        // A call made again after a lost answer: its events are in.
        "DataAlreadyAcceptedException" => ErrorKind::AlreadyStored,
        "InvalidParameterException" | "ValidationException" | "SerializationException" => {
            ErrorKind::Refused
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "ServiceUnavailableException"
        | "ServiceUnavailable"
        | "OperationAbortedException"
        | "InternalFailure"
        | "RequestTimeout"
        | "RequestTimeoutException"
        // No token is sent any more; should the service still ask for one,
        // a later call may do.
        | "InvalidSequenceTokenException" => ErrorKind::Retry,
        _ if status >= 500 || status == 429 => ErrorKind::Retry,
        // UnrecognizedClientException, AccessDeniedException, expired
        // tokens and whatever else the client is at fault for.
        _ => ErrorKind::Failed,
    };
    (kind, reason)
}

/// The events (indices into the call) the service dropped, with why.
///
/// The service documents `tooOldLogEventEndIndex` and
/// `expiredLogEventEndIndex` as exclusive ends and
/// `tooNewLogEventStartIndex` as an inclusive start; moto reports the
/// last too-old and the last too-new event instead. The boundary is
/// widened by the events whose own time is beyond the documented limits
/// (14 days back, 2 hours ahead), which reads both right: an event at
/// the edge may go to the dead-letter output as well as being stored, but
/// none dropped is taken for stored. Nothing is widened when the service
/// names no event.
fn rejected_events(
    info: Option<&RejectedLogEventsInfo>,
    timestamps: &[i64],
    now: i64,
) -> Vec<(usize, &'static str)> {
    let Some(info) = info else {
        return Vec::new();
    };
    let count = timestamps.len();
    let index = |value: Option<i32>| value.map(|value| (value.max(0) as usize).min(count));
    let mut reasons: Vec<Option<&'static str>> = vec![None; count];
    if let Some(end) = index(info.expired_log_event_end_index()) {
        reasons[..end].fill(Some(EXPIRED));
    }
    if let Some(mut end) = index(info.too_old_log_event_end_index()) {
        while end < count && timestamps[end] < now - TOO_OLD_MS {
            end += 1;
        }
        for reason in &mut reasons[..end] {
            reason.get_or_insert(TOO_OLD);
        }
    }
    if let Some(mut start) = index(info.too_new_log_event_start_index()) {
        while start > 0 && timestamps[start - 1] > now + TOO_NEW_MS {
            start -= 1;
        }
        for reason in &mut reasons[start..] {
            reason.get_or_insert(TOO_NEW);
        }
    }
    reasons
        .into_iter()
        .enumerate()
        .filter_map(|(at, reason)| reason.map(|reason| (at, reason)))
        .collect()
}

const TOO_OLD: &str =
    "CloudWatch Logs rejected the event as too old (more than 14 days before it was sent)";
const TOO_NEW: &str =
    "CloudWatch Logs rejected the event as too new (more than 2 hours after it was sent)";
const EXPIRED: &str =
    "CloudWatch Logs rejected the event as expired (older than the log group's retention)";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

#[cfg(test)]
mod tests;
