//! What a Lambda invocation hands the function, told apart by the event
//! itself: an SQS batch (each body decoded as `run` decodes messages), an
//! SNS event (each record's `Sns` object is the envelope `run` unwraps
//! from a queue), or an S3 or EventBridge event invoking the function
//! directly.

use serde_json::Value;

use crate::notification::{self, Notification, Unrecognized};

/// The work of one invocation.
#[derive(Debug)]
pub enum Invocation {
    /// An SQS batch: each message succeeds or fails on its own, and the
    /// answer names the failed ones.
    Queue(Vec<QueueMessage>),
    /// S3, SNS or EventBridge: the invocation succeeds or fails as a whole.
    Direct(Vec<Notification>),
}

/// One message of an SQS batch.
#[derive(Debug)]
pub struct QueueMessage {
    /// What a partial batch response names the message by.
    pub message_id: String,
    pub notification: Result<Notification, Unrecognized>,
}

/// Decodes an invocation's event.
pub fn decode(event: &Value) -> Result<Invocation, Unrecognized> {
    let records = event.get("Records").and_then(Value::as_array);
    let first = records.and_then(|records| records.first());
    // SQS and S3 records spell it `eventSource`, SNS records `EventSource`.
    let source = first
        .and_then(|record| record.get("eventSource").or(record.get("EventSource")))
        .and_then(Value::as_str);
    match (records, source) {
        (Some(records), Some("aws:sqs")) => records
            .iter()
            .enumerate()
            .map(|(index, record)| queue_message(index, record))
            .collect::<Result<_, _>>()
            .map(Invocation::Queue),
        (Some(records), Some("aws:sns")) => records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                let envelope = record
                    .get("Sns")
                    .ok_or_else(|| unrecognized(index, "no Sns"))?;
                notification::decode_json(envelope)
                    .map_err(|error| unrecognized(index, &error.reason))
            })
            .collect::<Result<_, _>>()
            .map(Invocation::Direct),
        _ => notification::decode_json(event).map(|decoded| Invocation::Direct(vec![decoded])),
    }
}

fn queue_message(index: usize, record: &Value) -> Result<QueueMessage, Unrecognized> {
    let message_id = record
        .get("messageId")
        .and_then(Value::as_str)
        .ok_or_else(|| unrecognized(index, "SQS record without messageId"))?;
    let notification = match record.get("body") {
        Some(Value::String(body)) => notification::decode(body),
        _ => Err(Unrecognized {
            reason: "SQS record without a body".into(),
        }),
    };
    Ok(QueueMessage {
        message_id: message_id.to_owned(),
        notification,
    })
}

fn unrecognized(index: usize, reason: &str) -> Unrecognized {
    Unrecognized {
        reason: format!("Records[{index}]: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notification::{Envelope, Source};

    fn s3_event(bucket: &str, key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
        }]})
    }

    fn keys(notification: &Notification) -> Vec<&str> {
        match notification {
            Notification::Objects { objects, .. } => {
                objects.iter().map(|object| object.key.as_str()).collect()
            }
            Notification::TestEvent { .. } => Vec::new(),
        }
    }

    #[test]
    fn an_s3_event_invoking_the_function_is_one_direct_notification() {
        let Invocation::Direct(notifications) = decode(&s3_event("logs", "a+b.log")).unwrap()
        else {
            panic!("not direct");
        };
        assert_eq!(notifications.len(), 1);
        assert_eq!(keys(&notifications[0]), ["a b.log"]);
    }

    #[test]
    fn an_sqs_batch_keeps_each_message_id_with_its_decoded_body() {
        let event = json!({"Records": [
            {"messageId": "m-1", "eventSource": "aws:sqs",
             "body": s3_event("logs", "one.log").to_string()},
            {"messageId": "m-2", "eventSource": "aws:sqs", "body": "not json"},
        ]});
        let Invocation::Queue(messages) = decode(&event).unwrap() else {
            panic!("not a queue batch");
        };
        assert_eq!(messages[0].message_id, "m-1");
        assert_eq!(
            keys(messages[0].notification.as_ref().unwrap()),
            ["one.log"]
        );
        assert_eq!(messages[1].message_id, "m-2");
        assert!(messages[1].notification.is_err());
    }

    #[test]
    fn an_sns_event_is_unwrapped_like_an_sns_envelope_on_a_queue() {
        let event = json!({"Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "MessageId": "n-1",
                    "Message": s3_event("logs", "via-sns.log").to_string()},
        }]});
        let Invocation::Direct(notifications) = decode(&event).unwrap() else {
            panic!("not direct");
        };
        let Notification::Objects { envelope, .. } = &notifications[0] else {
            panic!("no objects");
        };
        assert_eq!(
            *envelope,
            Envelope {
                source: Source::S3Event,
                via_sns: true
            }
        );
        assert_eq!(keys(&notifications[0]), ["via-sns.log"]);
    }

    #[test]
    fn an_eventbridge_event_is_decoded_as_run_decodes_it() {
        let event = json!({
            "source": "aws.s3", "detail-type": "Object Created", "region": "eu-west-1",
            "detail": {"bucket": {"name": "logs"}, "object": {"key": "eb.log"}, "reason": "PutObject"},
        });
        let Invocation::Direct(notifications) = decode(&event).unwrap() else {
            panic!("not direct");
        };
        assert_eq!(keys(&notifications[0]), ["eb.log"]);
    }

    #[test]
    fn an_event_of_another_service_is_unrecognized() {
        let event = json!({"Records": [{"eventSource": "aws:dynamodb"}]});
        assert!(decode(&event).is_err());
        assert!(decode(&json!({"hello": "world"})).is_err());
    }
}
