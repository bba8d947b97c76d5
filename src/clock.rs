//! UTC timestamps from the system clock, without a date crate: release names and lock owners.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current UTC time as (year, month, day, hour, minute, second).
fn now_utc() -> (i64, i64, i64, u64, u64, u64) {
    civil(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

/// (year, month, day, hour, minute, second) of `secs` since the epoch, UTC.
fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rem) = (secs / 86400, secs % 86400);
    let (year, month, day) = civil_from_days(days as i64);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `20261125T034501.123Z`: sorts by time, safe in a file name (a release name's start), to the
/// millisecond, so two deploys in one second get two names. (Releases are ordered by the host
/// ledger's count, not by these names: `deploy/ledger.sh`.)
pub fn compact_stamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, d, h, mi, s) = civil(now.as_secs());
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{:03}Z", now.subsec_millis())
}

/// `2026-11-25T03:45:01Z` (RFC 3339).
pub fn iso_stamp() -> String {
    let (y, mo, d, h, mi, s) = now_utc();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        assert_eq!(civil_from_days(20417), (2025, 11, 25));
    }

    #[test]
    fn stamps_have_their_shape() {
        let (c, i) = (compact_stamp(), iso_stamp());
        assert_eq!((c.len(), &c[8..9], &c[15..16], &c[19..]), (20, "T", ".", "Z"));
        assert!(crate::deploy::ledger::release_name_ok(&format!("{c}-abc1234567")), "{c}");
        assert_eq!((i.len(), &i[4..5], &i[10..11]), (20, "-", "T"));
    }
}
