//! The SQS side of the collector: long polling for notifications while
//! there is room for more work, one task per message that decodes it, works
//! on its objects (at most `queue.concurrency` objects at once across all
//! messages), keeps the message invisible with a heartbeat meanwhile, and
//! finally deletes, keeps or releases it (see [`crate::ack`]).
//!
//! Several processes may consume one queue: SQS hands each message to one
//! of them at a time, and the heartbeat keeps it that way while it is in
//! work.
//!
//! A message received more than `queue.max_receive_count` times is given
//! up: it is neither worked on, extended nor deleted, so that it stays for
//! the queue's redrive policy (a dead-letter queue) instead of costing a
//! full fetch and parse on every receive. Unrecognized bodies are never
//! worked on; they are counted on every receive and logged on the first.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ack::{self, Ack, ObjectOutcome};
use crate::budget::ByteBudget;
use crate::config::QueueConfig;
use crate::errors::error_chain;
use crate::metrics::{Metrics, Value};
use crate::notification::{self, Notification, ObjectRef};
use crate::object::ObjectProcessor;
use crate::shutdown::{Drained, Shutdown};

/// Longest pause between failed receives.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(30);
/// How long releasing the messages may take once the grace period expired.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Collector {
    pub sqs: aws_sdk_sqs::Client,
    pub queue: QueueConfig,
    pub processor: Arc<ObjectProcessor>,
    /// One permit per object processed at once.
    pub object_slots: Arc<Semaphore>,
    pub budget: Arc<ByteBudget>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    pub grace_period: Duration,
}

