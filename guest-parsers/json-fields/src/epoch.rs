//! Record times that JSON logs write as numbers since the Unix epoch
//! (WAF's milliseconds, CloudWatch Logs' milliseconds, an app's seconds).

/// The unit of a Unix time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl EpochUnit {
    fn nanos_per_unit(self) -> i64 {
        match self {
            EpochUnit::Seconds => 1_000_000_000,
            EpochUnit::Millis => 1_000_000,
            EpochUnit::Micros => 1_000,
            EpochUnit::Nanos => 1,
        }
    }

    /// The unit a present-day Unix time of this magnitude has: below 10^11
    /// seconds (until the year 5138), below 10^14 milliseconds, below 10^17
    /// microseconds, else nanoseconds.
    pub fn guess(whole: i64) -> EpochUnit {
        match whole.unsigned_abs() {
            0..100_000_000_000 => EpochUnit::Seconds,
            100_000_000_000..100_000_000_000_000 => EpochUnit::Millis,
            100_000_000_000_000..100_000_000_000_000_000 => EpochUnit::Micros,
            _ => EpochUnit::Nanos,
        }
    }

    /// UTC nanoseconds of `value` units; `None` on overflow.
    pub fn nanos(self, value: i64) -> Option<i64> {
        value.checked_mul(self.nanos_per_unit())
    }

    /// Parses a non-negative decimal number of this unit (`1544414264.183`)
    /// into UTC nanoseconds, without the rounding of floating point.
    /// Exponents are refused.
    pub fn parse(self, text: &str) -> Option<i64> {
        let (whole, fraction) = split_decimal(text)?;
        self.nanos(whole.parse().ok()?)?
            .checked_add(self.fraction_nanos(fraction))
    }

    /// Like [`EpochUnit::parse`], with the unit guessed from the magnitude.
    pub fn parse_guessing(text: &str) -> Option<i64> {
        let (whole, _) = split_decimal(text)?;
        EpochUnit::guess(whole.parse().ok()?).parse(text)
    }

    fn fraction_nanos(self, fraction: &str) -> i64 {
        let mut scale = self.nanos_per_unit();
        let mut nanos = 0;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += i64::from(digit - b'0') * scale;
        }
        nanos
    }
}

/// The digits before and after the decimal point, if `text` is a plain
/// non-negative decimal number.
fn split_decimal(text: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!whole.is_empty() && digits(whole) && digits(fraction)).then_some((whole, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_to_nanoseconds() {
        assert_eq!(
            EpochUnit::Millis.parse("1576280412771"),
            Some(1_576_280_412_771_000_000)
        );
        assert_eq!(
            EpochUnit::Seconds.parse("1544414264.183"),
            Some(1_544_414_264_183_000_000)
        );
        assert_eq!(
            EpochUnit::Micros.parse("1544414264183001.5"),
            Some(1_544_414_264_183_001_500)
        );
        assert_eq!(
            EpochUnit::Nanos.parse("1544414264183001999.9"),
            Some(1_544_414_264_183_001_999)
        );
        assert_eq!(
            EpochUnit::Seconds.parse("1.0000000019"),
            Some(1_000_000_001)
        );
    }

    #[test]
    fn non_decimal_text_and_overflow_are_refused() {
        for text in ["", "-1", "1e9", "1.5.2", "12a", ".5", "0x10"] {
            assert_eq!(EpochUnit::Seconds.parse(text), None, "{text:?}");
        }
        assert_eq!(EpochUnit::Seconds.parse("9223372037"), None);
        assert_eq!(EpochUnit::Millis.nanos(i64::MAX / 1000), None);
    }

    #[test]
    fn magnitude_picks_the_unit() {
        let second = 1_544_414_264_000_000_000;
        for text in [
            "1544414264",
            "1544414264000",
            "1544414264000000",
            "1544414264000000000",
        ] {
            assert_eq!(EpochUnit::parse_guessing(text), Some(second), "{text}");
        }
        assert_eq!(
            EpochUnit::parse_guessing("1544414264.5"),
            Some(second + 500_000_000)
        );
        assert_eq!(EpochUnit::guess(0), EpochUnit::Seconds);
    }
}
