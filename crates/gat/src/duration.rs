//! Durations as operators write them.
//!
//! Accepted: Go's `time.ParseDuration` syntax without the sign (`500ms`, `10s`, `1m30s`, `1.5h`, units
//! `ns us µs ms s m h`), Caddy's `d` for days, and a plain non-negative integer meaning seconds (what
//! PgBouncer users write, `server_lifetime 3600`). `0` is zero. Negative values are rejected.
//! Settings that can be switched off also take `off` (see [`parse_or_off`]).
//!
//! The JSON form writes a duration as the canonical string [`format()`] produces (`"1h30m"`, `"500ms"`),
//! which parses back to exactly the same value.

use std::time::Duration;

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// What the error messages say a duration looks like.
pub(crate) const EXPECTED: &str = "a duration such as 500ms, 10s, 1m30s or 2h";

/// Parses a duration; `None` when `text` is not one.
pub fn parse(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let (unit, scale) = UNITS
            .iter()
            .filter(|(name, _)| rest.starts_with(name))
            .max_by_key(|(name, _)| name.len())?;
        rest = &rest[unit.len()..];
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        nanos = nanos.checked_add(whole.checked_mul(*scale)?)?;
        // Fractions: keep up to 18 digits, enough below a nanosecond for any unit here.
        let mut divisor: u128 = 1;
        let mut numerator: u128 = 0;
        for digit in frac.bytes().take(18) {
            numerator = numerator * 10 + u128::from(digit - b'0');
            divisor *= 10;
        }
        nanos = nanos.checked_add(numerator.checked_mul(*scale)? / divisor)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    // The remainder is below 10^9 and so always fits a u32.
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

/// Parses a duration that may be switched off: `off` and `0` mean `None`.
pub fn parse_or_off(text: &str) -> Option<Option<Duration>> {
    if text == "off" {
        return Some(None);
    }
    parse(text).map(|d| if d.is_zero() { None } else { Some(d) })
}

/// The canonical text of a duration: largest units first, zero parts left out, `0s` for zero.
pub fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let secs = duration.as_secs();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(duration.subsec_millis()), "ms"),
        (u64::from(duration.subsec_micros() % 1000), "us"),
        (u64::from(duration.subsec_nanos() % 1000), "ns"),
    ];
    for (value, unit) in parts {
        if value != 0 {
            out.push_str(&value.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// serde helpers: `#[serde(with = "crate::duration::serde_duration")]`.
pub(crate) mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "invalid duration {text:?}, expected {}",
                super::EXPECTED
            ))
        })
    }
}

/// serde helpers for settings that can be off: `null` is off. Used with `with`, which also makes the field
/// required in JSON (a missing field is an error, not a silent "off").
pub(crate) mod serde_opt_duration {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&super::format(*d)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => super::parse(&text).map(Some).ok_or_else(|| {
                D::Error::custom(format!(
                    "invalid duration {text:?}, expected {} or null",
                    super::EXPECTED
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{format, parse, parse_or_off};
    use std::time::Duration;

    #[test]
    fn go_style() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse("3us"), Some(Duration::from_micros(3)));
        assert_eq!(parse("3µs"), Some(Duration::from_micros(3)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("1h1m1s1ms"), Some(Duration::from_millis(3_661_001)));
    }

    #[test]
    fn plain_integers_are_seconds() {
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("3600"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "s",
            "10x",
            "-1s",
            "1.s.",
            "twenty",
            "1 s",
            "1m30",
            ".s",
            "99999999999999999999999h",
            "1e3s",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn off() {
        assert_eq!(parse_or_off("off"), Some(None));
        assert_eq!(parse_or_off("0"), Some(None));
        assert_eq!(parse_or_off("0s"), Some(None));
        assert_eq!(parse_or_off("5m"), Some(Some(Duration::from_secs(300))));
        assert_eq!(parse_or_off("on"), None);
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(90),
            Duration::from_millis(500),
            Duration::from_millis(1500),
            Duration::from_secs(25 * 3600 + 61),
            Duration::new(3, 1_002_003),
            Duration::from_nanos(1),
        ] {
            assert_eq!(parse(&format(d)), Some(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
    }
}