impl Collector {
    /// Receives and works on messages until shutdown, then drains.
    pub async fn run(self: Arc<Self>) {
        let stop = self.shutdown.stop_receiving().clone();
        let messages = TaskTracker::new();
        let mut backoff = Duration::from_secs(1);
        loop {
            let max_messages = tokio::select! {
                () = stop.cancelled() => break,
                max = self.room_for_work() => max,
            };
            let mut receive = Box::pin({
                let this = self.clone();
                async move { this.receive(max_messages).await }
            });
            let received = tokio::select! {
                received = &mut receive => received,
                () = stop.cancelled() => {
                    // SQS may already have handed messages to this long
                    // poll and hidden them; dropped, they would stay hidden
                    // until their visibility timeout instead of going to
                    // another consumer now.
                    messages.spawn(self.clone().release_received(receive));
                    break;
                }
            };
            match received {
                Ok(received) => {
                    backoff = Duration::from_secs(1);
                    self.metrics.set_ready();
                    for message in received {
                        messages.spawn(self.clone().handle(message));
                    }
                }
                Err(error) => {
                    self.metrics.receive_failures.inc();
                    tracing::warn!(%error, retry_in = ?backoff, "receiving from the queue failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_RECEIVE_BACKOFF);
                }
            }
        }
        self.metrics.set_shutting_down();
        messages.close();
        tracing::info!(
            messages_in_flight = messages.len(),
            grace_period = ?self.grace_period,
            "stopped receiving; finishing in-flight messages"
        );
        match self
            .shutdown
            .drain(messages.wait(), self.grace_period)
            .await
        {
            Drained::Finished => tracing::info!("every in-flight message finished"),
            Drained::GraceExpired => {
                tracing::warn!(
                    messages_in_flight = messages.len(),
                    "grace period expired; releasing unfinished messages"
                );
                // A receive in flight at the signal returns within its wait
                // time, and what it returns is released as well.
                let wait_time = Duration::from_secs(self.queue.wait_time_secs.into());
                if tokio::time::timeout(RELEASE_TIMEOUT + wait_time, messages.wait())
                    .await
                    .is_err()
                {
                    tracing::error!(
                        "releasing unfinished messages timed out; they return after their visibility timeout"
                    );
                }
            }
        }
    }

    /// Waits until an object slot and some of the byte budget are free, and
    /// returns how many messages to ask for: no more than there are free
    /// slots, so that messages this process cannot start yet stay
    /// available to the other consumers.
    async fn room_for_work(&self) -> i32 {
        drop(
            self.object_slots
                .acquire()
                .await
                .expect("the slots are never closed"),
        );
        self.budget.wait_for_room().await;
        let free = self.object_slots.available_permits().max(1);
        free.min(self.queue.max_messages as usize) as i32
    }

    async fn receive(&self, max_messages: i32) -> Result<Vec<Message>, String> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(max_messages)
            .wait_time_seconds(self.queue.wait_time_secs as i32)
            .visibility_timeout(self.queue.visibility_timeout_secs as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|error| error_chain(&error))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Gives back at once whatever a receive still in flight when draining
    /// began returns.
    async fn release_received(
        self: Arc<Self>,
        receive: impl Future<Output = Result<Vec<Message>, String>>,
    ) {
        // A receive that failed took no message.
        let Ok(received) = receive.await else { return };
        for message in received {
            self.metrics.messages_received.inc();
            if let Some(receipt) = message.receipt_handle.as_deref() {
                let id = message.message_id.as_deref().unwrap_or("-");
                self.release(id, receipt).await;
            }
        }
    }

    async fn handle(self: Arc<Self>, message: Message) {
        let _in_flight = InFlight::new(&self.metrics.messages_in_flight);
        self.metrics.messages_received.inc();
        let id = message.message_id.as_deref().unwrap_or("-");
        let Some(receipt) = message.receipt_handle.as_deref() else {
            tracing::warn!(message_id = id, "message without a receipt handle");
            return;
        };
        let receive_count: u32 = message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        let notification = match notification::decode(message.body.as_deref().unwrap_or("")) {
            Ok(notification) => notification,
            Err(unrecognized) => {
                self.metrics.messages_unrecognized.inc();
                if receive_count <= 1 {
                    tracing::warn!(message_id = id, reason = %unrecognized.reason, "unrecognized message left on the queue for its redrive policy");
                }
                return;
            }
        };
        let (objects, ignored_events) = match notification {
            Notification::TestEvent { .. } => {
                self.metrics.test_events.inc();
                self.delete(id, receipt).await;
                return;
            }
            Notification::Objects {
                objects,
                ignored_events,
                ..
            } => (objects, ignored_events),
        };
        self.metrics.events_ignored.add(ignored_events.len() as u64);
        if !objects.is_empty() && receive_count > self.queue.max_receive_count {
            self.metrics.messages_given_up.inc();
            tracing::warn!(
                message_id = id,
                receive_count,
                "message received more than queue.max_receive_count times; left to the queue's redrive policy"
            );
            return;
        }
        let work = self.clone().process_objects(id, objects);
        let work_done = CancellationToken::new();
        let (outcomes, ()) = tokio::join!(
            async {
                let outcomes = tokio::select! {
                    // Work that ended (stored, or abandoned by its sink)
                    // says best what becomes of the message.
                    biased;
                    outcomes = work => outcomes,
                    () = self.shutdown.abandon().cancelled() => vec![ObjectOutcome::Unfinished],
                };
                work_done.cancel();
                outcomes
            },
            self.heartbeat(id, receipt, &work_done),
        );
        match ack::decide(&outcomes) {
            Ack::Delete => self.delete(id, receipt).await,
            Ack::Keep => tracing::warn!(
                message_id = id,
                "message kept: an object failed; it returns after its visibility timeout"
            ),
            Ack::Release => self.release(id, receipt).await,
        }
    }

    /// Works on a message's objects concurrently, each waiting for a slot.
    async fn process_objects(
        self: Arc<Self>,
        message_id: &str,
        objects: Vec<ObjectRef>,
    ) -> Vec<ObjectOutcome> {
        let mut tasks = JoinSet::new();
        for object in objects {
            let this = self.clone();
            let message_id = message_id.to_owned();
            tasks.spawn(async move { this.process_object(&message_id, object).await });
        }
        tasks.join_all().await
    }

    async fn process_object(&self, message_id: &str, object: ObjectRef) -> ObjectOutcome {
        // Objects not started when draining begins are left to the next
        // consumer rather than started late.
        let _slot = tokio::select! {
            // A free slot must not win over a drain that already began.
            biased;
            () = self.shutdown.stop_receiving().cancelled() => return ObjectOutcome::Unfinished,
            slot = self.object_slots.acquire() => slot.expect("the slots are never closed"),
        };
        let _in_flight = InFlight::new(&self.metrics.objects_in_flight);
        let result = self.processor.process(&object).await;
        ack::outcome_of(result, &object, message_id, &self.metrics)
    }

    /// Keeps the message invisible while it is in work: extends its
    /// visibility every interval until `work_done`.
    /// An extension already sent is awaited, never dropped: dropped, it
    /// could still reach SQS after the delete or release that follows.
    async fn heartbeat(&self, message_id: &str, receipt: &str, work_done: &CancellationToken) {
        let period = Duration::from_secs(self.queue.heartbeat_interval_secs.into());
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // An extension that took longer than a period (SQS failing, the
        // SDK retrying) is followed by the next one a period later, not by
        // a burst of catch-up calls that each extend the same message.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = work_done.cancelled() => return,
            }
            let extended = self
                .set_visibility(receipt, self.queue.visibility_timeout_secs as i32)
                .await;
            match extended {
                Ok(_) => self.metrics.heartbeats.inc(),
                Err(error) => {
                    self.metrics.heartbeat_failures.inc();
                    tracing::warn!(
                        message_id,
                        error = error_chain(&error),
                        "extending the message's visibility failed; another consumer may get it"
                    );
                }
            }
        }
    }

    /// Hides the message for `seconds` from now; 0 makes it visible at once.
    async fn set_visibility(
        &self,
        receipt: &str,
        seconds: i32,
    ) -> Result<(), impl std::error::Error + use<>> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(drop)
    }

    async fn delete(&self, message_id: &str, receipt: &str) {
        let deleted = self
            .sqs
            .delete_message()
            .queue_url(&self.queue.url)
            .receipt_handle(receipt)
            .send()
            .await;
        match deleted {
            Ok(_) => self.metrics.messages_deleted.inc(),
            Err(error) => {
                self.metrics.delete_failures.inc();
                tracing::warn!(
                    message_id,
                    error = error_chain(&error),
                    "deleting the message failed; it will be received again"
                );
            }
        }
    }

    /// Makes the message visible again now, for another consumer.
    async fn release(&self, message_id: &str, receipt: &str) {
        let released = self.set_visibility(receipt, 0).await;
        match released {
            Ok(_) => self.metrics.messages_released.inc(),
            Err(error) => {
                self.metrics.release_failures.inc();
                tracing::warn!(
                    message_id,
                    error = error_chain(&error),
                    "releasing the message failed; it returns after its visibility timeout"
                );
            }
        }
    }
}

/// Raises a gauge for as long as it lives.
struct InFlight<'a>(&'a Value);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a Value) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.sub(1);
    }
}
