//! Cutting a connection's bytes into JSON objects: one pass over each byte
//! as it arrives (nesting and strings tracked across reads, so an object
//! split over many reads is not scanned again), every complete object then
//! checked by serde_json. Objects may follow each other on one line, on
//! lines of their own, or span lines.

use std::ops::Range;

/// What the scanner found next in the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// A complete object at this range of the buffer: well-formed JSON.
    Object(Range<usize>),
    /// Everything up to the end of the buffer is read; an object may have
    /// begun at [`Scanner::pending_start`].
    NeedMore,
    /// Not a stream of JSON objects; the connection is to be closed.
    Malformed(String),
    /// An object outgrew the limit; the connection is to be closed.
    TooLarge,
}

/// Finds objects in a buffer that grows at its end and is drained at its
/// start (by [`Scanner::consumed`]).
#[derive(Debug)]
pub struct Scanner {
    max_object_bytes: usize,
    /// The next byte to look at.
    pos: usize,
    /// Where the object being read began; `None` between objects.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Scanner {
    pub fn new(max_object_bytes: usize) -> Scanner {
        Scanner {
            max_object_bytes,
            pos: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// The next object of `buf`, which holds what earlier calls saw plus
    /// what arrived since.
    pub fn next(&mut self, buf: &[u8]) -> Scanned {
        loop {
            let Some(start) = self.start else {
                // Between objects: whitespace, then `{`.
                match buf[self.pos..]
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                {
                    None => {
                        self.pos = buf.len();
                        return Scanned::NeedMore;
                    }
                    Some(skip) => {
                        self.pos += skip;
                        if buf[self.pos] != b'{' {
                            return Scanned::Malformed(format!(
                                "expected a JSON object, found {:?}",
                                char::from(buf[self.pos])
                            ));
                        }
                        self.start = Some(self.pos);
                        self.depth = 1;
                        self.pos += 1;
                    }
                }
                continue;
            };
            match self.find_end(buf) {
                Some(end) => {
                    self.start = None;
                    let object = &buf[start..end];
                    if object.len() > self.max_object_bytes {
                        return Scanned::TooLarge;
                    }
                    return match serde_json::from_slice::<serde::de::IgnoredAny>(object) {
                        Ok(_) => Scanned::Object(start..end),
                        Err(error) => Scanned::Malformed(format!("invalid JSON: {error}")),
                    };
                }
                None if buf.len() - start > self.max_object_bytes => return Scanned::TooLarge,
                None => return Scanned::NeedMore,
            }
        }
    }

    /// Reads on from `pos` to the byte after the `}` that closes the
    /// object; `None` at the end of `buf`.
    fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        while self.pos < buf.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    self.pos += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &buf[self.pos..]) {
                    None => {
                        self.pos = buf.len();
                        return None;
                    }
                    Some(at) => {
                        self.pos += at;
                        if buf[self.pos] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        self.pos += 1;
                    }
                }
                continue;
            }
            let byte = buf[self.pos];
            self.pos += 1;
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(self.pos);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Where the object being read began, if one has.
    pub fn pending_start(&self) -> Option<usize> {
        self.start
    }

    /// The first `n` bytes of the buffer were drained.
    pub fn consumed(&mut self, n: usize) {
        self.pos -= n;
        if let Some(start) = &mut self.start {
            *start -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object of `chunks` fed one after the other, or the first failure.
    fn scan(chunks: &[&str], max: usize) -> Result<Vec<String>, Scanned> {
        let mut scanner = Scanner::new(max);
        let mut buf = Vec::new();
        let mut objects = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk.as_bytes());
            loop {
                match scanner.next(&buf) {
                    Scanned::Object(range) => {
                        objects.push(String::from_utf8(buf[range.clone()].to_vec()).unwrap());
                        // Drain as the connection does.
                        buf.drain(..range.end);
                        scanner.consumed(range.end);
                    }
                    Scanned::NeedMore => break,
                    other => return Err(other),
                }
            }
        }
        Ok(objects)
    }

    #[test]
    fn objects_on_lines_concatenated_and_split_across_reads() {
        let objects = scan(
            &[
                "{\"a\":1}\n{\"b\":\"}{\"}{\"c\"",
                ":[1,{\"d\":\"\\\"}\"}]}",
                "  \r\n{\n  \"e\": \"x\\\\\"\n}",
            ],
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            objects,
            [
                r#"{"a":1}"#,
                r#"{"b":"}{"}"#,
                r#"{"c":[1,{"d":"\"}"}]}"#,
                "{\n  \"e\": \"x\\\\\"\n}",
            ]
        );
    }

    #[test]
    fn a_value_other_than_an_object_or_broken_json_is_malformed() {
        assert!(matches!(
            scan(&["{\"a\":1} [1]"], 100),
            Err(Scanned::Malformed(_))
        ));
        assert!(matches!(
            scan(&["{\"a\":}"], 100),
            Err(Scanned::Malformed(_))
        ));
        assert!(matches!(
            scan(&["{\"a\":1]"], 100),
            Err(Scanned::Malformed(_))
        ));
        assert!(matches!(
            scan(&["{\"a\":\"\u{1}\"}"], 100),
            Err(Scanned::Malformed(_))
        ));
    }

    #[test]
    fn an_object_over_the_limit_is_too_large_complete_or_not() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        assert_eq!(scan(&[&big], 50), Err(Scanned::TooLarge));
        assert_eq!(scan(&[&big[..60]], 50), Err(Scanned::TooLarge));
        assert_eq!(scan(&[&big[..40]], 50), Ok(vec![]));
        assert_eq!(scan(&[&big], big.len()), Ok(vec![big.clone()]));
    }
}
