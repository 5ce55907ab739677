//! Timestamps stored as sort keys must order as strings: RFC 3339 with a fixed six-digit
//! fraction (`2026-11-22T10:00:00.000000Z`). Reading accepts any RFC 3339.

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

pub fn format(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(UtcOffset::UTC).format(&fmt).expect("UTC timestamps always format")
}

/// `None` for anything that is not RFC 3339 or that has no UTC form within years 1–9999.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok().and_then(|t| t.checked_to_offset(UtcOffset::UTC))
}

pub fn serialize<S: Serializer>(t: &OffsetDateTime, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&format(*t))
}

pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<OffsetDateTime, D::Error> {
    let s = String::deserialize(de)?;
    parse(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 timestamp")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_so_strings_sort_like_times() {
        let a = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let b = a + time::Duration::milliseconds(500);
        assert_eq!(format(a), "2027-01-15T08:00:00.000000Z");
        assert!(format(a) < format(b));
        assert_eq!(parse(&format(b)), Some(b));
    }

    #[test]
    fn timestamps_beyond_year_9999_in_utc_are_refused_not_a_panic() {
        assert_eq!(parse("9999-12-31T23:59:59-23:59"), None);
        assert!(parse("9999-12-31T23:59:59Z").is_some());
    }
}
