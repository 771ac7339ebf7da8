//! One batch from its first attempt until every record is accounted for:
//! sent, retried with backoff, split where the store finds it too large,
//! halved down to the records a store refuses on their own, answered per
//! record where the store does, and what is refused for good written to
//! the dead-letter output. Each caller's delivery resolves with the worst
//! that became of its records.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, Outage};
use super::batch::BatchLimits;
use super::records::{Batch, Encoded, Records};
use super::{Answer, RecordAnswer, SinkError, SinkStats, Store};
use crate::sink::dead_letter::{DeadLetter, Letter};

pub(super) struct Deliverer<S> {
    pub name: String,
    pub store: S,
    pub limits: BatchLimits,
    pub dead_letter: DeadLetter,
    pub stats: Arc<SinkStats>,
    pub cancel: CancellationToken,
    pub backoff: Backoff,
    pub outage: Mutex<Outage>,
}

/// What became of each caller's records so far.
struct Outcomes(Vec<Option<SinkError>>);

impl Outcomes {
    /// Records of these parts failed with `error`; a failure outweighs a
    /// cancellation, which only releases the message.
    fn fail(&mut self, parts: impl Iterator<Item = usize>, error: &SinkError) {
        for part in parts {
            let outcome = &mut self.0[part];
            if outcome.is_none() || *outcome == Some(SinkError::Cancelled) {
                *outcome = Some(error.clone());
            }
        }
    }
}

impl<S: Store> Deliverer<S> {
    /// Delivers one batch: what became of each caller's records, and the
    /// callers' buffers for reuse.
    pub(super) async fn deliver(
        &self,
        chunks: Vec<Encoded>,
    ) -> (Vec<Result<(), SinkError>>, Vec<Vec<u8>>) {
        let mut outcomes = Outcomes(vec![None; chunks.len()]);
        let batch = Arc::new(Batch::new(chunks));
        let refused = self
            .send_all(Records::whole(batch.clone()), &mut outcomes)
            .await;
        if !refused.is_empty() {
            self.dead_letter(refused, &mut outcomes).await;
        }
        let results = outcomes
            .0
            .into_iter()
            .map(|outcome| outcome.map_or(Ok(()), Err))
            .collect();
        let buffers = match Arc::try_unwrap(batch) {
            Ok(batch) => batch.into_buffers().collect(),
            // A request the HTTP client has not let go of yet.
            Err(_) => Vec::new(),
        };
        (results, buffers)
    }

