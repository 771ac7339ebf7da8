//! Reading a `_bulk` answer (filtered to `errors` and each item's status
//! and error) into what became of each record.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::BulkAction;
use crate::sink::delivery::{Answer, RecordAnswer};
use crate::sink::http::excerpt;

#[derive(Deserialize)]
struct Bulk {
    errors: bool,
    #[serde(default)]
    items: Vec<BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: String,
}

/// What a 2xx answer to `expected` actions says of each.
pub(super) fn read(body: &[u8], expected: usize, action: BulkAction) -> Answer {
    let bulk: Bulk = match serde_json::from_slice(body) {
        Ok(bulk) => bulk,
        // Cut short or not a bulk answer (a proxy's page): whether anything
        // was stored is unknown, and sending again is safe with `create`
        // and derived ids.
        Err(error) => {
            return Answer::Retry {
                reason: format!("unreadable _bulk answer ({error}): {}", excerpt(body)),
                retry_after: None,
            };
        }
    };
    if !bulk.errors {
        return Answer::Stored;
    }
    if bulk.items.len() != expected {
        return Answer::Retry {
            reason: format!(
                "the _bulk answer lists {} items for {expected} actions",
                bulk.items.len()
            ),
            retry_after: None,
        };
    }
    let answers = bulk
        .items
        .into_iter()
        .map(|item| {
            let Some((_, item)) = item.into_iter().next() else {
                return RecordAnswer::Retry("an empty _bulk item".into());
            };
            item_answer(item, action)
        })
        .collect();
    Answer::PerRecord(answers)
}

fn item_answer(item: Item, action: BulkAction) -> RecordAnswer {
    let status = item.status;
    let reason = || match &item.error {
        Some(error) => format!("status {status}: {}: {}", error.kind, error.reason),
        None => format!("status {status}"),
    };
    match status {
        200..=299 => RecordAnswer::Stored,
        // The document of this `_id` is there: stored by an earlier delivery.
        409 if action == BulkAction::Create => RecordAnswer::Stored,
        429 | 500..=599 => RecordAnswer::Retry(reason()),
        _ => RecordAnswer::Refused(reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_errors_stores_everything() {
        let body = br#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(read(body, 1, BulkAction::Create), Answer::Stored);
    }

    #[test]
    fn items_are_read_one_by_one() {
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[x]: version conflict"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [status]"}}},
            {"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
        ]}"#;
        assert_eq!(
            read(body, 5, BulkAction::Create),
            Answer::PerRecord(vec![
                RecordAnswer::Stored,
                RecordAnswer::Stored,
                RecordAnswer::Retry(
                    "status 429: es_rejected_execution_exception: queue full".into()
                ),
                RecordAnswer::Refused(
                    "status 400: document_parsing_exception: failed to parse field [status]".into()
                ),
                RecordAnswer::Retry(
                    "status 503: unavailable_shards_exception: primary shard is not active".into()
                ),
            ])
        );
    }

    #[test]
    fn a_conflict_is_a_duplicate_only_for_create() {
        let body = br#"{"errors":true,"items":[{"index":{"status":409}}]}"#;
        assert_eq!(
            read(body, 1, BulkAction::Index),
            Answer::PerRecord(vec![RecordAnswer::Refused("status 409".into())])
        );
    }

    #[test]
    fn unreadable_or_mismatched_answers_are_sent_again() {
        for (body, expected) in [
            (&b"<html>bad gateway</html>"[..], 1),
            (br#"{"errors":true,"items":[{"create":{"status":201}}"#, 1),
            (br#"{"errors":true,"items":[{"create":{"status":201}}]}"#, 2),
        ] {
            let answer = read(body, expected, BulkAction::Create);
            assert!(matches!(answer, Answer::Retry { .. }), "{answer:?}");
        }
    }
}
