//! Splitting space-separated, partly quoted lines, and reading the values
//! inside them: the tools of the bundled AWS parsers (ELB, S3 server access
//! logs, VPC flow logs), fit for any other log of that shape.

/// Splits a line into fields separated by single spaces. A field that starts
/// with `"` runs to the next `"` followed by a space or the end of the line
/// (AWS documents no escaping inside quotes), and is returned without its
/// quotes. `[`…`]` fields (S3 access log times) are returned with brackets.
pub struct Fields<'a> {
    line: &'a str,
    /// Where the next field starts; `None` once the line is used up.
    at: Option<usize>,
    brackets: bool,
}

impl<'a> Fields<'a> {
    pub fn new(line: &'a str) -> Fields<'a> {
        Fields {
            line,
            at: (!line.is_empty()).then_some(0),
            brackets: true,
        }
    }

    /// Like [`Fields::new`], except that `[` opens no bracketed field: in an
    /// ELB line it can only start a `[v6]:port` endpoint, which ends at the
    /// next space like any unquoted field.
    pub fn unbracketed(line: &'a str) -> Fields<'a> {
        Fields {
            brackets: false,
            ..Fields::new(line)
        }
    }

    /// Fills `out` with the next fields and returns how many there were:
    /// all of `out` unless the line ends first. One call for a line's
    /// fields keeps the scan's state in registers; in wasm a call per field
    /// (and its state in memory) cost a fifth of an ALB parse.
    pub fn fill<const N: usize>(&mut self, out: &mut [&'a str; N]) -> usize {
        let mut at = self.at;
        let mut count = 0;
        while count < N {
            let Some(start) = at else { break };
            let (field, next) = field_at(self.line, start, self.brackets);
            out[count] = field;
            count += 1;
            at = next;
        }
        self.at = at;
        count
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (field, next) = field_at(self.line, self.at?, self.brackets);
        self.at = next;
        Some(field)
    }
}

/// The field that starts at `start`, and where the one after it starts
/// (`None`: it was the last).
#[inline(always)]
fn field_at(line: &str, start: usize, brackets: bool) -> (&str, Option<usize>) {
    let len = line.len();
    let rest = &line.as_bytes()[start..];
    let (from, to, end) = match rest.first() {
        // After a trailing space: one last, empty field.
        None => (len, len, len),
        Some(b'"') => match closing(rest, b'"') {
            Some(close) => (start + 1, start + close, start + close + 1),
            None => (start + 1, len, len),
        },
        Some(b'[') if brackets => match closing(rest, b']') {
            Some(close) => (start, start + close + 1, start + close + 1),
            None => (start, len, len),
        },
        Some(_) => match next_space(rest) {
            Some(space) => (start, start + space, start + space),
            None => (start, len, len),
        },
    };
    // `end` is at a space or the end: step over exactly one space.
    let next = (end < len).then_some(end + 1);
    (cut(line, from, to), next)
}

/// `line[a..b]`, where both ends are next to an ASCII byte found by the
/// scans (a quote, a bracket, a space) or at an end of the line, so
/// character boundaries: checking them again per field cost about 2% of an
/// ALB parse in wasm.
#[inline(always)]
fn cut(line: &str, a: usize, b: usize) -> &str {
    debug_assert!(line.is_char_boundary(a) && line.is_char_boundary(b) && a <= b);
    // SAFETY: `a..b` lies within `line` and both ends are boundaries.
    unsafe { line.get_unchecked(a..b) }
}

/// Position of the first space. Unquoted fields are a few bytes long, and
/// for those testing eight bytes per step beats memchr's per-call setup:
/// a byte's high bit is set in `found` when it is a space (borrows only mark
/// bytes above a true match, so the lowest mark is exact).
#[inline(always)]
fn next_space(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    let mut words = bytes.chunks_exact(8);
    for (i, word) in words.by_ref().enumerate() {
        let diff = u64::from_le_bytes(word.try_into().expect("8-byte chunk")) ^ (ONES * 0x20);
        let found = diff.wrapping_sub(ONES) & !diff & (ONES * 0x80);
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    let tail_start = bytes.len() - tail.len();
    tail.iter().position(|&b| b == b' ').map(|i| tail_start + i)
}

/// Position of the `close` byte that ends a field opened at `bytes[0]`:
/// the first one followed by a space or the end of the line.
#[inline(always)]
fn closing(bytes: &[u8], close: u8) -> Option<usize> {
    let mut from = 1;
    while let Some(found) = memchr::memchr(close, &bytes[from..]) {
        let at = from + found;
        if matches!(bytes.get(at + 1), None | Some(b' ')) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `s` split at every `separator`, an ASCII byte. Lists in log fields are
/// a few short items: a byte-by-byte split beats `str::split`, whose
/// per-item search in wasm is core's word-at-a-time `memchr`.
pub fn split_ascii(s: &str, separator: u8) -> impl Iterator<Item = &str> {
    debug_assert!(separator.is_ascii());
    s.as_bytes().split(move |&b| b == separator).map(|part| {
        // SAFETY: cut next to an ASCII byte or at an end of `s`, so at
        // character boundaries of valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(part) }
    })
}

/// The words of `s` between runs of spaces; spaces at either end separate
/// nothing. For formats that pad or repeat separators (VPC flow logs),
/// where [`Fields`] would read an empty field between two spaces.
pub fn space_separated(s: &str) -> impl Iterator<Item = &str> {
    split_ascii(s, b' ').filter(|word| !word.is_empty())
}

/// Splits `host:port` at the last colon, so unbracketed IPv6
/// (`2001:db8::1:50718`) works; `[v6]:port` loses its brackets.
pub fn split_host_port(s: &str) -> Option<(&str, &str)> {
    // A port has at most five digits, so the last colon is nearly always
    // among the last six bytes: looking there first (a loop of constant
    // length, unrolled) spares a general backward search per endpoint.
    let bytes = s.as_bytes();
    let near_end = (1..=6)
        .filter_map(|back| bytes.len().checked_sub(back))
        .find(|&at| bytes[at] == b':');
    let colon = near_end.or_else(|| s.rfind(':'))?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

/// An HTTP request line split as the record conventions require.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Option<&'a str>,
    pub url: Option<&'a str>,
    pub protocol: Option<&'a str>,
}

/// Method before the first space, protocol after the last, URL in between
/// (URLs may hold spaces). `- - -` (and `- - - `) yields nothing.
pub fn split_request(request: &str) -> Request<'_> {
    let dash = |s: &'_ str| (!s.is_empty() && s != "-").then_some(());
    let trimmed = request.trim_end_matches(' ');
    // memchr's SIMD search, not str::find: in wasm that is core's search of
    // four bytes a step, and over long URLs it cost 5% of an ALB parse.
    let Some(first_space) = memchr::memchr(b' ', trimmed.as_bytes()) else {
        return Request {
            method: dash(trimmed).map(|_| trimmed),
            url: None,
            protocol: None,
        };
    };
    let method = &trimmed[..first_space];
    let rest = &trimmed[first_space + 1..];
    let (url, protocol) = match memchr::memrchr(b' ', rest.as_bytes()) {
        Some(last_space) => (&rest[..last_space], &rest[last_space + 1..]),
        None => (rest, ""),
    };
    Request {
        method: dash(method).map(|_| method),
        url: dash(url).map(|_| url),
        protocol: dash(protocol).map(|_| protocol),
    }
}

/// An integer as `str::parse::<i64>` reads it (an optional sign, then
/// ASCII digits), with a fast path for the short numbers logs are full of.
pub fn parse_int(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    // Eighteen digits cannot overflow an i64.
    if digits.is_empty() || digits.len() > 18 {
        return s.parse().ok();
    }
    let mut value = 0i64;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + i64::from(digit);
    }
    Some(if negative { -value } else { value })
}

/// A finite decimal number as `str::parse::<f64>` reads it. Plain decimals
/// (`-1`, `0.000073`) take Clinger's fast path: an integer mantissa below
/// 2^53 divided by an exact power of ten is one correctly rounded
/// operation, so the result equals the full parser's. Anything else
/// (exponents, long mantissas) goes to the full parser; `inf` and `NaN`
/// are refused, since no sink can store them.
pub fn parse_float(s: &str) -> Option<f64> {
    const EXACT_POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let full_parser = || s.parse::<f64>().ok().filter(|v| v.is_finite());
    let bytes = s.as_bytes();
    let (negative, number) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut mantissa = 0u64;
    let mut digits = 0;
    let mut fraction_digits = None;
    for &b in number {
        match b {
            b'0'..=b'9' if digits < 19 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                fraction_digits = fraction_digits.map(|n: usize| n + 1);
            }
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
            _ => return full_parser(),
        }
    }
    let scale = fraction_digits.unwrap_or(0);
    if digits == 0 || mantissa >= 1 << 53 || scale >= EXACT_POWERS.len() {
        return full_parser();
    }
    let value = mantissa as f64 / EXACT_POWERS[scale];
    Some(if negative { -value } else { value })
}

/// `None` for AWS's `-` placeholder and for empty values.
pub fn present(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "-").then_some(s)
}

/// An integer field: `None` for `-`; otherwise an error naming the field
/// when the value is not an integer.
pub fn int_or_dash(name: &str, value: &str) -> Result<Option<i64>, String> {
    if value == "-" {
        return Ok(None);
    }
    parse_int(value)
        .map(Some)
        .ok_or_else(|| format!("{name} {value:?} is not an integer"))
}

/// A decimal field: `None` for `-`; otherwise an error naming the field
/// when the value is not a finite number (Rust's parser also reads `inf`
/// and `NaN`, which no sink can store).
pub fn float_or_dash(name: &str, value: &str) -> Result<Option<f64>, String> {
    if value == "-" {
        return Ok(None);
    }
    parse_float(value)
        .map(Some)
        .ok_or_else(|| format!("{name} {value:?} is not a number"))
}

/// An `ip:port` field split per [`split_host_port`]: `None` for `-`;
/// otherwise an error naming the field when the port is missing or not an
/// integer.
pub fn host_port_or_dash<'a>(name: &str, value: &'a str) -> Result<Option<(&'a str, i64)>, String> {
    if value == "-" {
        return Ok(None);
    }
    let (host, port) =
        split_host_port(value).ok_or_else(|| format!("{name} {value:?} has no port"))?;
    let port = parse_int(port).ok_or_else(|| format!("{name} {value:?} has no numeric port"))?;
    Ok(Some((host, port)))
}

/// The first `N` fields of a line in a format that has grown fields over
/// the years: a field the line does not reach reads as `-` (absent), as the
/// record conventions ask for fields a line predates, and whatever follows
/// stays in `fields` (extras). A line with fewer than `required` fields is
/// cut off; the error names the `format` ("a CLB access log").
pub fn documented_fields<'a, const N: usize>(
    fields: &mut impl Iterator<Item = &'a str>,
    required: usize,
    format: &str,
) -> Result<[&'a str; N], String> {
    let documented: [Option<&str>; N] = std::array::from_fn(|_| fields.next());
    let given = documented.iter().flatten().count();
    if given < required {
        return Err(format!(
            "only {given} fields; {format} line has at least {required}"
        ));
    }
    Ok(documented.map(|field| field.unwrap_or("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_end_at_a_quote_before_a_space() {
        let line =
            r#"a "GET /x?q="y"&z HTTP/1.1" "ua \x22 \"z" - [06/Feb/2019:00:00:38 +0000] end"#;
        let fields: Vec<&str> = Fields::new(line).collect();
        assert_eq!(
            fields,
            [
                "a",
                r#"GET /x?q="y"&z HTTP/1.1"#,
                r#"ua \x22 \"z"#,
                "-",
                "[06/Feb/2019:00:00:38 +0000]",
                "end"
            ]
        );
    }

    /// Lines of up to 23 spaces, quotes, brackets, dashes and multi-byte
    /// characters, the same every run.
    fn random_lines(count: usize) -> impl Iterator<Item = String> {
        let alphabet = ['a', ' ', '"', '[', ']', 'é', '€', '-'];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        (0..count).map(move |_| {
            let len = next(24);
            (0..len).map(|_| alphabet[next(alphabet.len())]).collect()
        })
    }

    #[test]
    fn fields_of_any_line_are_cut_at_character_boundaries() {
        // Lines of spaces, quotes, brackets and multi-byte characters; the
        // tokenizer's debug assertion checks every cut, and the fields must
        // be the line's own text in order.
        for line in random_lines(20_000) {
            let mut from = 0;
            for field in Fields::new(&line) {
                let at = field.as_ptr() as usize - line.as_ptr() as usize;
                assert!(at >= from && at + field.len() <= line.len(), "{line:?}");
                from = at + field.len();
            }
        }
    }

    #[test]
    fn filling_an_array_splits_as_iterating_does() {
        for line in random_lines(10_000) {
            for split in [Fields::new, Fields::unbracketed] {
                let iterated: Vec<&str> = split(&line).collect();
                let mut fields = split(&line);
                let mut first = [""; 4];
                let count = fields.fill(&mut first);
                let filled: Vec<&str> = first[..count].iter().copied().chain(fields).collect();
                assert_eq!(filled, iterated, "{line:?}");
                assert_eq!(count, iterated.len().min(4), "{line:?}");
            }
        }
    }

    #[test]
    fn unbracketed_fields_end_a_bracket_at_the_next_space() {
        let line = "[2001:db8::1]:443 [a b] \"q r\"";
        let fields: Vec<&str> = Fields::unbracketed(line).collect();
        assert_eq!(fields, ["[2001:db8::1]:443", "[a", "b]", "q r"]);
        // Where brackets open fields, the endpoint's `]` (not before a
        // space) does not close one, which is why ELB lines need this.
        let bracketed: Vec<&str> = Fields::new(line).collect();
        assert_eq!(bracketed, ["[2001:db8::1]:443 [a b]", "q r"]);
    }

    #[test]
    fn empty_fields_and_trailing_space_are_kept() {
        let fields: Vec<&str> = Fields::new(r#"a  "" b "#).collect();
        assert_eq!(fields, ["a", "", "", "b", ""]);
        assert_eq!(Fields::new("").count(), 0);
        let unterminated: Vec<&str> = Fields::new(r#"x "abc"#).collect();
        assert_eq!(unterminated, ["x", "abc"]);
    }

    #[test]
    fn the_word_scan_finds_the_first_space_at_every_position() {
        let background = "ab!\u{a0}é\u{ffff}\u{1f}\u{21}".repeat(3);
        for at in (0..=background.len()).filter(|&at| background.is_char_boundary(at)) {
            let mut text = background.clone();
            text.insert(at, ' ');
            text.push(' ');
            assert_eq!(next_space(text.as_bytes()), Some(at), "space at {at}");
        }
        assert_eq!(next_space(background.as_bytes()), None);
    }

    #[test]
    fn ascii_splits_keep_empty_items_like_str_split() {
        for text in ["", ",", "forward", "waf,forward", ",a,,b,", "é,€,x"] {
            let ours: Vec<&str> = split_ascii(text, b',').collect();
            assert_eq!(ours, text.split(',').collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn runs_of_spaces_are_one_separator() {
        let words: Vec<&str> = space_separated("  a  b c   ").collect();
        assert_eq!(words, ["a", "b", "c"]);
        assert_eq!(space_separated("   ").count(), 0);
        // Spaces are the only whitespace in these lines, so splitting at
        // any whitespace must cut them the same way.
        for line in random_lines(10_000) {
            let words: Vec<&str> = space_separated(&line).collect();
            assert_eq!(
                words,
                line.split_whitespace().collect::<Vec<_>>(),
                "{line:?}"
            );
        }
    }

    #[test]
    fn host_port_splits_at_the_last_colon() {
        assert_eq!(
            split_host_port("192.168.131.39:2817"),
            Some(("192.168.131.39", "2817"))
        );
        assert_eq!(
            split_host_port("2001:db8::1:50718"),
            Some(("2001:db8::1", "50718"))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            Some(("2001:db8::1", "443"))
        );
        assert_eq!(split_host_port("-"), None);
    }

    #[test]
    fn request_lines_split_around_spaces_in_urls() {
        assert_eq!(
            split_request("GET http://example.com:80/a b?c=d e HTTP/1.1"),
            Request {
                method: Some("GET"),
                url: Some("http://example.com:80/a b?c=d e"),
                protocol: Some("HTTP/1.1"),
            }
        );
        let none = Request {
            method: None,
            url: None,
            protocol: None,
        };
        assert_eq!(split_request("- - -"), none);
        assert_eq!(split_request("- - - "), none);
        assert_eq!(
            split_request("- http://lb-dns:80- "),
            Request {
                method: None,
                url: Some("http://lb-dns:80-"),
                protocol: None,
            }
        );
    }

    #[test]
    fn numbers_read_exactly_as_the_standard_parsers_read_them() {
        let ints = [
            "0",
            "-1",
            "+7",
            "305",
            "-0",
            "123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "",
            "-",
            "+",
            "1x",
            "x1",
            "1 ",
            "٣",
            "00042",
            "1.0",
        ];
        for text in ints {
            assert_eq!(parse_int(text), text.parse::<i64>().ok(), "{text:?}");
        }
        let floats = [
            "0",
            "-1",
            "0.000",
            "0.001",
            "0.000073",
            "1.5",
            "-0.25",
            "12.",
            ".5",
            "-.5",
            "123456.789012",
            "0.1",
            "0.3",
            "2.675",
            "9007199254740991",
            "9007199254740993",
            "1234567890.1234567890123",
            "1e3",
            "1E-7",
            "-",
            "",
            ".",
            "-.",
            "1.2.3",
            "1,5",
            "0.0000000000000000000000001",
            "+1.5",
            "inf",
            "NaN",
            "-infinity",
            "1e999",
        ];
        for text in floats {
            let standard = text.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(
                parse_float(text).map(f64::to_bits),
                standard.map(f64::to_bits),
                "{text:?}"
            );
        }
        // Every timing ALB can write with three decimals, and then some.
        for n in 0..20_000u32 {
            let text = format!("{}.{:03}", n / 1000, n % 1000);
            assert_eq!(parse_float(&text), text.parse().ok(), "{text}");
        }
    }

    #[test]
    fn typed_fields_name_the_field_in_errors() {
        assert_eq!(int_or_dash("sent_bytes", "305"), Ok(Some(305)));
        assert_eq!(int_or_dash("sent_bytes", "-"), Ok(None));
        assert_eq!(
            int_or_dash("sent_bytes", "3x"),
            Err("sent_bytes \"3x\" is not an integer".to_string())
        );
        assert_eq!(float_or_dash("latency", "-1"), Ok(Some(-1.0)));
        assert_eq!(float_or_dash("latency", "0.000073"), Ok(Some(0.000073)));
        assert_eq!(float_or_dash("latency", "-"), Ok(None));
        assert!(float_or_dash("latency", "NaN").is_err());
        assert!(float_or_dash("latency", "inf").is_err());
        assert_eq!(
            host_port_or_dash("client:port", "2001:db8::1:50718"),
            Ok(Some(("2001:db8::1", 50718)))
        );
        assert_eq!(host_port_or_dash("client:port", "-"), Ok(None));
        assert_eq!(
            host_port_or_dash("client:port", "10.0.0.1"),
            Err("client:port \"10.0.0.1\" has no port".to_string())
        );
        assert!(host_port_or_dash("client:port", "10.0.0.1:http").is_err());
    }

    #[test]
    fn documented_fields_fill_what_a_line_predates_and_leave_extras() {
        let mut short = Fields::new("a b c");
        let three: [&str; 4] = documented_fields(&mut short, 3, "a test log").unwrap();
        assert_eq!(three, ["a", "b", "c", "-"]);

        let mut long = Fields::new("a b c d e");
        let four: [&str; 4] = documented_fields(&mut long, 3, "a test log").unwrap();
        assert_eq!(four, ["a", "b", "c", "d"]);
        assert_eq!(long.collect::<Vec<_>>(), ["e"]);

        let mut cut = Fields::new("a b");
        assert_eq!(
            documented_fields::<4>(&mut cut, 3, "a test log"),
            Err("only 2 fields; a test log line has at least 3".to_string())
        );
    }
}
