use crate::{Counters, Decoder, Encoder, Entry, FieldType, Slot, Value};

fn decode_all<'a>(batch: &'a [u8], input: &'a str) -> Vec<(Entry<'a>, Vec<Value<'a>>)> {
    let mut decoder = Decoder::new(batch, input).unwrap();
    let mut out = Vec::new();
    let mut values = Vec::new();
    while let Some(entry) = decoder.next_entry(&mut values).unwrap() {
        let row_values = match entry {
            Entry::Row(_) => values.clone(),
            _ => Vec::new(),
        };
        out.push((entry, row_values));
    }
    out
}

#[test]
fn round_trips_every_kind_of_value() {
    let input = "GET /a b\nsecond line\n";
    let mut enc = Encoder::new(input);
    enc.declare_field(FieldType::String, "extra_1");
    let method = enc.str(&input[0..3]);
    let owned = String::from("built");
    let built = enc.str(&owned);
    let mut list = enc.list();
    list.str(&input[4..6]);
    list.str("not in input");
    list.int(-7);
    let list = list.finish();
    let msg = enc.str(&input[0..8]);
    enc.row(
        Some(1_530_570_180_186_641_000),
        msg,
        &[
            method,
            Slot::Absent,
            built,
            Slot::Int(-1),
            Slot::Float(0.25),
            Slot::Bool(true),
            Slot::Bool(false),
            Slot::Timestamp(42),
            list,
            Slot::Absent,
        ],
    );
    enc.error(1, "bad line");
    let batch = enc.finish(Counters {
        lines: 2,
        skipped: 0,
        rows_with_extra: 1,
    });

    let entries = decode_all(&batch, input);
    assert_eq!(entries.len(), 4);
    assert_eq!(
        entries[0].0,
        Entry::Field {
            ty: FieldType::String,
            name: "extra_1"
        }
    );
    let Entry::Row(row) = &entries[1].0 else {
        panic!("expected a row, got {:?}", entries[1].0)
    };
    assert_eq!(row.time, Some(1_530_570_180_186_641_000));
    assert_eq!(row.msg, Value::Str("GET /a b"));
    let values = &entries[1].1;
    // The trailing absent value is not encoded.
    assert_eq!(values.len(), 9);
    assert_eq!(values[0], Value::Str("GET"));
    assert_eq!(values[1], Value::Absent);
    assert_eq!(values[2], Value::Str("built"));
    assert_eq!(values[3], Value::Int(-1));
    assert_eq!(values[4], Value::Float(0.25));
    assert_eq!(values[5], Value::Bool(true));
    assert_eq!(values[6], Value::Bool(false));
    assert_eq!(values[7], Value::Timestamp(42));
    let Value::List(list) = values[8] else {
        panic!("expected a list")
    };
    let items: Vec<_> = list.iter().collect();
    assert_eq!(
        items,
        [Value::Str("/a"), Value::Str("not in input"), Value::Int(-7)]
    );
    assert_eq!(
        entries[2].0,
        Entry::Error {
            line: 1,
            reason: "bad line"
        }
    );
    assert_eq!(
        entries[3].0,
        Entry::End(Counters {
            lines: 2,
            skipped: 0,
            rows_with_extra: 1
        })
    );
}

#[test]
fn substrings_of_the_input_travel_as_spans() {
    let input = "abcdef\n";
    let mut enc = Encoder::new(input);
    assert_eq!(enc.str(&input[2..4]), Slot::Span { offset: 2, len: 2 });
    assert_eq!(enc.str(&input[7..]), Slot::Span { offset: 7, len: 0 });
    assert!(matches!(enc.str("cd"), Slot::Scratch { .. }));
}

#[test]
fn a_row_without_time_decodes_as_none() {
    let input = "x\n";
    let mut enc = Encoder::new(input);
    enc.row(None, Slot::Absent, &[]);
    let batch = enc.finish(Counters::default());
    let entries = decode_all(&batch, input);
    assert_eq!(
        entries[0].0,
        Entry::Row(crate::Row {
            time: None,
            msg: Value::Absent
        })
    );
}

fn first_error(batch: &[u8], input: &str) -> String {
    let mut decoder = match Decoder::new(batch, input) {
        Ok(d) => d,
        Err(e) => return e.to_string(),
    };
    let mut values = Vec::new();
    loop {
        match decoder.next_entry(&mut values) {
            Ok(Some(_)) => {}
            Ok(None) => return String::from("no error"),
            Err(e) => return e.to_string(),
        }
    }
}

fn valid_batch(input: &str) -> Vec<u8> {
    let mut enc = Encoder::new(input);
    let s = enc.str(&input[1..3]);
    enc.row(Some(1), s, &[s, Slot::Int(5)]);
    enc.finish(Counters::default())
}

#[test]
fn hostile_buffers_are_errors_not_panics() {
    let input = "héllo\n";
    let good = valid_batch(input);
    assert_eq!(first_error(&good, input), "no error");

    // Every truncation of a valid batch is an error.
    for cut in 0..good.len() {
        let msg = first_error(&good[..cut], input);
        assert_ne!(msg, "no error", "truncated at {cut}");
    }

    let mut wrong_version = good.clone();
    wrong_version[0] = 9;
    assert!(first_error(&wrong_version, input).contains("version"));

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(first_error(&trailing, input).contains("after the end"));

    // A span that splits the two-byte 'é'.
    let mut enc = Encoder::new(input);
    enc.row(None, Slot::Span { offset: 2, len: 1 }, &[]);
    let split = enc.finish(Counters::default());
    assert!(first_error(&split, input).contains("character boundary"));

    let mut enc = Encoder::new(input);
    enc.row(
        None,
        Slot::Span {
            offset: u32::MAX,
            len: u32::MAX,
        },
        &[],
    );
    let outside = enc.finish(Counters::default());
    assert!(first_error(&outside, input).contains("outside the input"));

    assert!(first_error(&[1u8, 0x09], input).contains("unknown entry tag"));
    let bad_inline = [1u8, 0x03, 0, 0, 0, 0, 1, 0, 0xff];
    assert!(first_error(&bad_inline, input).contains("not UTF-8"));
    let unknown_type = [1u8, 0x01, 77, 0, 0];
    assert!(first_error(&unknown_type, input).contains("unknown field type"));
}
