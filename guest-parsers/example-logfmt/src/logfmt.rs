//! Splitting a logfmt line (`key=value key="quoted value" flag`) into pairs.

use std::borrow::Cow;

#[derive(Debug, PartialEq)]
pub enum Value<'a> {
    /// A key without `=`: a flag that is set.
    Flag,
    /// An unquoted value, possibly empty (`key=`).
    Bare(&'a str),
    /// A quoted value without its quotes; `\"` and `\\` are unescaped, so it
    /// is borrowed from the line only when it held no escapes.
    Quoted(Cow<'a, str>),
}

impl Value<'_> {
    /// The value's text; a flag has none.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Flag => None,
            Value::Bare(text) => Some(text),
            Value::Quoted(text) => Some(text),
        }
    }
}

/// The `key=value` pairs of a line, in order. Pairs are separated by spaces
/// or tabs; an error ends the iteration.
pub struct Pairs<'a> {
    rest: &'a str,
}

impl<'a> Pairs<'a> {
    pub fn new(line: &'a str) -> Pairs<'a> {
        Pairs { rest: line }
    }

    fn fail(&mut self, reason: String) -> Option<Result<(&'a str, Value<'a>), String>> {
        self.rest = "";
        Some(Err(reason))
    }
}

const SEPARATORS: [char; 2] = [' ', '\t'];

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a str, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches(SEPARATORS);
        if s.is_empty() {
            self.rest = "";
            return None;
        }
        let key_end = s.find([' ', '\t', '=']).unwrap_or(s.len());
        let key = &s[..key_end];
        if key.is_empty() {
            return self.fail(format!("a value without a key: `{}`", first_token(s)));
        }
        let Some(value) = s[key_end..].strip_prefix('=') else {
            self.rest = &s[key_end..];
            return Some(Ok((key, Value::Flag)));
        };
        if let Some(quoted) = value.strip_prefix('"') {
            let Some((unquoted, after)) = unquote(quoted) else {
                return self.fail(format!("the quoted value of `{key}` has no closing quote"));
            };
            if after.starts_with(|c: char| !SEPARATORS.contains(&c)) {
                return self.fail(format!(
                    "the quoted value of `{key}` is followed by `{}`",
                    first_token(after)
                ));
            }
            self.rest = after;
            return Some(Ok((key, Value::Quoted(unquoted))));
        }
        let end = value.find(SEPARATORS).unwrap_or(value.len());
        self.rest = &value[end..];
        Some(Ok((key, Value::Bare(&value[..end]))))
    }
}

fn first_token(s: &str) -> &str {
    s.split(SEPARATORS).next().unwrap_or(s)
}

/// Reads a quoted string whose opening quote is already consumed: its
/// unescaped contents and what follows the closing quote.
fn unquote(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = s.as_bytes();
    let mut unescaped: Option<String> = None;
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = match unescaped {
                    Some(mut owned) => {
                        owned.push_str(&s[run_start..i]);
                        Cow::Owned(owned)
                    }
                    None => Cow::Borrowed(&s[..i]),
                };
                return Some((value, &s[i + 1..]));
            }
            b'\\' if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => {
                unescaped
                    .get_or_insert_with(String::new)
                    .push_str(&s[run_start..i]);
                // The escaped character opens the next run.
                run_start = i + 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> Result<Vec<(&str, Value<'_>)>, String> {
        Pairs::new(line).collect()
    }

    #[test]
    fn bare_quoted_and_flag_values() {
        assert_eq!(
            pairs("a=1  b=\"x y\"\tdebug c= d").unwrap(),
            [
                ("a", Value::Bare("1")),
                ("b", Value::Quoted(Cow::Borrowed("x y"))),
                ("debug", Value::Flag),
                ("c", Value::Bare("")),
                ("d", Value::Flag),
            ]
        );
    }

    #[test]
    fn escaped_quotes_and_backslashes_are_unescaped() {
        let parsed = pairs(r#"msg="say \"hi\" \\ \n" next=1"#).unwrap();
        assert_eq!(
            parsed[0],
            ("msg", Value::Quoted(Cow::Owned(r#"say "hi" \ \n"#.into())))
        );
        assert_eq!(parsed[1], ("next", Value::Bare("1")));
        assert_eq!(
            pairs(r#"e="""#).unwrap(),
            [("e", Value::Quoted(Cow::Borrowed("")))]
        );
    }

    #[test]
    fn quoted_values_keep_multibyte_text() {
        assert_eq!(
            pairs("city=\"Zürich \\\"Nord\\\"\"").unwrap(),
            [("city", Value::Quoted(Cow::Owned("Zürich \"Nord\"".into())))]
        );
    }

    #[test]
    fn malformed_pairs_are_errors_naming_the_problem() {
        let unterminated = pairs(r#"a=1 msg="no end \""#).unwrap_err();
        assert!(
            unterminated.contains("`msg`") && unterminated.contains("closing quote"),
            "{unterminated}"
        );
        let keyless = pairs("a=1 =2").unwrap_err();
        assert!(
            keyless.contains("without a key") && keyless.contains("`=2`"),
            "{keyless}"
        );
        let glued = pairs(r#"msg="x"y z=1"#).unwrap_err();
        assert!(glued.contains("followed by `y`"), "{glued}");
    }
}
