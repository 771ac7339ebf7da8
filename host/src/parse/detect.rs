//! Choosing a parser for an object from its key and its start, using the
//! patterns each parser declares about itself (bundled and custom alike).
//!
//! A first-line pattern is tried on the object's first line and on its
//! first [`FIRST_LINE_BYTES`] across line breaks, so `$` still ends the
//! first line while a pattern like `^\{\s*"Records"` also finds a document
//! pretty-printed over many lines. How specific a match is is the length of
//! the text it matched: `\d{4}` and `\d\d\d\d` rank the same, and a
//! pattern that pins down more of the line outranks a looser one.

use regex::Regex;

/// At most this much of an object's start is matched against patterns.
pub const FIRST_LINE_BYTES: usize = 4096;

/// A parser's compiled detection patterns.
#[derive(Debug)]
pub(super) struct Patterns {
    pub(super) keys: Vec<Regex>,
    pub(super) first_line: Vec<Regex>,
}

impl Patterns {
    pub(super) fn compile(keys: &[String], first_line: &[String]) -> Result<Patterns, String> {
        let compile = |what: &str, patterns: &[String]| {
            patterns
                .iter()
                .map(|p| Regex::new(p).map_err(|e| format!("invalid {what} pattern {p:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Patterns {
            keys: compile("key", keys)?,
            first_line: compile("first-line", first_line)?,
        })
    }

    fn matches_key(&self, key: &str) -> bool {
        self.keys.iter().any(|re| re.is_match(key))
    }

    /// The length of the longest text a first-line pattern matches, on the
    /// first line or across the head: how specific the match is.
    fn first_line_match(&self, head: &str) -> Option<usize> {
        let line = head.split_once('\n').map_or(head, |(line, _)| line);
        self.first_line
            .iter()
            .flat_map(|re| [re.find(line), re.find(head)])
            .flatten()
            .map(|found| found.len())
            .max()
    }
}

/// Picks among `candidates` (in priority order) for an object:
/// 1. parsers whose key patterns match, the first one the first line
///    confirms (or that declares no first-line pattern);
/// 2. else the parser whose first-line pattern matches most specifically
///    (the longest matched text; ties go to the earlier parser);
/// 3. else the first key match even unconfirmed (an object may start with a
///    control line, like ELB's `Enable AccessLog` test object).
pub(super) fn choose<'p, P>(
    candidates: &'p [P],
    patterns: impl Fn(&P) -> &Patterns,
    key: &str,
    head: &str,
) -> Option<&'p P> {
    let line = &head[..head.floor_char_boundary(FIRST_LINE_BYTES)];
    let by_key: Vec<&P> = candidates
        .iter()
        .filter(|p| patterns(p).matches_key(key))
        .collect();
    if let Some(confirmed) = by_key.iter().find(|p| {
        let patterns = patterns(p);
        patterns.first_line.is_empty() || patterns.first_line_match(line).is_some()
    }) {
        return Some(confirmed);
    }
    let mut best: Option<(&P, usize)> = None;
    for candidate in candidates {
        if let Some(specificity) = patterns(candidate).first_line_match(line)
            && best.is_none_or(|(_, s)| specificity > s)
        {
            best = Some((candidate, specificity));
        }
    }
    best.map(|(p, _)| p).or_else(|| by_key.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(name: &'static str, keys: &[&str], lines: &[&str]) -> (&'static str, Patterns) {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        (name, Patterns::compile(&own(keys), &own(lines)).unwrap())
    }

    fn pick(set: &[(&'static str, Patterns)], key: &str, line: &str) -> Option<&'static str> {
        choose(set, |p| &p.1, key, line).map(|p| p.0)
    }

    #[test]
    fn key_first_then_first_line_then_unconfirmed_key() {
        let set = [
            parser("alb", &[r"_app\."], &[r"^h2 "]),
            parser("ndjson", &[r"\.json"], &[r"^\{"]),
            parser("cloudtrail", &[r"/CloudTrail/"], &[r#"^\{"Records""#]),
            parser("regex", &[], &[]),
        ];
        assert_eq!(pick(&set, "x_app.lb.log.gz", "h2 2018-…"), Some("alb"));
        // The key says ALB but the content is CloudTrail.
        assert_eq!(
            pick(&set, "x_app.lb.log.gz", r#"{"Records":[]}"#),
            Some("cloudtrail")
        );
        // No key match: the most specific first-line pattern wins.
        assert_eq!(
            pick(&set, "data/file", r#"{"Records":[]}"#),
            Some("cloudtrail")
        );
        assert_eq!(pick(&set, "data/file", r#"{"a":1}"#), Some("ndjson"));
        // An ELB test object: the key decides.
        assert_eq!(
            pick(&set, "x_app.lb.log.gz", "Enable AccessLog for ELB"),
            Some("alb")
        );
        assert_eq!(pick(&set, "data/file", "plain text"), None);
    }

    #[test]
    fn specificity_is_the_length_of_the_matched_text_not_of_the_pattern() {
        // The same text matched by a longer and a shorter spelling ties, so
        // the earlier parser wins whichever spelling comes first.
        let set = [
            parser("short", &[], &[r"^\d{4} "]),
            parser("long", &[], &[r"^\d\d\d\d "]),
            parser("more", &[], &[r"^\d+ [a-z]+ "]),
        ];
        assert_eq!(pick(&set, "data/file", "2024 x"), Some("short"));
        let swapped = [
            parser("long", &[], &[r"^\d\d\d\d "]),
            parser("short", &[], &[r"^\d{4} "]),
        ];
        assert_eq!(pick(&swapped, "data/file", "2024 x"), Some("long"));
        // A pattern that pins down more of the line outranks both.
        assert_eq!(pick(&set, "data/file", "2024 abc 1"), Some("more"));
    }

    #[test]
    fn patterns_see_across_line_breaks_and_dollar_still_ends_the_first_line() {
        let set = [
            parser("ndjson", &[], &[r#"^\s*\{\s*""#]),
            parser("cloudtrail", &[], &[r#"^\{\s*"Records"\s*:\s*\["#]),
            parser("header", &[], &[r"^#Fields$"]),
        ];
        let pretty = "{\n  \"Records\": [\n    {\"eventVersion\": \"1.08\"}\n  ]\n}\n";
        assert_eq!(pick(&set, "data/file", pretty), Some("cloudtrail"));
        assert_eq!(
            pick(&set, "data/file", "{\n  \"a\": 1\n}\n"),
            Some("ndjson")
        );
        assert_eq!(pick(&set, "data/file", "#Fields\nx y\n"), Some("header"));
    }

    #[test]
    fn invalid_patterns_are_reported_with_the_pattern() {
        let err = Patterns::compile(&["(".into()], &[]).unwrap_err();
        assert!(err.contains("invalid key pattern \"(\""), "{err}");
    }

    #[test]
    fn long_first_lines_are_cut_at_a_character_boundary() {
        // The limit falls inside an `é`: slicing there would panic.
        let line = format!("x{}", "é".repeat(FIRST_LINE_BYTES));
        let set = [parser("text", &[], &["^xé+$"])];
        assert_eq!(pick(&set, "data/file", &line), Some("text"));
    }
}
