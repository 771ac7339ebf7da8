//! Checks a parser crate's `samples/` against its own description, so a
//! sample that the host would not route to the parser, or that parses to
//! other counts than `samples/keys.tsv` promises, fails the crate's tests.

use std::io::Read;
use std::path::Path;

use regex::Regex;
use s3logd_parser_sdk::Parser;
use s3logd_parser_sdk::testing::parse;

/// For every `file<TAB>key<TAB>records<TAB>errors` line of
/// `dir/keys.tsv`: the key must match a key pattern (when the parser has
/// any), the first line a first-line pattern, and parsing the (gunzipped)
/// file under that key must give those counts.
pub fn check<P: Parser>(dir: &Path) {
    let description = P::describe();
    let compile = |patterns: &[String]| -> Vec<Regex> {
        patterns
            .iter()
            .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect()
    };
    let key_patterns = compile(&description.key_patterns);
    let first_line_patterns = compile(&description.first_line_patterns);
    let index = std::fs::read_to_string(dir.join("keys.tsv")).expect("samples/keys.tsv");
    let mut checked = 0;
    for entry in index.lines().filter(|l| !l.trim().is_empty()) {
        let [file, key, records, errors] = entry.split('\t').collect::<Vec<_>>()[..] else {
            panic!("keys.tsv line {entry:?} does not have 4 tab-separated columns");
        };
        let text = read_sample(&dir.join(file));
        if !key_patterns.is_empty() {
            assert!(
                key_patterns.iter().any(|p| p.is_match(key)),
                "{file}: key {key} matches no key pattern"
            );
        }
        let first_line: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(4096)
            .collect();
        assert!(
            first_line_patterns.iter().any(|p| p.is_match(&first_line)),
            "{file}: first line matches no first-line pattern"
        );
        let parsed = parse::<P>(key, &[], &text).expect("open");
        assert_eq!(
            parsed.records.len().to_string(),
            records,
            "{file}: records ({:?})",
            parsed.errors
        );
        assert_eq!(
            parsed.errors.len().to_string(),
            errors,
            "{file}: errors ({:?})",
            parsed.errors
        );
        checked += 1;
    }
    assert!(checked > 0, "keys.tsv lists no samples");
}

/// The text of a sample, gunzipped if it is gzip.
pub fn read_sample(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return String::from_utf8(bytes).expect("UTF-8 sample");
    }
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gzip sample");
    text
}
