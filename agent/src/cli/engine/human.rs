//! Numbers as docker prints them for people: sizes (`5.2MB`, powers of 1000) and ages
//! (`3 minutes ago`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::present;

/// `bytes` in docker's units: `0B`, `812B`, `5.24kB`, `13.3MB`, `1.21GB` (three significant
/// digits, powers of 1000).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

/// How long ago `then` (seconds since the epoch) was, in docker's words
/// ([`present::ago`]).
pub fn ago(then: i64) -> String {
    present::ago(epoch_seconds(then), SystemTime::now())
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-05-01T12:00:00.123Z`,
/// `…+02:00`); `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let offset_at = text.len().checked_sub(6)?;
    let (local, offset) = match text.get(offset_at..) {
        Some(zone) if zone.starts_with(['+', '-']) && zone.as_bytes()[3] == b':' => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hours = zone[1..3].parse::<i64>().ok()?;
            let minutes = zone[4..].parse::<i64>().ok()?;
            (&text[..offset_at], sign * (hours * 3600 + minutes * 60))
        }
        _ => (text, 0),
    };
    let time = humantime::parse_rfc3339_weak(local).ok()?;
    let seconds = i64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some(seconds - offset)
}

/// Docker's `CreatedAt` form of seconds since the epoch: `2024-05-01 12:00:00 +0000 UTC`
/// ([`present::created_at`]).
pub fn timestamp(seconds: i64) -> String {
    present::created_at(epoch_seconds(seconds))
}

/// The time `seconds` after the epoch (times before it read as the epoch).
fn epoch_seconds(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_parse_and_print() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.123456789Z"),
            Some(1_714_564_800)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(timestamp(1_714_564_800), "2024-05-01 12:00:00 +0000 UTC");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(parse_rfc3339("2024-05-01 12:00:00Z"), Some(1_714_564_800));
        assert_eq!(parse_rfc3339("2024-13-01T12:00:00Z"), None);
    }

    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(812), "812B");
        assert_eq!(size(5_240), "5.24kB");
        assert_eq!(size(13_300_000), "13.3MB");
        assert_eq!(size(4_261_550), "4.26MB");
        assert_eq!(size(200_000_000), "200MB");
        assert_eq!(size(1_210_000_000), "1.21GB");
        assert_eq!(size(2_000), "2kB");
    }

    #[test]
    fn ages_read_like_docker() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(ago(now - 125), "2 minutes ago");
        assert_eq!(ago(now - 3 * 86_400), "3 days ago");
        assert_eq!(ago(now + 60), "Less than a second ago");
    }
}
