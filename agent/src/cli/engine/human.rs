//! Numbers as docker prints them for people: sizes (`5.2MB`, powers of 1000) and ages
//! (`3 minutes ago`).

use std::time::{SystemTime, UNIX_EPOCH};

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

/// How long ago `then` (seconds since the epoch) was, in docker's words (go-units'
/// `HumanDuration`: hours up to two days, days up to two weeks, and so on).
pub fn ago(then: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let seconds = (now - then).max(0);
    let (amount, unit) = match seconds {
        0 => return "Less than a second ago".to_owned(),
        1..=59 => (seconds, "second"),
        60..=3599 => (seconds / 60, "minute"),
        3600..=172_799 => (seconds / 3600, "hour"),
        172_800..=1_209_599 => (seconds / 86_400, "day"),
        1_209_600..=5_183_999 => (seconds / 604_800, "week"),
        5_184_000..=63_071_999 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    format!("{} ago", plural(amount, unit))
}

fn plural(amount: i64, unit: &str) -> String {
    match (amount, unit) {
        (1, "hour") => "About an hour".to_owned(),
        (1, "minute") => "About a minute".to_owned(),
        (1, _) => format!("1 {unit}"),
        _ => format!("{amount} {unit}s"),
    }
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-05-01T12:00:00.123Z`,
/// `…+02:00`); `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut hms = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Docker's `CreatedAt` form of seconds since the epoch: `2024-05-01 12:00:00 +0000 UTC`.
pub fn timestamp(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
        assert_eq!(ago(now - 3700), "About an hour ago");
        assert_eq!(ago(now - 3 * 86_400), "3 days ago");
        assert_eq!(ago(now - 30 * 3600), "30 hours ago");
        assert_eq!(ago(now - 400 * 86_400), "13 months ago");
        assert_eq!(ago(now - 800 * 86_400), "2 years ago");
    }
}
