//! CloudWatch Logs subscription records delivered to S3 by Firehose. After
//! the host's multi-member gunzip an object holds the records' JSON objects
//! back to back, usually without newlines between them, so one "line" may
//! hold many records: they are read with serde_json's stream reader. Each
//! `logEvents` element is a row (`timestamp`, epoch milliseconds, is
//! `_time`; `message` is `_msg`) carrying its record's `owner`, `logGroup`,
//! `logStream` and `subscriptionFilters`. `CONTROL_MESSAGE` records
//! (CloudWatch's health checks) are dropped.
//!
//! Firehose keys have no extension and no fixed form, and the same stream
//! may carry other data, so this parser is chosen by the first line only
//! (`{"messageType":"DATA_MESSAGE"…`), never by key.

use s3logd_json_fields::{EpochUnit, Flat, JsonFields, Text};
use s3logd_parser_sdk::{Description, Options, Output, Parser};
use serde::Deserialize;

s3logd_parser_sdk::fields! {
    /// The static fields: each event's own `id`, and its record's origin.
    mod field {
        OWNER = "owner": String, "AWS account id of the log group";
        LOG_GROUP = "logGroup": String, "log group name";
        LOG_STREAM = "logStream": String, "log stream name";
        SUBSCRIPTION_FILTERS = "subscriptionFilters": StringList, "subscription filters that matched";
        ID = "id": String, "log event id";
    }
}

/// Prefix of the fields taken from JSON messages (`message.level`).
const MESSAGE_PREFIX: &str = "message";

pub struct CloudWatchFirehose {
    /// Set by `parse_json_messages`: fields from JSON messages.
    message_fields: Option<JsonFields>,
}

impl Parser for CloudWatchFirehose {
    fn describe() -> Description {
        Description::new(
            "cloudwatch-firehose",
            env!("CARGO_PKG_VERSION"),
            "CloudWatch Logs subscription records delivered to S3 by Firehose, one row per log event",
        )
        .format("CloudWatch Logs subscription record (Firehose to S3)")
        .first_line_pattern(r#"^\{"messageType":"(DATA|CONTROL)_MESSAGE""#)
        .first_line_pattern(r#"^\{"owner":"[^"]*","logGroup":"[^"]*","logStream":"#)
        .option(
            "parse_json_messages",
            "true: a message that is a JSON object also gives its keys as fields, flattened under `message.`",
            Some("false"),
        )
        .fields(field::schema())
        .time_source("logEvents[].timestamp (epoch milliseconds)")
    }

    fn open(_key: &str, options: &Options) -> Result<Self, String> {
        let parse_json_messages = match options.get("parse_json_messages") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "parse_json_messages must be true or false, not {other:?}"
                ));
            }
        };
        Ok(CloudWatchFirehose {
            message_fields: parse_json_messages.then(JsonFields::new),
        })
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let records = serde_json::Deserializer::from_str(line).into_iter::<Record>();
        for record in records {
            let record = record.map_err(|e| format!("not a CloudWatch Logs record: {e}"))?;
            match record.message_type.0.as_ref() {
                "DATA_MESSAGE" => self.data(out, &record),
                "CONTROL_MESSAGE" => {}
                other => return Err(format!("unknown messageType {other:?}")),
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(borrow)]
    message_type: Text<'a>,
    #[serde(borrow)]
    owner: Option<Text<'a>>,
    #[serde(borrow)]
    log_group: Option<Text<'a>>,
    #[serde(borrow)]
    log_stream: Option<Text<'a>>,
    #[serde(borrow, default)]
    subscription_filters: Vec<Text<'a>>,
    #[serde(borrow, default)]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    timestamp: i64,
    #[serde(borrow)]
    message: Text<'a>,
}

impl CloudWatchFirehose {
    fn data(&mut self, out: &mut Output, record: &Record<'_>) {
        for event in &record.log_events {
            let Some(time) = EpochUnit::Millis.nanos(event.timestamp) else {
                out.error(&format!(
                    "log event timestamp {} is out of range",
                    event.timestamp
                ));
                continue;
            };
            let message = event.message.0.as_ref();
            let mut flat = Flat::new();
            if let Some(fields) = &mut self.message_fields
                && message.starts_with('{')
            {
                // A message that only looks like JSON stays plain text: no fields, no error.
                let _not_json = fields.object(out, message, MESSAGE_PREFIX, &[], &mut flat);
            }
            let mut row = out.row();
            row.time(time).msg(message);
            for (id, value) in [
                (field::OWNER, &record.owner),
                (field::LOG_GROUP, &record.log_group),
                (field::LOG_STREAM, &record.log_stream),
                (field::ID, &event.id),
            ] {
                row.str_opt(id, value.as_ref().map(|text| &*text.0));
            }
            if !record.subscription_filters.is_empty() {
                row.str_list(
                    field::SUBSCRIPTION_FILTERS,
                    record.subscription_filters.iter().map(|f| f.0.as_ref()),
                );
            }
            flat.write(&mut row);
            out.finish_row();
        }
    }
}

s3logd_parser_sdk::export_parser!(CloudWatchFirehose);

#[cfg(test)]
mod tests;
