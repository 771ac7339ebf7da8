//! Fields named by the data itself (header lines, JSON keys), declared once
//! per session however often the name comes back.

use std::collections::HashMap;

use crate::{FieldId, FieldType, Output};

/// Remembers the fields a session has declared, so that a repeated header
/// line or a JSON key seen on every line maps to the same field instead of
/// declaring a duplicate.
#[derive(Debug, Default)]
pub struct DeclaredFields {
    /// By name; a name used with two types is two fields.
    by_name: HashMap<String, Vec<(FieldType, FieldId)>>,
}

impl DeclaredFields {
    /// The field called `name` with type `ty`, declaring it on first use.
    pub fn id(&mut self, out: &mut Output, name: &str, ty: FieldType) -> FieldId {
        if let Some(&(_, id)) = self
            .by_name
            .get(name)
            .and_then(|typed| typed.iter().find(|(known, _)| *known == ty))
        {
            return id;
        }
        let id = out.declare(name, ty);
        self.by_name
            .entry(name.to_string())
            .or_default()
            .push((ty, id));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_batched;
    use crate::{Description, Options, Parser};

    /// Each line is `name=value` pairs; names are declared as they come.
    struct Pairs(DeclaredFields);

    impl Parser for Pairs {
        fn describe() -> Description {
            Description::new("pairs", "0.0.0", "test parser")
        }
        fn open(_key: &str, _options: &Options) -> Result<Self, String> {
            Ok(Pairs(DeclaredFields::default()))
        }
        fn parse_line(&mut self, line: &str, out: &mut Output) -> Result<(), String> {
            let pairs: Vec<(&str, &str)> =
                line.split(' ').filter_map(|p| p.split_once('=')).collect();
            let ids: Vec<FieldId> = pairs
                .iter()
                .map(|(name, _)| self.0.id(out, name, FieldType::String))
                .collect();
            let mut row = out.row();
            for (id, (_, value)) in ids.into_iter().zip(pairs) {
                row.str(id, value);
            }
            Ok(())
        }
    }

    #[test]
    fn a_name_is_declared_once_across_lines_and_batches() {
        let parsed = parse_batched::<Pairs>("key", &[], "a=1 b=2\nb=3 a=4\nc=5 a=6", 1).unwrap();
        let names = parsed.field_names();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(parsed.records[1].str("a"), Some("4"));
        assert_eq!(parsed.records[1].str("b"), Some("3"));
        assert_eq!(parsed.records[2].str("c"), Some("5"));
    }
}
