//! Durations written the Go and Kubernetes way: `"90s"`, `"15m"`, `"1h30m"`, `"500ms"`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative length of time, serialized as a Go-style duration string.
///
/// The text is kept exactly as written, so `"90s"` stays `"90s"` (it is not rewritten to `"1m30s"`):
/// a GitOps repo and the server then never disagree about a field nobody changed, and a runbook's digest
/// covers the text its author signed. Two durations are equal when their texts are; compare
/// [`Duration::as_std`] to compare lengths.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    /// The string as written (or as produced by [`Duration::from_std`]).
    text: String,
    /// Its value.
    value: std::time::Duration,
}

/// Why a string is not a duration; each message shows the accepted syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration; {SYNTAX}")]
    Empty,
    /// A leading `-` or `+`: durations here are lengths, never negative.
    #[error("duration {input:?} must not carry a sign; {SYNTAX}")]
    Signed {
        /// The string as given.
        input: String,
    },
    /// A unit, a bare `.` or a second `.` where a number was expected.
    #[error(
        "duration {input:?} needs a number (digits with at most one fraction) at byte {position}; {SYNTAX}"
    )]
    ExpectedNumber {
        /// The string as given.
        input: String,
        /// Byte offset where a number was expected.
        position: usize,
    },
    /// A number without a unit after it, such as `"30"`.
    #[error("duration {input:?} is missing a unit after {number:?}; {SYNTAX}")]
    MissingUnit {
        /// The string as given.
        input: String,
        /// The number that has no unit.
        number: String,
    },
    /// A unit that Go durations do not have, such as `d` or `sec`.
    #[error("duration {input:?} has unknown unit {unit:?}; {SYNTAX}")]
    UnknownUnit {
        /// The string as given.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// A value too large to represent.
    #[error("duration {input:?} is too large")]
    Overflow {
        /// The string as given.
        input: String,
    },
}

/// The syntax, quoted by every error message.
const SYNTAX: &str = "write numbers with units h, m, s, ms, us or ns, e.g. \"90s\", \"15m\", \"1h30m\" \
                      or \"500ms\"";

/// The JSON Schema pattern matching what [`Duration::from_str`] accepts.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$";

impl Duration {
    /// The duration in its canonical text: hours, minutes, seconds, milliseconds, microseconds and
    /// nanoseconds, largest first, zero parts left out (`"1h30m"`, `"1s500ms"`, `"0s"`).
    pub fn from_std(value: std::time::Duration) -> Self {
        let mut text = String::new();
        let mut rest = value.as_nanos();
        for (unit, nanos) in UNITS_LARGEST_FIRST {
            let count = rest / nanos;
            if count > 0 {
                text.push_str(&format!("{count}{unit}"));
                rest %= nanos;
            }
        }
        if text.is_empty() {
            text.push_str("0s");
        }
        Self { text, value }
    }

    /// The value as a standard library duration.
    pub fn as_std(&self) -> std::time::Duration {
        self.value
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<std::time::Duration> for Duration {
    fn from(value: std::time::Duration) -> Self {
        Self::from_std(value)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Parses Go's duration syntax: one or more `<number><unit>` pairs, where the number may have a
    /// fraction (`"1.5h"`), plus the bare `"0"`. Unlike Go, a sign is refused and a number needs a digit
    /// before any `.`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(DurationError::Empty);
        }
        if input.starts_with(['-', '+']) {
            return Err(DurationError::Signed {
                input: input.to_owned(),
            });
        }
        if input == "0" {
            return Ok(Self {
                text: input.to_owned(),
                value: std::time::Duration::ZERO,
            });
        }
        let overflow = || DurationError::Overflow {
            input: input.to_owned(),
        };
        let mut total: u128 = 0;
        let mut rest = input;
        while !rest.is_empty() {
            let position = input.len() - rest.len();
            let (number, after_number) = split_number(rest);
            if number.is_empty()
                || number.starts_with('.')
                || number.ends_with('.')
                || number.matches('.').count() > 1
            {
                return Err(DurationError::ExpectedNumber {
                    input: input.to_owned(),
                    position,
                });
            }
            let unit_len = after_number
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after_number.len());
            let (unit, after_unit) = after_number.split_at(unit_len);
            if unit.is_empty() {
                return Err(DurationError::MissingUnit {
                    input: input.to_owned(),
                    number: number.to_owned(),
                });
            }
            let unit_nanos = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            })?;
            total = total
                .checked_add(scale(number, unit_nanos).ok_or_else(overflow)?)
                .ok_or_else(overflow)?;
            rest = after_unit;
        }
        let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| overflow())?;
        // The remainder of a division by 10^9 always fits in u32.
        let nanos = (total % NANOS_PER_SEC) as u32;
        Ok(Self {
            text: input.to_owned(),
            value: std::time::Duration::new(secs, nanos),
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({:?})", self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration such as \"90s\", \"15m\", \"1h30m\" or \"500ms\" (units h, m, s, ms, us, ns)."
        })
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units in the order [`Duration::from_std`] writes them, with their length in nanoseconds.
const UNITS_LARGEST_FIRST: [(&str, u128); 6] = [
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

fn unit_nanos(unit: &str) -> Option<u128> {
    match unit {
        // Go accepts both the micro sign (U+00B5) and the Greek mu (U+03BC).
        "µs" | "μs" => Some(1_000),
        _ => UNITS_LARGEST_FIRST
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, nanos)| *nanos),
    }
}

