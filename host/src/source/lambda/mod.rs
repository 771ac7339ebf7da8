//! The collector as an AWS Lambda function: each invocation's event is
//! decoded ([`event`]), its objects go through the same [`ObjectProcessor`]
//! as `run`'s, at most `queue.concurrency` at once, and the answer says
//! which work is done: for an SQS batch a partial batch response naming
//! only the messages whose objects were not all stored, for any other
//! event an error unless every object was.
//!
//! The invocation's deadline bounds the work: `reserve` before it, objects
//! not yet started are not started and those in work are abandoned (their
//! reading stops, their deliveries are no longer waited for), and all of
//! them count as not stored. Nothing is reported done that was not stored
//! whole; records of an abandoned object already handed to the sinks may
//! be stored again when it is retried, which at-least-once allows.

pub mod event;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::ack::{self, Ack, ObjectOutcome};
use crate::metrics::Metrics;
use crate::notification::{Notification, ObjectRef};
use crate::object::{NotStored, ObjectProcessor};
use event::Invocation;

/// What the function keeps from one invocation to the next.
pub struct Function {
    pub processor: Arc<ObjectProcessor>,
    /// One permit per object processed at once, across an invocation's
    /// messages.
    pub object_slots: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    /// Time kept before the deadline for abandoning work and answering.
    pub reserve: Duration,
}

/// Why an invocation failed, as the runtime reports it: Lambda then
/// retries the event (asynchronous S3 and SNS invocations) or sends it to
/// the function's failure destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationFailed {
    /// `errorType` of the report.
    pub kind: &'static str,
    pub message: String,
}

/// How an invocation's messages ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    stored: usize,
    not_stored: usize,
    /// Objects not stored because the deadline came first.
    unfinished: usize,
}

impl Function {
    /// Works on one invocation's event until its work is done or
    /// `deadline` (milliseconds since the Unix epoch, as the Runtime API
    /// gives it) draws near.
    pub async fn handle(
        self: &Arc<Self>,
        event: &Value,
        deadline_ms: u64,
    ) -> Result<Value, InvocationFailed> {
        let invocation = event::decode(event).map_err(|unrecognized| {
            self.metrics.messages_unrecognized.inc();
            InvocationFailed {
                kind: "UnrecognizedEvent",
                message: unrecognized.to_string(),
            }
        })?;
        let cutoff = self.cutoff(deadline_ms);
        let abandon = CancellationToken::new();
        let _timer = AbortOnDropHandle::new(tokio::spawn({
            let abandon = abandon.clone();
            async move {
                tokio::time::sleep_until(cutoff).await;
                abandon.cancel();
            }
        }));
        match invocation {
            Invocation::Queue(messages) => {
                let mut settled = JoinSet::new();
                for message in messages {
                    self.metrics.messages_received.inc();
                    let this = self.clone();
                    let abandon = abandon.clone();
                    settled.spawn(async move {
                        let ack = match message.notification {
                            Ok(notification) => {
                                this.settle(&message.message_id, notification, &abandon)
                                    .await
                            }
                            Err(unrecognized) => {
                                this.metrics.messages_unrecognized.inc();
                                tracing::warn!(message_id = %message.message_id, reason = %unrecognized.reason, "unrecognized message failed for the queue's redrive policy");
                                (Ack::Keep, Tally::default())
                            }
                        };
                        (message.message_id, ack)
                    });
                }
                let mut failures = Vec::new();
                let mut tally = Tally::default();
                for (message_id, (ack, counted)) in settled.join_all().await {
                    tally.add(counted);
                    if ack != Ack::Delete {
                        failures.push(json!({ "itemIdentifier": message_id }));
                    } else {
                        self.metrics.messages_deleted.inc();
                    }
                }
                tally.log(abandon.is_cancelled());
                Ok(json!({ "batchItemFailures": failures }))
            }
            Invocation::Direct(notifications) => {
                let mut tally = Tally::default();
                let mut done = true;
                for notification in notifications {
                    let (ack, counted) = self.settle("-", notification, &abandon).await;
                    tally.add(counted);
                    done &= ack == Ack::Delete;
                }
                tally.log(abandon.is_cancelled());
                if done {
                    return Ok(json!({ "stored": tally.stored }));
                }
                Err(InvocationFailed {
                    kind: "ObjectsNotStored",
                    message: format!(
                        "{} of {} objects not stored ({} for the deadline); the event is to be retried",
                        tally.not_stored,
                        tally.stored + tally.not_stored,
                        tally.unfinished,
                    ),
                })
            }
        }
    }

    /// When work must stop: `reserve` before the deadline.
    fn cutoff(&self, deadline_ms: u64) -> Instant {
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Instant::now() + remaining.saturating_sub(self.reserve)
    }

    /// Works on a notification's objects and says whether it is done.
    async fn settle(
        self: &Arc<Self>,
        message_id: &str,
        notification: Notification,
        abandon: &CancellationToken,
    ) -> (Ack, Tally) {
        let (objects, ignored_events) = match notification {
            Notification::TestEvent { .. } => {
                self.metrics.test_events.inc();
                return (Ack::Delete, Tally::default());
            }
            Notification::Objects {
                objects,
                ignored_events,
                ..
            } => (objects, ignored_events),
        };
        self.metrics.events_ignored.add(ignored_events.len() as u64);
        let mut work = JoinSet::new();
        for object in objects {
            let this = self.clone();
            let message_id = message_id.to_owned();
            let abandon = abandon.clone();
            work.spawn(async move { this.process_object(&message_id, object, &abandon).await });
        }
        let outcomes = work.join_all().await;
        let mut tally = Tally::default();
        for outcome in &outcomes {
            match outcome {
                ObjectOutcome::Stored => tally.stored += 1,
                ObjectOutcome::Failed => tally.not_stored += 1,
                ObjectOutcome::Unfinished => {
                    tally.not_stored += 1;
                    tally.unfinished += 1;
                }
            }
        }
        (ack::decide(&outcomes), tally)
    }

    async fn process_object(
        &self,
        message_id: &str,
        object: ObjectRef,
        abandon: &CancellationToken,
    ) -> ObjectOutcome {
        let _slot = tokio::select! {
            // A free slot must not win over a deadline already reached.
            biased;
            () = abandon.cancelled() => return ObjectOutcome::Unfinished,
            slot = self.object_slots.acquire() => slot.expect("the slots are never closed"),
        };
        let result = tokio::select! {
            // Work that ended says best what became of the object.
            biased;
            result = self.processor.process_until(&object, abandon.clone()) => result,
            () = abandon.cancelled() => Err(NotStored::Abandoned),
        };
        ack::outcome_of(result, &object, message_id, &self.metrics)
    }
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.stored += other.stored;
        self.not_stored += other.not_stored;
        self.unfinished += other.unfinished;
    }

    fn log(&self, deadline_reached: bool) {
        if deadline_reached {
            tracing::warn!(
                stored = self.stored,
                not_stored = self.not_stored,
                unfinished = self.unfinished,
                "the deadline drew near: unfinished objects were abandoned and are reported not stored"
            );
        } else {
            tracing::info!(
                stored = self.stored,
                not_stored = self.not_stored,
                "invocation done"
            );
        }
    }
}
