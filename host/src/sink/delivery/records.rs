//! Records as a store encoded them: filled by callers one object at a time
//! ([`Encoded`]), gathered into batches, and handed to the store as a view
//! ([`Records`]) of a whole batch or of the part of one still to deliver.

use std::sync::Arc;

use bytes::Bytes;

/// Where records came from, for `_id`s, dead letters and logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub bucket: String,
    pub key: String,
    /// The object's version id, else its ETag; empty when neither is known.
    pub version: String,
}

/// One record in an encoded buffer.
#[derive(Debug, Clone, Copy)]
struct Mark {
    start: u32,
    end: u32,
    /// Index into the buffer's groups.
    group: u32,
    line: u64,
    /// UTC nanoseconds; [`NO_TIME`] for none.
    time: i64,
}

const NO_TIME: i64 = i64::MIN;

/// Records of one object encoded for one store, as a caller fills them:
/// bytes back to back, each record ended by [`Encoded::end_record`].
pub struct Encoded {
    bytes: Vec<u8>,
    marks: Vec<Mark>,
    /// Group keys in use (Loki streams, CloudWatch Logs group and stream).
    groups: Vec<Box<str>>,
    origin: Arc<Origin>,
}

impl Encoded {
    /// Records of `origin`, written into `buffer` (cleared).
    pub fn new(mut buffer: Vec<u8>, origin: Arc<Origin>) -> Encoded {
        buffer.clear();
        Encoded {
            bytes: buffer,
            marks: Vec::new(),
            groups: vec!["".into()],
            origin,
        }
    }

    /// Where the record being encoded is written.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the record written since the last one ended. `group` sets apart
    /// records that must travel in separate streams or requests; `""` is
    /// no group.
    pub fn end_record(&mut self, line: u64, time: Option<i64>, group: &str) {
        let start = self.marks.last().map_or(0, |mark| mark.end);
        let group = match self.groups.iter().rposition(|known| &**known == group) {
            Some(index) => index,
            None => {
                self.groups.push(group.into());
                self.groups.len() - 1
            }
        };
        self.marks.push(Mark {
            start,
            end: u32::try_from(self.bytes.len()).expect("an encoded buffer stays below 4 GiB"),
            group: group as u32,
            line,
            time: time.unwrap_or(NO_TIME),
        });
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    pub fn records(&self) -> u64 {
        self.marks.len() as u64
    }

    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }
}

/// One caller's records inside a batch.
struct Part {
    bytes: Bytes,
    groups: Vec<Box<str>>,
    origin: Arc<Origin>,
}

/// Every record of one batch.
pub(super) struct Batch {
    parts: Vec<Part>,
    /// Every record, part by part, with the part it belongs to.
    marks: Vec<(u32, Mark)>,
}

impl Batch {
    pub(super) fn new(encoded: Vec<Encoded>) -> Batch {
        let mut parts = Vec::with_capacity(encoded.len());
        let mut marks = Vec::with_capacity(encoded.iter().map(|e| e.marks.len()).sum());
        for (
            index,
            Encoded {
                bytes,
                marks: own,
                groups,
                origin,
            },
        ) in encoded.into_iter().enumerate()
        {
            parts.push(Part {
                bytes: Bytes::from(bytes),
                groups,
                origin,
            });
            marks.extend(own.into_iter().map(|mark| (index as u32, mark)));
        }
        Batch { parts, marks }
    }

    /// The buffers back, where nothing else holds them any more.
    pub(super) fn into_buffers(self) -> impl Iterator<Item = Vec<u8>> {
        self.parts
            .into_iter()
            .filter_map(|part| part.bytes.try_into_mut().ok().map(Vec::from))
    }
}

/// Records of a batch, as a store receives them: all of it, or the part
/// still to deliver after a retry, a split or a per-record answer. Clones
/// are cheap and share the bytes, so a store may move one into a blocking
/// task.
#[derive(Clone)]
pub struct Records {
    batch: Arc<Batch>,
    /// Indices into the batch's marks, ascending; `None` for all.
    selected: Option<Arc<[u32]>>,
}

/// One record as a store reads it.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub bytes: &'a [u8],
    /// What [`Encoded::end_record`] was given; `""` for none.
    pub group: &'a str,
    /// The record's line in its object (1-based).
    pub line: u64,
    pub time: Option<i64>,
    pub origin: &'a Origin,
}

impl Records {
    pub(super) fn whole(batch: Arc<Batch>) -> Records {
        Records {
            batch,
            selected: None,
        }
    }