/// Splits the leading run of digits and dots off `s`.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// `number` (digits with at most one inner `.`) times `unit_nanos`, truncated to whole nanoseconds, or
/// `None` on overflow.
fn scale(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = whole.parse().ok()?;
    let mut value = whole.checked_mul(unit_nanos)?;
    // Digits past the 18th cannot add a nanosecond to any unit up to an hour (3.6e12 ns).
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(fraction.len() as u32);
        value = value.checked_add(digits.checked_mul(unit_nanos)? / denominator)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn parses_go_syntax() {
        let cases: [(&str, Std); 11] = [
            ("0", Std::ZERO),
            ("0s", Std::ZERO),
            ("90s", Std::from_secs(90)),
            ("15m", Std::from_secs(900)),
            ("1h30m", Std::from_secs(5_400)),
            ("500ms", Std::from_millis(500)),
            ("1.5h", Std::from_secs(5_400)),
            ("2h45m30.5s", Std::from_millis(9_930_500)),
            ("10us", Std::from_micros(10)),
            ("10µs", Std::from_micros(10)),
            ("7ns", Std::from_nanos(7)),
        ];
        for (text, expected) in cases {
            let parsed: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.as_std(), expected, "{text}");
            assert_eq!(parsed.to_string(), text, "{text} keeps its text");
        }
    }

    #[test]
    fn rejects_garbage_with_the_syntax_in_the_message() {
        let cases = [
            ("", "empty duration"),
            ("-5s", "must not carry a sign"),
            ("+5s", "must not carry a sign"),
            ("30", "missing a unit after \"30\""),
            ("1d", "unknown unit \"d\""),
            ("5 min", "unknown unit \" min\""),
            (
                "h",
                "needs a number (digits with at most one fraction) at byte 0",
            ),
            ("1h.5m", "at byte 2"),
            ("1.s", "at byte 0"),
            ("1m1.2.3s", "at byte 2"),
            ("99999999999999999999999999999999999999h", "too large"),
        ];
        for (text, expected) in cases {
            let err = text.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            if !expected.contains("too large") {
                assert!(err.contains("e.g. \"90s\""), "{text:?}: {err}");
            }
        }
    }

    #[test]
    fn canonical_text_from_std() {
        let cases = [
            (Std::ZERO, "0s"),
            (Std::from_secs(90), "1m30s"),
            (Std::from_secs(3_600), "1h"),
            (Std::from_millis(1_500), "1s500ms"),
            (Std::new(5_400, 1_001), "1h30m1us1ns"),
        ];
        for (value, text) in cases {
            let d = Duration::from_std(value);
            assert_eq!(d.as_str(), text);
            assert_eq!(text.parse::<Duration>().unwrap().as_std(), value, "{text}");
        }
    }

    #[test]
    fn serde_round_trips_the_exact_text() {
        let d: Duration = serde_json::from_str(r#""1h30m""#).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""1h30m""#);
        let err = serde_json::from_str::<Duration>(r#""soon""#).unwrap_err();
        assert!(err.to_string().contains("needs a number"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn canonical_text_parses_back_to_the_same_value(nanos in 0u64..u64::MAX) {
            let value = Std::from_nanos(nanos);
            let d = Duration::from_std(value);
            proptest::prop_assert_eq!(d.as_str().parse::<Duration>().unwrap().as_std(), value);
        }
    }
}