    /// Sends until every record is stored, refused for good (returned with
    /// the store's reason), failed or cancelled.
    async fn send_all(&self, all: Records, outcomes: &mut Outcomes) -> Vec<(Records, String)> {
        let mut refused = Vec::new();
        let oversized: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, record)| record.bytes.len() as u64 > self.limits.max_record_bytes)
            .map(|(at, _)| at)
            .collect();
        let mut work = VecDeque::new();
        if oversized.is_empty() {
            work.push_back(all);
        } else {
            for &at in &oversized {
                let record = all.subset([at]);
                let reason = format!(
                    "record of {} bytes is longer than the sink's max_record_bytes ({})",
                    record.bytes_len(),
                    self.limits.max_record_bytes
                );
                refused.push((record, reason));
            }
            let rest: Vec<usize> = (0..all.len())
                .filter(|at| !oversized.contains(at))
                .collect();
            if !rest.is_empty() {
                work.push_back(all.subset(rest));
            }
        }
        let mut failed_attempts = 0u32;
        while let Some(records) = work.pop_front() {
            if records.len() > 1 && records.bytes_len() > self.limits.max_bytes {
                push_halves(&mut work, &records);
                continue;
            }
            self.stats.requests.fetch_add(1, Relaxed);
            let answer = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    work.push_front(records);
                    break;
                }
                answer = self.store.send(&records) => answer,
            };
            let retry = match answer {
                Answer::Stored => {
                    self.stored(&records);
                    None
                }
                Answer::Retry {
                    reason,
                    retry_after,
                } => Some((records, reason, retry_after)),
                Answer::Refused { reason } | Answer::TooLarge { reason } => {
                    if records.len() == 1 {
                        refused.push((records, reason));
                    } else {
                        tracing::debug!(sink = %self.name, records = records.len(), %reason, "request refused; sending its halves apart");
                        push_halves(&mut work, &records);
                    }
                    None
                }
                Answer::PerRecord(answers) if answers.len() == records.len() => {
                    let mut stored = Vec::new();
                    let mut again = Vec::new();
                    let mut reason_again = String::new();
                    for (at, answer) in answers.into_iter().enumerate() {
                        match answer {
                            RecordAnswer::Stored => stored.push(at),
                            RecordAnswer::Retry(reason) => {
                                again.push(at);
                                reason_again = reason;
                            }
                            RecordAnswer::Refused(reason) => {
                                refused.push((records.subset([at]), reason));
                            }
                        }
                    }
                    if !stored.is_empty() {
                        self.stored(&records.subset(stored));
                    }
                    (!again.is_empty()).then(|| (records.subset(again), reason_again, None))
                }
                Answer::PerRecord(answers) => {
                    let reason = format!(
                        "the store answered for {} of {} records",
                        answers.len(),
                        records.len()
                    );
                    self.failed(&records, reason, outcomes);
                    None
                }
                Answer::Failed { reason } => {
                    self.failed(&records, reason, outcomes);
                    None
                }
            };
            let Some((records, reason, retry_after)) = retry else {
                continue;
            };
            self.lock_outage().failed(&self.name, &reason);
            self.stats.retries.fetch_add(1, Relaxed);
            let wait = self.backoff.wait(failed_attempts, retry_after);
            failed_attempts = failed_attempts.saturating_add(1);
            work.push_front(records);
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for records in work {
            outcomes.fail(records.parts(), &SinkError::Cancelled);
        }
        refused
    }

    fn stored(&self, records: &Records) {
        self.lock_outage().recovered(&self.name);
        self.stats
            .records_sent
            .fetch_add(records.len() as u64, Relaxed);
        self.stats
            .bytes_sent
            .fetch_add(records.bytes_len(), Relaxed);
    }

    fn failed(&self, records: &Records, reason: String, outcomes: &mut Outcomes) {
        self.stats.failures.fetch_add(records.len() as u64, Relaxed);
        tracing::error!(
            sink = %self.name, records = records.len(), reason = %reason,
            "the store refused a request; its records are not stored"
        );
        let error = SinkError::Failed {
            sink: self.name.clone(),
            reason,
        };
        outcomes.fail(records.parts(), &error);
    }

    /// Writes records the store refused for good to the dead-letter output;
    /// until that succeeded they are not accounted for.
    async fn dead_letter(&self, refused: Vec<(Records, String)>, outcomes: &mut Outcomes) {
        let letters: Vec<Letter<'_>> = refused
            .iter()
            .flat_map(|(records, reason)| {
                records.iter().map(move |record| Letter {
                    sink: &self.name,
                    origin: record.origin,
                    line: record.line,
                    reason,
                    record: record.bytes,
                })
            })
            .collect();
        let written = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(None),
            written = self.dead_letter.write(&letters) => written.map_err(Some),
        };
        let count = letters.len() as u64;
        match written {
            Ok(()) => {
                self.stats.records_dead_lettered.fetch_add(count, Relaxed);
                tracing::warn!(
                    sink = %self.name, records = count, reason = %refused[0].1,
                    "the store refused records for good; they are in the dead-letter output"
                );
            }
            Err(None) => {
                for (records, _) in &refused {
                    outcomes.fail(records.parts(), &SinkError::Cancelled);
                }
            }
            Err(Some(reason)) => {
                self.stats.failures.fetch_add(count, Relaxed);
                tracing::error!(
                    sink = %self.name, records = count, error = %reason,
                    "writing refused records to the dead-letter output failed; their objects fail"
                );
                let error = SinkError::DeadLetter {
                    sink: self.name.clone(),
                    reason,
                };
                for (records, _) in &refused {
                    outcomes.fail(records.parts(), &error);
                }
            }
        }
    }

    fn lock_outage(&self) -> std::sync::MutexGuard<'_, Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Queues the two halves of `records` to be sent next, in order.
fn push_halves(work: &mut VecDeque<Records>, records: &Records) {
    let (first, second) = records.halves();
    work.push_front(second);
    work.push_front(first);
}
