//! Wall-clock time as the cache keeps it: milliseconds since the Unix epoch, and their
//! RFC 3339 UTC form for the protocols (`Timestamp` in Twirp JSON) and `runnel cache ls`.
//!
//! Owns: the one conversion from days since 1970 to a civil date. Must not: read time zones.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch now (0 for a clock set before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `ms` since the epoch.
pub fn rfc3339_millis(ms: u64) -> String {
    format!("{}.{:03}Z", date_time(ms), ms % 1000)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `ms` since the epoch (milliseconds dropped).
pub fn rfc3339_seconds(ms: u64) -> String {
    format!("{}Z", date_time(ms))
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC.
fn date_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_795_999_949_000), "2026-11-30T00:52:29Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
