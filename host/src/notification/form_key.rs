//! Decoding object keys as S3 event notifications spell them: form encoding,
//! `+` for a space and `%XX` for any other byte of the UTF-8 key.

use super::Unrecognized;

/// The key to request from S3. A stray `%` or a byte sequence that is not
/// UTF-8 makes the notification unusable rather than guessed at.
pub(super) fn decode(encoded: &str) -> Result<String, Unrecognized> {
    if !encoded.contains(['+', '%']) {
        return Ok(encoded.to_owned());
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let escaped = match rest {
                    [high, low, ..] => hex_digit(*high)
                        .zip(hex_digit(*low))
                        .map(|(high, low)| high << 4 | low),
                    _ => None,
                };
                let Some(escaped) = escaped else {
                    let offset = encoded.len() - rest.len() - 1;
                    return Err(Unrecognized::new(format!("bad %-escape at byte {offset}")));
                };
                bytes.push(escaped);
                rest = &rest[2..];
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).map_err(|_| Unrecognized::new("not UTF-8 after %-decoding"))
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn plus_is_a_space_and_escapes_are_bytes() {
        assert_eq!(decode("red+flower.jpg").unwrap(), "red flower.jpg");
        assert_eq!(decode("a%2Bb%3Dc%20d").unwrap(), "a+b=c d");
        assert_eq!(decode("logs/x=1/y%3A2").unwrap(), "logs/x=1/y:2");
        assert_eq!(
            decode("caf%C3%A9/%E6%97%A5%E6%9C%AC.gz").unwrap(),
            "café/日本.gz"
        );
        assert_eq!(decode("lower%c3%a9").unwrap(), "loweré");
    }

    #[test]
    fn unescaped_unicode_passes_through() {
        assert_eq!(decode("café/日本+x.gz").unwrap(), "café/日本 x.gz");
    }

    #[test]
    fn bad_escapes_are_rejected_with_their_offset() {
        assert_eq!(decode("ab%2").unwrap_err().reason, "bad %-escape at byte 2");
        assert_eq!(
            decode("ab%zz").unwrap_err().reason,
            "bad %-escape at byte 2"
        );
        assert_eq!(decode("%").unwrap_err().reason, "bad %-escape at byte 0");
        assert_eq!(decode("x%+1").unwrap_err().reason, "bad %-escape at byte 1");
    }

    #[test]
    fn invalid_utf8_after_decoding_is_rejected() {
        assert_eq!(
            decode("bad%FF").unwrap_err().reason,
            "not UTF-8 after %-decoding"
        );
        assert_eq!(
            decode("cut%C3").unwrap_err().reason,
            "not UTF-8 after %-decoding"
        );
    }
}
