//! Time, kept as nanoseconds since the Unix epoch.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// A point in time, in nanoseconds since the Unix epoch (UTC).
///
/// Nanoseconds because SendPost shows them (SendPost API reference, "Create
/// Suppressions": `created` is UNIX epoch nanoseconds); v3 shows whole seconds
/// and Postmark RFC 3339, both derived from this one value, so a timestamp
/// written by one API reads the same through the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("{0} is outside the range of representable times")]
    OutOfRange(i64),
    #[error("{0:?} is not a date in the form YYYY-MM-DD")]
    BadDate(String),
    #[error("{0:?} is not an RFC 3339 date-time")]
    BadDateTime(String),
}

impl Timestamp {
    pub const MIN: Self = Self(i64::MIN);
    pub const MAX: Self = Self(i64::MAX);

    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds, saturating at the ends of the range.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(NANOS_PER_SECOND))
    }

    /// The last nanosecond of the given second, for inclusive upper bounds
    /// given in seconds (v3 `end_time`, inclusive: docs/api/v3.md).
    pub fn end_of_unix_second(seconds: i64) -> Self {
        Self(
            seconds
                .saturating_mul(NANOS_PER_SECOND)
                .saturating_add(NANOS_PER_SECOND - 1),
        )
    }

    /// Whole seconds, rounded towards negative infinity so that a sub-second
    /// part never rounds a time into the next second.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SECOND)
    }

    /// The nanoseconds within the second.
    pub fn subsec_nanos(self) -> i64 {
        self.0.rem_euclid(NANOS_PER_SECOND)
    }

    /// The first nanosecond of a UTC day given as `YYYY-MM-DD`.
    pub fn start_of_day(date: &str) -> Result<Self, TimestampError> {
        let day = parse_date(date)?;
        Ok(Self(day.saturating_mul(NANOS_PER_DAY)))
    }

    /// The last nanosecond of a UTC day given as `YYYY-MM-DD`, for inclusive
    /// date ranges (Postmark `todate`, SendPost `to`).
    pub fn end_of_day(date: &str) -> Result<Self, TimestampError> {
        let day = parse_date(date)?;
        Ok(Self(
            day.saturating_add(1)
                .saturating_mul(NANOS_PER_DAY)
                .saturating_sub(1),
        ))
    }

    /// Parses an RFC 3339 date-time with any offset.
    pub fn parse_rfc3339(raw: &str) -> Result<Self, TimestampError> {
        let parsed = OffsetDateTime::parse(raw, &Rfc3339)
            .map_err(|_| TimestampError::BadDateTime(raw.to_owned()))?;
        i64::try_from(parsed.unix_timestamp_nanos())
            .map(Self)
            .map_err(|_| TimestampError::BadDateTime(raw.to_owned()))
    }

    /// RFC 3339 in UTC with an explicit offset, e.g.
    /// `2026-04-23T10:00:00.123456789+00:00`; the fraction is omitted when
    /// zero. Postmark's clients need the offset (postmark-python parses
    /// `CreatedAt` as a datetime; Postmark's docs always show one), and
    /// `Z` is not accepted by every .NET parser of theirs, so hush writes
    /// `+00:00`.
    pub fn to_rfc3339_offset(self) -> String {
        let (date, seconds) = self.civil();
        let frac = self.subsec_nanos();
        if frac == 0 {
            format!("{date}T{seconds}+00:00")
        } else {
            let frac = format!("{frac:09}");
            format!("{date}T{seconds}.{}+00:00", frac.trim_end_matches('0'))
        }
    }

    /// RFC 3339 in UTC with `Z` and all nine digits of nanoseconds: the
    /// admin API's times, which must tell apart entries a nanosecond apart.
    pub fn to_rfc3339_nanos(self) -> String {
        let (date, seconds) = self.civil();
        format!("{date}T{seconds}.{:09}Z", self.subsec_nanos())
    }

    /// RFC 3339 in UTC with `Z` and whole seconds, as the v3 seed shows group
    /// `created_at` (`2026-04-23T10:00:00Z`).
    pub fn to_rfc3339_z_seconds(self) -> String {
        let (date, seconds) = self.civil();
        format!("{date}T{seconds}Z")
    }

    fn civil(self) -> (String, String) {
        let datetime = OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let date = datetime.date();
        let time = datetime.time();
        (
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            ),
            format!(
                "{:02}:{:02}:{:02}",
                time.hour(),
                time.minute(),
                time.second()
            ),
        )
    }
}

/// Days since the epoch for a `YYYY-MM-DD` date.
fn parse_date(raw: &str) -> Result<i64, TimestampError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date =
        time::Date::parse(raw, &format).map_err(|_| TimestampError::BadDate(raw.to_owned()))?;
    Ok(date
        .midnight()
        .assume_utc()
        .unix_timestamp()
        .div_euclid(86_400))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down() {
        let t = Timestamp::from_nanos(1_714_060_800_999_999_999);
        assert_eq!(t.unix_seconds(), 1_714_060_800);
        assert_eq!(t.subsec_nanos(), 999_999_999);
        assert_eq!(Timestamp::from_nanos(-1).unix_seconds(), -1);
    }

    #[test]
    fn rfc3339_forms() {
        let t = Timestamp::from_unix_seconds(1_776_938_400);
        assert_eq!(t.to_rfc3339_z_seconds(), "2026-04-23T10:00:00Z");
        assert_eq!(t.to_rfc3339_offset(), "2026-04-23T10:00:00+00:00");
        let frac = Timestamp::from_nanos(t.as_nanos() + 120_000_000);
        assert_eq!(frac.to_rfc3339_offset(), "2026-04-23T10:00:00.12+00:00");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-04-23T12:00:00.12+02:00"),
            Ok(frac)
        );
    }

    #[test]
    fn days_are_inclusive_utc_ranges() {
        let start = Timestamp::start_of_day("2026-04-23").expect("date");
        let end = Timestamp::end_of_day("2026-04-23").expect("date");
        assert_eq!(start, Timestamp::from_unix_seconds(1_776_902_400));
        assert_eq!(end.as_nanos() - start.as_nanos(), NANOS_PER_DAY - 1);
        assert!(Timestamp::start_of_day("2026-4-23").is_err());
        assert!(Timestamp::start_of_day("2026-02-30").is_err());
        assert_eq!(Timestamp::end_of_unix_second(5).as_nanos(), 5_999_999_999);
    }
}
