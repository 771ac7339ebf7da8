use s3logd_parser_sdk::testing::{Owned, parse, parse_batched};
use s3logd_parser_sdk::{Description, FieldType, Options, Output, Parser};

use super::*;

/// Flattens each line; the value at `claimed.path` becomes `_msg` (raw),
/// and a line `{"prefixed": {...}}` is flattened under `p`.
struct Flattener(JsonFields);

impl Parser for Flattener {
    fn describe() -> Description {
        Description::new("flattener", "0.0.0", "test parser")
    }
    fn open(_key: &str, _options: &Options) -> Result<Self, String> {
        Ok(Flattener(JsonFields::new()))
    }
    fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
        let mut flat = Flat::new();
        self.0
            .object(out, line, "", &["claimed.path"], &mut flat)
            .map_err(|e| e.to_string())?;
        let claimed = flat.claimed(0);
        let mut row = out.row();
        flat.write(&mut row);
        if let Some(raw) = claimed {
            row.msg(raw.get());
        }
        Ok(())
    }
}

fn str_items(items: &[&str]) -> Owned {
    Owned::List(items.iter().map(|s| Owned::Str(s.to_string())).collect())
}

#[test]
fn nested_objects_flatten_with_dots_and_keep_key_names() {
    let line = r#"{"a":{"b":{"c":1},"d":"x"},"eventName":"GetObject","f":1.5,"t":true,"big":18446744073709551615}"#;
    let parsed = parse::<Flattener>("k", &[], line).unwrap();
    let record = &parsed.records[0];
    assert_eq!(record.int("a.b.c"), Some(1));
    assert_eq!(record.str("a.d"), Some("x"));
    assert_eq!(record.str("eventName"), Some("GetObject"));
    assert_eq!(record.float("f"), Some(1.5));
    assert_eq!(record.fields.get("t"), Some(&Owned::Bool(true)));
    assert_eq!(record.str("big"), Some("18446744073709551615"));
    assert_eq!(record.msg.as_deref(), Some(line));
    assert!(parsed.fields.iter().all(|(_, ty)| *ty == FieldType::Any));
}

#[test]
fn null_dash_and_empty_arrays_are_absent_but_empty_strings_stay() {
    let line = r#"{"n":null,"dash":"-","empty":[],"blank":"","obj":{}}"#;
    let parsed = parse::<Flattener>("k", &[], line).unwrap();
    let record = &parsed.records[0];
    let present: Vec<&str> = record.fields.keys().map(String::as_str).collect();
    assert_eq!(present, ["blank"]);
    assert_eq!(record.str("blank"), Some(""));
}

#[test]
fn arrays_are_lists_when_uniform_and_json_text_otherwise() {
    let line =
        r#"{"s":["a","b\"q"],"i":[1,-2],"o":[{"name":"x"}, {"name":"y"}],"m":[1,"a"],"fl":[1.5]}"#;
    let parsed = parse::<Flattener>("k", &[], line).unwrap();
    let record = &parsed.records[0];
    assert_eq!(record.fields.get("s"), Some(&str_items(&["a", "b\"q"])));
    assert_eq!(
        record.fields.get("i"),
        Some(&Owned::List(vec![Owned::Int(1), Owned::Int(-2)]))
    );
    assert_eq!(record.str("o"), Some(r#"[{"name":"x"},{"name":"y"}]"#));
    assert_eq!(record.str("m"), Some(r#"[1,"a"]"#));
    assert_eq!(record.str("fl"), Some("[1.5]"));
}

#[test]
fn claimed_paths_are_handed_over_raw_and_not_flattened() {
    let line = r#"{"claimed":{"path":{"x":[1, 2]},"other":"kept"}}"#;
    let parsed = parse::<Flattener>("k", &[], line).unwrap();
    let record = &parsed.records[0];
    assert_eq!(record.msg.as_deref(), Some(r#"{"x":[1, 2]}"#));
    assert_eq!(record.str("claimed.other"), Some("kept"));
    assert!(!record.has("claimed.path.x"));
}

#[test]
fn fields_are_declared_once_per_session_and_escapes_decoded() {
    let input = "{\"a\":\"1\"}\n{\"b\":\"x\\ty\",\"a\":\"2\"}\n{\"a\\u0062\":3}\n";
    let parsed = parse_batched::<Flattener>("k", &[], input, 1).unwrap();
    let names = parsed.field_names();
    assert_eq!(names, ["a", "b", "ab"]);
    assert_eq!(parsed.records[1].str("b"), Some("x\ty"));
    assert_eq!(parsed.records[1].str("a"), Some("2"));
    assert_eq!(parsed.records[2].int("ab"), Some(3));
}

#[test]
fn non_objects_and_broken_json_are_errors_that_keep_later_lines() {
    let input = "[1]\n\"text\"\n{\"a\":1\n{\"a\":1} x\nnot json\n{\"a\":2}\n";
    let parsed = parse::<Flattener>("k", &[], input).unwrap();
    let lines: Vec<u64> = parsed.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5]);
    assert!(
        parsed.errors[0].1.contains("expected a JSON object"),
        "{:?}",
        parsed.errors[0]
    );
    assert!(
        parsed.errors[3].1.contains("trailing characters"),
        "{:?}",
        parsed.errors[3]
    );
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].int("a"), Some(2));
}

#[test]
fn a_failed_object_leaves_no_values_behind() {
    struct Twice;
    impl Parser for Twice {
        fn describe() -> Description {
            Description::new("twice", "0.0.0", "test parser")
        }
        fn open(_key: &str, _options: &Options) -> Result<Self, String> {
            Ok(Twice)
        }
        fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
            let mut fields = JsonFields::new();
            let mut flat = Flat::new();
            fields
                .object(out, r#"{"good":1}"#, "", &[], &mut flat)
                .unwrap();
            assert!(fields.object(out, line, "inner", &[], &mut flat).is_err());
            flat.write(&mut out.row());
            Ok(())
        }
    }
    let parsed = parse::<Twice>("k", &[], r#"{"x":1,"y":"#).unwrap();
    let present: Vec<&str> = parsed.records[0]
        .fields
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(present, ["good"]);
}

#[test]
fn a_single_value_flattens_under_its_path() {
    struct Value;
    impl Parser for Value {
        fn describe() -> Description {
            Description::new("value", "0.0.0", "test parser")
        }
        fn open(_key: &str, _options: &Options) -> Result<Self, String> {
            Ok(Value)
        }
        fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
            let raw: &RawValue = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let mut fields = JsonFields::new();
            let mut flat = Flat::new();
            fields
                .value(out, "v", raw, &mut flat)
                .map_err(|e| e.to_string())?;
            flat.write(&mut out.row());
            Ok(())
        }
    }
    let parsed = parse::<Value>("k", &[], "{\"a\":{\"b\":1}}\n7\n").unwrap();
    assert_eq!(parsed.records[0].int("v.a.b"), Some(1));
    assert_eq!(parsed.records[1].int("v"), Some(7));
}