    pub fn len(&self) -> usize {
        match &self.selected {
            Some(selected) => selected.len(),
            None => self.batch.marks.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, in batch order; per-record answers follow this order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.indices().map(|index| self.get(index))
    }

    /// Encoded bytes of all the records.
    pub fn bytes_len(&self) -> u64 {
        match &self.selected {
            None => self
                .batch
                .parts
                .iter()
                .map(|part| part.bytes.len() as u64)
                .sum(),
            Some(_) => self.iter().map(|record| record.bytes.len() as u64).sum(),
        }
    }

    /// The records' bytes back to back, as buffers to send one after the
    /// other: for a whole batch, the callers' buffers themselves.
    pub fn concatenated(&self) -> Vec<Bytes> {
        match &self.selected {
            None => self
                .batch
                .parts
                .iter()
                .map(|part| part.bytes.clone())
                .collect(),
            Some(_) => {
                let mut joined = Vec::with_capacity(self.bytes_len() as usize);
                for record in self.iter() {
                    joined.extend_from_slice(record.bytes);
                }
                vec![Bytes::from(joined)]
            }
        }
    }

    /// The records at `positions` (ascending positions in [`Self::iter`]).
    pub(super) fn subset(&self, positions: impl IntoIterator<Item = usize>) -> Records {
        let indices: Vec<u32> = self.indices().collect();
        Records {
            batch: self.batch.clone(),
            selected: Some(positions.into_iter().map(|at| indices[at]).collect()),
        }
    }

    /// The first and the second half (the first has one fewer when odd).
    pub(super) fn halves(&self) -> (Records, Records) {
        let half = self.len() / 2;
        (self.subset(0..half), self.subset(half..self.len()))
    }

    /// Where each record belongs: its part of the batch, in [`Self::iter`] order.
    pub(super) fn parts(&self) -> impl Iterator<Item = usize> + '_ {
        self.indices()
            .map(|index| self.batch.marks[index as usize].0 as usize)
    }

    fn indices(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match &self.selected {
            Some(selected) => Box::new(selected.iter().copied()),
            None => Box::new(0..self.batch.marks.len() as u32),
        }
    }

    fn get(&self, index: u32) -> RecordRef<'_> {
        let (part, mark) = &self.batch.marks[index as usize];
        let part = &self.batch.parts[*part as usize];
        RecordRef {
            bytes: &part.bytes[mark.start as usize..mark.end as usize],
            group: &part.groups[mark.group as usize],
            line: mark.line,
            time: (mark.time != NO_TIME).then_some(mark.time),
            origin: &part.origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(origin: &str, records: &[(&str, &str)]) -> Encoded {
        let mut encoded = Encoded::new(
            Vec::new(),
            Arc::new(Origin {
                bucket: "b".into(),
                key: origin.into(),
                version: String::new(),
            }),
        );
        for (line, (text, group)) in records.iter().enumerate() {
            encoded.bytes().extend_from_slice(text.as_bytes());
            encoded.end_record(line as u64 + 1, Some(line as i64), group);
        }
        encoded
    }

    fn texts(records: &Records) -> Vec<String> {
        records
            .iter()
            .map(|record| String::from_utf8(record.bytes.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_reads_back_every_record_with_its_group_line_time_and_origin() {
        let batch = Batch::new(vec![
            encoded("k1", &[("a\n", ""), ("bb\n", "s1"), ("c\n", "s2")]),
            encoded("k2", &[("dd\n", "s1")]),
        ]);
        let records = Records::whole(Arc::new(batch));
        assert_eq!(records.len(), 4);
        assert_eq!(texts(&records), ["a\n", "bb\n", "c\n", "dd\n"]);
        let all: Vec<(&str, u64, Option<i64>, &str)> = records
            .iter()
            .map(|r| (r.group, r.line, r.time, r.origin.key.as_str()))
            .collect();
        assert_eq!(
            all,
            [
                ("", 1, Some(0), "k1"),
                ("s1", 2, Some(1), "k1"),
                ("s2", 3, Some(2), "k1"),
                ("s1", 1, Some(0), "k2")
            ]
        );
        assert_eq!(records.bytes_len(), 10);
        // Whole: the callers' buffers as they are.
        assert_eq!(records.concatenated().len(), 2);
        assert_eq!(records.parts().collect::<Vec<_>>(), [0, 0, 0, 1]);
    }

    #[test]
    fn subsets_and_halves_keep_batch_order() {
        let records = Records::whole(Arc::new(Batch::new(vec![
            encoded("k1", &[("a\n", ""), ("b\n", "")]),
            encoded("k2", &[("c\n", ""), ("d\n", ""), ("e\n", "")]),
        ])));
        let subset = records.subset([1, 2, 4]);
        assert_eq!(texts(&subset), ["b\n", "c\n", "e\n"]);
        assert_eq!(subset.bytes_len(), 6);
        assert_eq!(subset.concatenated(), [Bytes::from_static(b"b\nc\ne\n")]);
        assert_eq!(subset.parts().collect::<Vec<_>>(), [0, 1, 1]);
        let (first, second) = subset.halves();
        assert_eq!(
            (texts(&first), texts(&second)),
            (vec!["b\n".into()], vec!["c\n".into(), "e\n".into()])
        );
        let nested = second.subset([1]);
        assert_eq!(texts(&nested), ["e\n"]);
    }
}
