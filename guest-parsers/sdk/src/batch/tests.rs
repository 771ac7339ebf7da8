use crate::testing::{Owned, parse, parse_batched};
use crate::{Description, Field, FieldType, Options, Output, Parser};

/// Two documented columns, then extras; `bad` fails, `#` lines are skipped,
/// `multi` yields two rows and an error in the middle.
struct Columns;

impl Parser for Columns {
    fn describe() -> Description {
        Description::new("columns", "0.0.0", "test parser")
            .option("sep", "column separator", Some(" "))
            .field(Field::new("first", FieldType::String, ""))
            .field(Field::new("second", FieldType::Integer, ""))
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Columns)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        if line.starts_with('#') {
            return Ok(());
        }
        if line == "multi" {
            out.row().str(0, "one").time(1);
            out.row().str(0, "half-built");
            out.error("element 2 is broken");
            out.row().str(0, "three").msg("custom msg");
            return Ok(());
        }
        let mut parts = line.split(' ');
        let mut row = out.row();
        row.str(0, parts.next().unwrap());
        if let Some(second) = parts.next() {
            let n = second
                .parse()
                .map_err(|_| format!("second column {second:?} is not a number"))?;
            row.int(1, n);
        }
        for extra in parts {
            row.extra(extra);
        }
        Ok(())
    }
}

#[test]
fn rows_errors_and_skips_are_counted_per_line() {
    let input = "# header\na 1\nb x\n\nc 3 e1 e2\r\nmulti\nlast 9";
    let parsed = parse::<Columns>("key", &[], input).unwrap();
    assert_eq!(parsed.counters.lines, 7);
    assert_eq!(parsed.counters.skipped, 2, "the header and the blank line");
    assert_eq!(parsed.counters.rows_with_extra, 1);
    assert_eq!(
        parsed.errors,
        [
            (3, "second column \"x\" is not a number".to_string()),
            (6, "element 2 is broken".to_string())
        ]
    );

    let firsts: Vec<&str> = parsed
        .records
        .iter()
        .map(|r| r.str("first").unwrap())
        .collect();
    assert_eq!(firsts, ["a", "c", "one", "three", "last"]);
    let c = &parsed.records[1];
    assert_eq!(c.msg.as_deref(), Some("c 3 e1 e2"), "CR stripped");
    assert_eq!(c.str("extra_1"), Some("e1"));
    assert_eq!(c.str("extra_2"), Some("e2"));
    assert_eq!(parsed.records[2].time, Some(1));
    assert_eq!(parsed.records[2].msg.as_deref(), Some("multi"));
    assert_eq!(parsed.records[3].msg.as_deref(), Some("custom msg"));
    assert_eq!(
        parsed.records[4].int("second"),
        Some(9),
        "last line without newline"
    );
}

#[test]
fn extra_fields_are_declared_once_per_session_across_batches() {
    let input = "a 1 x\nb 2 y z\nc 3 w\n";
    let parsed = parse_batched::<Columns>("key", &[], input, 1).unwrap();
    let names = parsed.field_names();
    assert_eq!(names, ["first", "second", "extra_1", "extra_2"]);
    assert_eq!(parsed.records[2].str("extra_1"), Some("w"));
    assert_eq!(
        parsed.records[1].fields.get("extra_2"),
        Some(&Owned::Str("z".into()))
    );
    assert_eq!(parsed.counters.rows_with_extra, 3);
}

#[test]
fn undocumented_options_are_refused() {
    let err = parse::<Columns>("key", &[("delimiter", ",")], "a\n").unwrap_err();
    assert_eq!(err, "unknown option `delimiter`: this parser accepts sep");
    assert!(parse::<Columns>("key", &[("sep", ",")], "a\n").is_ok());
}

/// Rows of a multi-record line: each finished, then a record that fails.
struct Records;

impl Parser for Records {
    fn describe() -> Description {
        Description::new("records", "0.0.0", "test parser").field(Field::new(
            "n",
            FieldType::Integer,
            "",
        ))
    }

    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Records)
    }

    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        for (n, record) in line.split(',').enumerate() {
            match record {
                "bad" => out.error("bad record"),
                "stop" => return Err("cannot go on".into()),
                _ => {
                    out.row().int(0, n as i64);
                    out.finish_row();
                }
            }
        }
        Ok(())
    }
}

#[test]
fn finished_rows_survive_later_errors_on_the_same_line() {
    let parsed = parse::<Records>(
        "key",
        &[],
        "ok,bad,ok
ok,stop
",
    )
    .unwrap();
    let ns: Vec<i64> = parsed.records.iter().map(|r| r.int("n").unwrap()).collect();
    assert_eq!(ns, [0, 2, 0]);
    assert_eq!(
        parsed.errors,
        [
            (1, "bad record".to_string()),
            (2, "cannot go on".to_string())
        ]
    );
}
