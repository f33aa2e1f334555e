//! Audit timestamps: written as 0.11.6 writes them (RFC 3339, UTC, microseconds, `+00:00`),
//! read in any RFC 3339 or naive ISO 8601 form, and the `--since` forms of `vibectl audit`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The time now as 0.11.6 writes it: `2025-06-18T12:34:56.123456+00:00`.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// `t` in UTC as 0.11.6 writes timestamps (always six fraction digits; Python drops them when
/// they are all zero, and reads both).
pub fn format(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    t.to_offset(UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A timestamp of a record: RFC 3339 (`Z` or an offset), or a naive ISO 8601 date-time or
/// date, read as UTC.
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let naive = format_description!(
        "[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(t) = PrimitiveDateTime::parse(text, naive) {
        return Some(t.assume_utc());
    }
    let date = format_description!("[year]-[month]-[day]");
    Date::parse(text, date)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// The forms `--since` accepts, for error messages.
pub const SINCE_FORMS: &str = "a duration back from now (30s, 30m, 2h, 7d), an RFC 3339 time \
     (2025-06-18T12:00:00Z; without an offset it is UTC) or epoch seconds (1750248000)";

/// The start time `--since` names, relative to `now`: `30m`, `2h`, `7d` (also `s`), an
/// RFC 3339 or naive ISO 8601 time (UTC), or epoch seconds, as 0.11.6 accepts; `None` when it
/// is none of these.
pub fn parse_since(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(unit) = text.chars().last()
        && let Some(amount) = text.strip_suffix(unit)
        && digits(amount)
    {
        let per: i64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 0,
        };
        if per > 0 {
            let seconds = amount.parse::<i64>().ok()?.checked_mul(per)?;
            return now.checked_sub(Duration::seconds(seconds));
        }
    }
    if digits(text) {
        return OffsetDateTime::from_unix_timestamp(text.parse().ok()?).ok();
    }
    parse_timestamp(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_like_python_isoformat_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_750_250_096_123_456_789).unwrap();
        assert_eq!(format(t), "2025-06-18T12:34:56.123456+00:00");
        let shifted = t.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format(shifted), "2025-06-18T12:34:56.123456+00:00");
        let s = now();
        assert!(parse_timestamp(&s).is_some(), "{s}");
    }

    #[test]
    fn timestamps_read_in_python_and_rfc_3339_forms() {
        let want = OffsetDateTime::from_unix_timestamp(1_750_250_096).unwrap();
        for text in [
            "2025-06-18T12:34:56+00:00",
            "2025-06-18T12:34:56Z",
            "2025-06-18T14:34:56+02:00",
            "2025-06-18T12:34:56",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(
            parse_timestamp("2025-06-18T12:34:56.5+00:00"),
            Some(want + Duration::milliseconds(500))
        );
        assert_eq!(
            parse_timestamp("2025-06-18"),
            Some(want - Duration::seconds(12 * 3600 + 34 * 60 + 56))
        );
        for bad in ["", "yesterday", "2025-13-01T00:00:00Z", "12:34"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_takes_durations_times_and_epoch_seconds() {
        let now = OffsetDateTime::from_unix_timestamp(1_750_250_096).unwrap();
        assert_eq!(parse_since("30m", now), Some(now - Duration::minutes(30)));
        assert_eq!(parse_since("2h", now), Some(now - Duration::hours(2)));
        assert_eq!(parse_since("7d", now), Some(now - Duration::days(7)));
        assert_eq!(parse_since("45s", now), Some(now - Duration::seconds(45)));
        assert_eq!(
            parse_since("1750000000", now),
            OffsetDateTime::from_unix_timestamp(1_750_000_000).ok()
        );
        assert_eq!(parse_since("2025-06-18T12:34:56Z", now), Some(now));
        for bad in ["", "2x", "h", "-2h", "2 h", "99999999999999999d", "soon"] {
            assert_eq!(parse_since(bad, now), None, "{bad}");
        }
    }
}
