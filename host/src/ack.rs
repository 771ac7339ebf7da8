//! What becomes of a message once its objects were worked on: deleted only
//! when every object it names was stored completely.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::Metrics;
use crate::notification::ObjectRef;
use crate::object::NotStored;
use crate::pipeline::ObjectSummary;

/// How one object of a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Parsed to the end and every record acknowledged by the sink.
    Stored,
    /// Failed for good on this attempt (corrupt data, parser failure, a
    /// store that rejects the records, a refused bucket).
    Failed,
    /// Not finished because the collector is shutting down: never started,
    /// or its delivery abandoned when the grace period expired.
    Unfinished,
}

/// What to do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Every object is stored (or the message named none).
    Delete,
    /// Leave it invisible until its visibility timeout: a retry now would
    /// most likely fail the same way, and after enough receives the queue's
    /// redrive policy moves it to the dead-letter queue.
    Keep,
    /// Make it visible again now so that another consumer takes it over.
    Release,
}

/// Counts and logs how the object of message `message_id` ended, as every
/// consumer of notifications (the queue loop, the Lambda function) does.
pub fn outcome_of(
    result: Result<ObjectSummary, NotStored>,
    object: &ObjectRef,
    message_id: &str,
    metrics: &Metrics,
) -> ObjectOutcome {
    match result {
        Ok(summary) => {
            metrics.objects_processed.inc();
            if let Some(delay) = delay_since(object.event_time.as_deref()) {
                metrics.object_delay.observe(delay);
            }
            tracing::info!(
                message_id,
                bucket = %object.bucket,
                key = %object.key,
                parser = %summary.parser,
                lines = summary.outcome.lines,
                records = summary.outcome.records,
                line_errors = summary.outcome.line_errors,
                "object stored"
            );
            ObjectOutcome::Stored
        }
        Err(NotStored::Abandoned) => ObjectOutcome::Unfinished,
        Err(NotStored::Failed(failure)) => {
            metrics.object_failed(failure.reason);
            tracing::error!(
                message_id,
                bucket = %object.bucket,
                key = %object.key,
                reason = failure.reason.label(),
                detail = %failure.detail,
                "object failed"
            );
            ObjectOutcome::Failed
        }
    }
}

/// How long ago `event_time` (RFC 3339, as S3 and EventBridge write it)
/// was; `None` without a readable time. A clock behind S3's counts as no
/// delay.
fn delay_since(event_time: Option<&str>) -> Option<Duration> {
    let event = crate::time::parse_time(event_time?).ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(now.saturating_sub(Duration::from_secs(u64::try_from(event).ok()?)))
}

pub fn decide(outcomes: &[ObjectOutcome]) -> Ack {
    if outcomes.contains(&ObjectOutcome::Failed) {
        Ack::Keep
    } else if outcomes.contains(&ObjectOutcome::Unfinished) {
        Ack::Release
    } else {
        Ack::Delete
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectOutcome::*;
    use super::*;

    #[test]
    fn deleted_only_when_every_object_is_stored() {
        assert_eq!(decide(&[Stored]), Ack::Delete);
        assert_eq!(decide(&[Stored, Stored, Stored]), Ack::Delete);
        assert_eq!(decide(&[Stored, Failed, Stored]), Ack::Keep);
        assert_eq!(decide(&[Failed]), Ack::Keep);
    }

    #[test]
    fn a_message_naming_no_object_is_deleted() {
        assert_eq!(decide(&[]), Ack::Delete);
    }

    #[test]
    fn the_delay_is_counted_from_the_event_time() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let minutes_ago = crate::time::format_time(now as i64 - 600).replace('Z', ".123Z");
        let delay = delay_since(Some(&minutes_ago)).expect("a readable time");
        assert!((600..=602).contains(&delay.as_secs()), "{delay:?}");
        let ahead = crate::time::format_time(now as i64 + 600);
        assert_eq!(delay_since(Some(&ahead)), Some(Duration::ZERO));
        assert_eq!(delay_since(Some("yesterday")), None);
        assert_eq!(delay_since(None), None);
    }

    #[test]
    fn unfinished_work_is_released_unless_something_failed() {
        assert_eq!(decide(&[Stored, Unfinished]), Ack::Release);
        assert_eq!(decide(&[Unfinished, Failed]), Ack::Keep);
    }
}
